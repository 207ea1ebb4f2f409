// The job lifecycle, one transition at a time: what each one changes, what it keeps, and whose
// attempt it closes. (The Lua claim's start is held to `begin` in test/store/redis.test.ts.)
import t from 'tap'
import { newJob } from '../src/jobs/records.js'
import * as lifecycle from '../src/lifecycle.js'
import { NoopEngine } from '../src/research/noop.js'
import type { StoredJob } from '../src/schemas/job.js'

const T0 = '2026-01-01T00:00:00.000Z'
const T1 = '2026-01-01T00:01:00.000Z'
const T2 = '2026-01-01T00:02:00.000Z'
const A = { attempt: 1, worker: 'worker-a' }
const REPORT = await new NoopEngine(0).run({ query: 'q', depth: 'quick', options: newJob({ query: 'q', depth: 'quick' }).options }, { signal: AbortSignal.timeout(1000), progress: async () => {} })

function pending (): StoredJob {
  return newJob({ query: 'How do leases work?', depth: 'quick', now: new Date(T0) })
}

function running (owner = A, maxed = false): StoredJob {
  const job = lifecycle.begin(pending(), owner, T1)
  return maxed ? { ...job, attempts: 3 } : job
}

t.test('begin: pending to processing, its attempt running under its worker, the first started_at kept on a retry', async (t) => {
  const job = running()
  t.match(job, { status: 'processing', attempts: 1, worker: 'worker-a', started_at: T1, next_attempt_at: null, current_step: lifecycle.START_STEP })
  t.same(job.attempt_history, [{ attempt: 1, worker: 'worker-a', started_at: T1, ended_at: null, outcome: 'running', error: null }])
  const retried = lifecycle.retryLater(job, A, { error: 'boom', step: 'retrying', retryAt: T2 }, T2)
  const again = lifecycle.begin(retried, { attempt: 2, worker: 'worker-b' }, T2, 'Resuming')
  t.match(again, { status: 'processing', attempts: 2, worker: 'worker-b', started_at: T1, next_attempt_at: null, current_step: 'Resuming', error: 'boom' }, 'the last error stays until the job ends')
  t.same(again.attempt_history.map((a) => [a.attempt, a.outcome]), [[1, 'retrying'], [2, 'running']])
})

t.test('exhaust: a claimed job with no attempts left fails without a new attempt', async (t) => {
  const job = lifecycle.exhaust({ ...pending(), attempts: 3 }, T1)
  t.match(job, { status: 'failed', error: 'Gave up after 3 attempts', current_step: 'Failed: no attempts left', completed_at: T1, attempt_history: [] })
})

t.test('advance: progress only moves forward, is rounded, and stays below 100 until the job completes', async (t) => {
  const job = lifecycle.advance(running(), 40.4, 'Reading')
  t.match(job, { status: 'processing', progress: 40, current_step: 'Reading' })
  t.equal(lifecycle.advance(job, 10, 'Back?').progress, 40, 'never backwards')
  t.equal(lifecycle.advance(job, 250, 'Over').progress, 99)
  t.equal(lifecycle.advance({ ...job, progress: 0 }, -5, 'Under').progress, 0)
})

t.test('complete: processing to completed with the report; only the completing worker\'s attempt is closed', async (t) => {
  // A stale running entry of another worker (taken over) is not this worker's to close.
  const job = { ...running(), attempt_history: [{ attempt: 1, worker: 'old', started_at: T0, ended_at: null, outcome: 'running' as const, error: null }, ...running().attempt_history] }
  const done = lifecycle.complete(job, A, REPORT, T2)
  t.match(done, { status: 'completed', progress: 100, current_step: 'Completed', result: REPORT, error: null, completed_at: T2, worker: null })
  t.same(done.attempt_history.map((a) => [a.worker, a.outcome, a.ended_at]), [['old', 'running', null], ['worker-a', 'completed', T2]])
})

t.test('retryLater: processing to pending with the error and when it may run again; the attempt counts', async (t) => {
  const job = lifecycle.retryLater(running(), A, { error: 'timeout', step: 'Attempt 1 of 3 failed', retryAt: T2 }, T1)
  t.match(job, { status: 'pending', attempts: 1, worker: null, error: 'timeout', next_attempt_at: T2, current_step: 'Attempt 1 of 3 failed', completed_at: null })
  t.match(job.attempt_history, [{ outcome: 'retrying', error: 'timeout', ended_at: T1 }])
})

t.test('fail: processing to failed for good, naming the step it failed during', async (t) => {
  const job = lifecycle.fail(running(), A, { error: 'no sources', lastStep: 'Reading' }, T2)
  t.match(job, { status: 'failed', error: 'no sources', current_step: 'Failed during: Reading', completed_at: T2, worker: null })
  t.match(job.attempt_history, [{ outcome: 'failed', error: 'no sources', ended_at: T2 }])
})

t.test('handBack: processing to pending at a shutdown, the attempt not counted', async (t) => {
  const job = lifecycle.handBack(running(), A, T2)
  t.match(job, { status: 'pending', attempts: 0, worker: null, current_step: 'Queued again: the process running it shut down' })
  t.match(job.attempt_history, [{ outcome: 'handed_back', error: null, ended_at: T2 }])
})

t.test('expireLease: a claimed job never begun goes back as it was; a running one is queued again, or fails on its last attempt', async (t) => {
  const claimed = lifecycle.expireLease(pending(), 3, T2)
  t.match(claimed, { status: 'pending', attempts: 0, current_step: 'Queued again: the worker that took it stopped', attempt_history: [] })
  const again = lifecycle.expireLease(running(), 3, T2)
  t.match(again, { status: 'pending', attempts: 1, worker: null, current_step: 'Queued again: the worker running it stopped (lease expired)' })
  t.match(again.attempt_history, [{ outcome: 'lease_expired', error: 'worker worker-a stopped renewing its lease', ended_at: T2 }])
  const last = lifecycle.expireLease(lifecycle.advance(running(A, true), 50, 'Reading'), 3, T2)
  t.match(last, { status: 'failed', worker: null, error: 'Gave up after 3 attempts: worker worker-a stopped renewing its lease', current_step: 'Failed during: Reading', completed_at: T2 })
})

t.test('cancel: any unfinished job to cancelled; a running attempt ends cancelled and a planned retry is dropped', async (t) => {
  const queued = lifecycle.cancel({ ...pending(), next_attempt_at: T2 }, T1)
  t.match(queued, { status: 'cancelled', current_step: 'Cancelled', completed_at: T1, next_attempt_at: null, worker: null })
  const job = lifecycle.cancel(running(), T2)
  t.match(job, { status: 'cancelled', worker: null, attempt_history: [{ outcome: 'cancelled', ended_at: T2, error: null }] })
})

t.test('reseed: after Redis lost its data, a running copy is handed back uncounted; a pending one is kept as it is', async (t) => {
  const job = lifecycle.reseed(running(), T2)
  t.match(job, { status: 'pending', attempts: 0, worker: null, current_step: 'Queued again: Redis lost its data' })
  t.match(job.attempt_history, [{ outcome: 'handed_back', error: 'Redis lost its data while the job ran', ended_at: T2 }])
  const queued = pending()
  t.equal(lifecycle.reseed(queued, T2), queued)
})

t.test('no transition changes the record it is given', async (t) => {
  const job = running()
  const copy = structuredClone(job)
  lifecycle.complete(job, A, REPORT, T2)
  lifecycle.fail(job, A, { error: 'x', lastStep: 'y' }, T2)
  lifecycle.cancel(job, T2)
  lifecycle.expireLease(job, 3, T2)
  t.same(job, copy)
})
