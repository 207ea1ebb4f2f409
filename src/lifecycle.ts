import type { AttemptData, ReportData, StoredJob } from './schemas/job.js'

/**
 * The job's lifecycle: one pure function per transition, each taking a record and returning the
 * next one. Every status change the service writes goes through here (a new record is built in
 * `records.ts`); the stores only check and store them. The claim script begins an attempt in Lua
 * for speed, and a test holds its record equal to `begin`'s.
 *
 *   pending ──begin──▶ processing ──complete──▶ completed
 *      ▲  │                │ │ └──fail─────────▶ failed
 *      │  └─exhaust─▶ failed │ └──retryLater / handBack / expireLease / reseed──▶ pending
 *      └─────────────────────┘     any unfinished ──cancel──▶ cancelled
 *
 * Times are passed in (`now`, an ISO string) so a transition is a function of its inputs.
 */

/** `current_step` of a job whose attempt just began. */
export const START_STEP = 'Starting research'

/** Whose attempt a transition ends: the worker's own, by its attempt number and name. */
export interface AttemptOwner {
  attempt: number
  worker: string
}

/** pending → processing: the attempt `owner.attempt` begins, with a running entry in the history. */
export function begin (job: StoredJob, owner: AttemptOwner, now: string, step = START_STEP): StoredJob {
  return {
    ...job,
    status: 'processing',
    attempts: owner.attempt,
    worker: owner.worker,
    started_at: job.started_at ?? now,
    next_attempt_at: null,
    current_step: step,
    attempt_history: [...job.attempt_history, { attempt: owner.attempt, worker: owner.worker, started_at: now, ended_at: null, outcome: 'running', error: null }]
  }
}

/** pending → failed: claimed with no attempts left (JOB_MAX_ATTEMPTS was lowered, or a takeover used the last). */
export function exhaust (job: StoredJob, now: string): StoredJob {
  return { ...job, status: 'failed', error: `Gave up after ${job.attempts} attempts`, current_step: 'Failed: no attempts left', completed_at: now }
}

/** processing → processing: the engine's progress, which never goes back and stays below 100 until the end. */
export function advance (job: StoredJob, percent: number, step: string): StoredJob {
  return { ...job, progress: progressAfter(job, percent), current_step: step }
}

/** The progress `advance` writes: never back, below 100 until the end. */
export function progressAfter (job: StoredJob, percent: number): number {
  // An engine's NaN or Infinity says nothing about how far it got: the progress stays.
  return Number.isFinite(percent) ? Math.max(job.progress, Math.min(99, Math.max(0, Math.round(percent)))) : job.progress
}

/** processing → completed, with the report. */
export function complete (job: StoredJob, owner: AttemptOwner, report: ReportData, now: string): StoredJob {
  return { ...endAttempt(job, now, 'completed', null, owner), status: 'completed', progress: 100, current_step: 'Completed', result: report, error: null, completed_at: now }
}

/** processing → pending after a failed attempt that may be retried, not before `retryAt`. */
export function retryLater (job: StoredJob, owner: AttemptOwner, failure: { error: string, step: string, retryAt: string }, now: string): StoredJob {
  return { ...endAttempt(job, now, 'retrying', failure.error, owner), status: 'pending', error: failure.error, next_attempt_at: failure.retryAt, current_step: failure.step }
}

/** processing → failed for good (a permanent error, or the last attempt failed). */
export function fail (job: StoredJob, owner: AttemptOwner, failure: { error: string, lastStep: string }, now: string): StoredJob {
  return { ...endAttempt(job, now, 'failed', failure.error, owner), status: 'failed', error: failure.error, current_step: `Failed during: ${failure.lastStep}`, completed_at: now }
}

/** processing → pending: the process running it shuts down; the attempt does not count against JOB_MAX_ATTEMPTS. */
export function handBack (job: StoredJob, owner: AttemptOwner, now: string): StoredJob {
  return { ...endAttempt(job, now, 'handed_back', null, owner), status: 'pending', attempts: job.attempts - 1, current_step: 'Queued again: the process running it shut down' }
}

/**
 * A lease ran out. A job its worker claimed but never began goes back as it was (no attempt
 * used); a running attempt ends `lease_expired`, and the job is queued again or, on its last
 * attempt, fails.
 */
export function expireLease (job: StoredJob, maxAttempts: number, now: string): StoredJob {
  if (job.status === 'pending') return { ...job, current_step: 'Queued again: the worker that took it stopped' }
  const lost = `worker ${job.worker ?? 'unknown'} stopped renewing its lease`
  const ended = endAttempt(job, now, 'lease_expired', lost)
  return job.attempts >= maxAttempts
    ? { ...ended, status: 'failed', error: `Gave up after ${job.attempts} attempts: ${lost}`, current_step: `Failed during: ${job.current_step}`, completed_at: now }
    : { ...ended, status: 'pending', current_step: 'Queued again: the worker running it stopped (lease expired)' }
}

/** any unfinished → cancelled; a running attempt ends `cancelled`. */
export function cancel (job: StoredJob, now: string): StoredJob {
  return { ...endAttempt(job, now, 'cancelled', null), status: 'cancelled', current_step: 'Cancelled', completed_at: now, next_attempt_at: null }
}

/**
 * An unfinished copy put back after Redis lost its data: the claim died with the data, so a
 * running attempt is handed back (not counted, as at a shutdown) and the job queued again.
 */
export function reseed (copy: StoredJob, now: string): StoredJob {
  if (copy.status !== 'processing') return copy
  return {
    ...endAttempt(copy, now, 'handed_back', 'Redis lost its data while the job ran'),
    status: 'pending',
    attempts: Math.max(0, copy.attempts - 1),
    current_step: 'Queued again: Redis lost its data'
  }
}

/**
 * Closes the running entry of the history (only `owner`'s, when given) and frees the job from
 * its worker: what every transition out of processing shares.
 */
function endAttempt (job: StoredJob, now: string, outcome: AttemptData['outcome'], error: string | null, owner?: AttemptOwner): StoredJob {
  const closes = (entry: AttemptData): boolean => entry.outcome === 'running' && (owner === undefined || (entry.attempt === owner.attempt && entry.worker === owner.worker))
  return {
    ...job,
    worker: null,
    attempt_history: job.attempt_history.map((entry) => closes(entry) ? { ...entry, ended_at: now, outcome, error } : entry)
  }
}
