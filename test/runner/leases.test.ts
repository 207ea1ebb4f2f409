import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { JobService } from '../../src/jobs/service.js'
import { newJob } from '../../src/jobs/records.js'
import { LeaseLostError } from '../../src/runner/errors.js'
import { ResearchRunner } from '../../src/runner/runner.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import type { StoredJob } from '../../src/store/job-store.js'
import { PacedEngine } from '../helpers/engines.js'
import { waitFor } from '../helpers/app.js'
import { recordingLogger } from '../helpers/logger.js'

function runner (t: Test, store: MemoryJobStore, engine: PacedEngine, workerId: string, leaseMs = 300, maxAttempts = 3) {
  const log = recordingLogger()
  const r = new ResearchRunner({ store, engine, logger: log, workerId, leaseMs, maxAttempts, pollIntervalMs: 20, retryBaseMs: 10 })
  r.start()
  t.teardown(() => r.stop(500))
  return { runner: r, log, service: new JobService({ store }) }
}

/** What a worker that was killed mid-run leaves behind: processing, leased, never renewed again. */
async function abandoned (store: MemoryJobStore, leaseMs: number, attempts = 1): Promise<StoredJob> {
  const created = await store.put(newJob({ query: 'Who takes over a job when its worker dies?', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create failed')
  const [claim] = await store.claim(leaseMs, 1)
  const now = new Date().toISOString()
  const claimed = await store.put({
    ...created.job,
    status: 'processing',
    attempts,
    worker: 'dead-worker',
    started_at: now,
    progress: 40,
    attempt_history: Array.from({ length: attempts }, (_v, i) => ({ attempt: i + 1, worker: 'dead-worker', started_at: now, ended_at: i + 1 < attempts ? now : null, outcome: i + 1 < attempts ? 'lease_expired' as const : 'running' as const, error: null }))
  }, 1, { fence: claim?.fence, leaseMs })
  if (!claimed.ok) throw new Error('claim failed')
  return claimed.job
}

t.test('a job whose worker died is taken over once its lease expires, and runs again as a new attempt', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100 })
  const job = await abandoned(store, 200)
  const leaseEnds = Date.now() + 200
  const { log } = runner(t, store, new PacedEngine(0), 'live-worker')
  const early = await store.get(job.job_id)
  t.equal(early?.status, 'processing', 'nobody touches it while the lease runs')
  await waitFor('completed', async () => (await store.get(job.job_id))?.status === 'completed')
  const done = await store.get(job.job_id) as StoredJob
  t.equal(done.attempts, 2)
  t.same(done.attempt_history.map((a) => [a.attempt, a.worker, a.outcome]), [[1, 'dead-worker', 'lease_expired'], [2, 'live-worker', 'completed']])
  t.match(done.attempt_history[0]?.error, /dead-worker stopped renewing its lease/)
  t.ok(Date.parse(done.attempt_history[1]?.started_at ?? '') >= leaseEnds - 5, 'the new attempt started after the old lease ran out')
  t.ok(log.lines.some((l) => l.startsWith('warn: took over a job whose worker stopped renewing its lease')))
})

t.test('a job that lost its worker on its last attempt fails instead of running a fourth time', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100 })
  const job = await abandoned(store, 50, 3)
  const engine = new PacedEngine(0)
  runner(t, store, engine, 'live-worker', 300, 3)
  await waitFor('failed', async () => (await store.get(job.job_id))?.status === 'failed')
  const failed = await store.get(job.job_id) as StoredJob
  t.match(failed.error, /^Gave up after 3 attempts: worker dead-worker stopped renewing its lease/)
  t.equal(failed.attempts, 3)
  t.equal(engine.started, 0, 'it never ran again')
})

