import type { StoredJob } from '../schemas/job.js'
import { type JobStore, isFinal } from '../store/job-store.js'
import type { RunnerLogger } from './runner.js'

export interface LeaseReaperOptions {
  store: JobStore
  maxAttempts: number
  logger: RunnerLogger
  /** Leases looked at per pass. */
  batch?: number
}

/**
 * Finds jobs whose worker stopped renewing its lease (it died, or lost Redis for too long) and
 * puts them back in the queue as a new attempt, or fails them once they used every attempt.
 * The record's own lease expiry is the truth; the lease index only finds candidates. Every
 * change is a compare-and-set, so a worker that renews at the same moment wins or loses cleanly.
 */
export class LeaseReaper {
  readonly #store: JobStore
  readonly #maxAttempts: number
  readonly #logger: RunnerLogger
  readonly #batch: number

  constructor (options: LeaseReaperOptions) {
    this.#store = options.store
    this.#maxAttempts = options.maxAttempts
    this.#logger = options.logger
    this.#batch = options.batch ?? 20
  }

  /** One pass; returns how many jobs were taken over. */
  async reap (nowMs = Date.now()): Promise<number> {
    let takenOver = 0
    for (const id of await this.#store.expiredLeases(nowMs, this.#batch)) {
      const job = await this.#store.get(id)
      if (job === null) {
        this.#logger.warn({ job_id: id }, 'dropping the lease of a job whose record is gone (expired or evicted)')
        await this.#store.dropLease(id)
      } else if (isFinal(job.status)) {
        await this.#store.dropLease(id)
      } else if (job.status === 'pending') {
        // Claimed, but its worker died before it started: back to the front of the queue.
        const requeued = await this.#store.put({ ...job, current_step: 'Queued again: the worker that took it stopped' }, job.version, 'head')
        if (requeued.ok) this.#logger.warn({ job_id: id, status: 'pending', attempt: job.attempts }, 'requeued a job claimed by a worker that stopped')
      } else if (job.lease_expires_at !== null && Date.parse(job.lease_expires_at) < nowMs) {
        if (await this.#takeOver(job, nowMs)) takenOver++
      }
    }
    return takenOver
  }

  async #takeOver (job: StoredJob, nowMs: number): Promise<boolean> {
    const now = new Date(nowMs).toISOString()
    const lost = `worker ${job.worker ?? 'unknown'} stopped renewing its lease`
    const history = job.attempt_history.map((entry) => entry.outcome === 'running'
      ? { ...entry, ended_at: now, outcome: 'lease_expired' as const, error: lost }
      : entry)
    const exhausted = job.attempts >= this.#maxAttempts
    const next: StoredJob = exhausted
      ? { ...job, status: 'failed', worker: null, lease_expires_at: null, attempt_history: history, error: `Gave up after ${job.attempts} attempts: ${lost}`, current_step: `Failed during: ${job.current_step}`, completed_at: now }
      : { ...job, status: 'pending', worker: null, lease_expires_at: null, attempt_history: history, current_step: 'Queued again: the worker running it stopped (lease expired)' }
    const result = await this.#store.put(next, job.version, exhausted ? undefined : 'head')
    if (!result.ok) return false
    this.#logger.warn({ job_id: job.job_id, status: next.status, attempt: job.attempts, worker: job.worker }, exhausted ? 'job failed: its last attempt lost its worker' : 'took over a job whose worker stopped renewing its lease')
    return true
  }
}