t.test('a working runner renews its lease, so a job longer than the lease is not taken over', async (t) => {
  // The lease leaves room for a few hundred ms of event-loop stall (a loaded CI machine under
  // coverage): with 150 ms one late renewal stopped the run as a lost lease and made attempt 2.
  const leaseMs = 600
  const store = new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100 })
  const engine = new PacedEngine(300)
  const a = runner(t, store, engine, 'worker-a', leaseMs)
  const b = runner(t, store, new PacedEngine(0), 'worker-b', leaseMs)
  const created = (await a.service.create({ query: 'lease renewal', depth: 'deep' })).job
  await waitFor('completed', async () => (await store.get(created.job_id))?.status === 'completed', 20_000)
  const done = await store.get(created.job_id) as StoredJob
  t.ok(Date.parse(done.completed_at as string) - Date.parse(done.started_at as string) > 4 * leaseMs, 'the run took several lease lengths')
  t.equal(done.attempts, 1, 'and was never taken over')
  t.equal(done.attempt_history.length, 1)
  t.equal(b.log.lines.filter((l) => l.includes('took over')).length, 0)
})

t.test('a runner that loses its lease stops its engine and writes nothing more', async (t) => {
  // The store's clock decides leases; jumping it ahead is worker-a pausing for 10 s.
  let paused = 0
  const store = new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100, now: () => Date.now() + paused })
  const engine = new PacedEngine(60)
  const { service, log } = runner(t, store, engine, 'worker-a', 5000)
  const created = (await service.create({ query: 'who owns this job', depth: 'deep' })).job
  await waitFor('processing', async () => (await store.get(created.job_id))?.status === 'processing')
  paused = 10_000
  // worker-b's reaper takes it over, and worker-b claims and starts it under a new fence.
  const current = await store.get(created.job_id) as StoredJob
  const requeued = await store.put({ ...current, status: 'pending', worker: null }, current.version, { takeover: true, enqueue: 'head' })
  if (!requeued.ok) throw new Error('takeover refused')
  const [claimB] = await store.claim(60_000, 1)
  const taken = await store.put({ ...requeued.job, status: 'processing', worker: 'worker-b', attempts: current.attempts + 1 }, requeued.job.version, { fence: claimB?.fence, leaseMs: 60_000 })
  if (!taken.ok) throw new Error('takeover failed')
  await waitFor('the engine stopped', () => engine.abortReasons.length === 1)
  t.type(engine.abortReasons[0], LeaseLostError)
  await sleep(200)
  const after = await store.get(created.job_id) as StoredJob
  t.equal(after.version, taken.job.version, 'worker-a wrote nothing after losing the lease')
  t.equal(after.worker, 'worker-b')
  t.ok(log.lines.some((l) => l.startsWith('warn: job stopped: lease lost')))
})

t.test('a job claimed by a worker that died before starting it goes back to the front of the queue', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100 })
  const created = await store.put(newJob({ query: 'claimed then orphaned', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create failed')
  t.equal((await store.claim(100, 1))[0]?.job.job_id, created.job.job_id, 'a worker claimed it, then died')
  runner(t, store, new PacedEngine(0), 'live-worker', 300)
  await waitFor('completed', async () => (await store.get(created.job.job_id))?.status === 'completed')
  t.equal((await store.get(created.job.job_id))?.attempts, 1, 'the claim that never started did not count')
})

t.test('the lease of a job whose record vanished (expired, evicted) is dropped with a warning', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 0.05, maxJobs: 100 })
  const created = await store.put(newJob({ query: 'short-lived', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create failed')
  await store.claim(10, 1)
  await sleep(80)
  t.equal(await store.get(created.job.job_id), null, 'the record expired')
  t.same(await store.expiredLeases(10), [created.job.job_id], 'its lease entry is still there')
  const log = recordingLogger()
  const r = new ResearchRunner({ store, engine: new PacedEngine(0), logger: log, workerId: 'w' })
  t.equal(await r.reapNow(), 0)
  t.same(await store.expiredLeases(10), [], 'dropped')
  t.ok(log.lines.some((l) => l.startsWith('warn: dropping the lease of a job whose record is gone') && l.includes(created.job.job_id)))
})
