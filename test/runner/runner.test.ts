import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { JobService } from '../../src/jobs/service.js'
import { newJob } from '../../src/jobs/records.js'
import { PermanentError, type Report, type ResearchEngine, type ResearchRequest, type RunContext } from '../../src/research/engine.js'
import { retryDelayMs } from '../../src/backoff.js'
import { JobCancelledError, JobTimeoutError, ShutdownError } from '../../src/runner/errors.js'
import { ResearchRunner, type ResearchRunnerOptions } from '../../src/runner/runner.js'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import type { Claim, PutOptions, PutResult, StoredJob } from '../../src/store/job-store.js'
import { FailingEngine, PacedEngine } from '../helpers/engines.js'
import { waitFor } from '../helpers/app.js'
import { recordingLogger } from '../helpers/logger.js'

/** The real in-memory store, also keeping every record it accepted, in order. */
class RecordingStore extends MemoryJobStore {
  readonly writes: StoredJob[] = []
  constructor () { super({ ttlSeconds: 600, maxJobs: 1000 }) }
  override async put (job: StoredJob, expected: number, options?: PutOptions): Promise<PutResult> {
    const result = await super.put(job, expected, options)
    if (result.ok) this.writes.push(result.job)
    return result
  }
}

type SetupOptions = Partial<Pick<ResearchRunnerOptions, 'concurrency' | 'jobTimeoutMs' | 'leaseMs' | 'maxAttempts' | 'retryBaseMs' | 'retryMaxMs' | 'workerId' | 'random' | 'progressMinIntervalMs'>>

function setup (t: Test, engine: ResearchEngine, options: SetupOptions = {}, store = new RecordingStore()) {
  const log = recordingLogger()
  // The store as the app has it without Redis: its notices of each write wake the runner.
  const feed = new FallbackJobStore({ memory: store, breakerMs: 100 })
  const runner = new ResearchRunner({ store: feed, notices: feed.notices, engine, logger: log, pollIntervalMs: 20, retryBaseMs: 10, ...options })
  const service = new JobService({ store: feed })
  runner.start()
  t.teardown(() => runner.stop(1000))
  return { store, runner, service, log }
}

/** Holds each run until released, counting how many run at once. */
class GateEngine implements ResearchEngine {
  readonly name = 'gate'
  running = 0
  maxRunning = 0
  readonly order: string[] = []
  #release: Array<() => void> = []
  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    this.running++
    this.maxRunning = Math.max(this.maxRunning, this.running)
    this.order.push(request.query)
    try {
      await context.progress(50, `Working on ${request.query}`)
      await new Promise<void>((resolve) => this.#release.push(resolve))
      return { title: request.query, summary: '', markdown: `# ${request.query}\n`, sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 } }
    } finally {
      this.running--
    }
  }

  releaseAll (): void {
    for (const release of this.#release.splice(0)) release()
  }
}

t.test('runs queued jobs first in, first out, never more than `concurrency` at once', async (t) => {
  const engine = new GateEngine()
  const { service, store } = setup(t, engine, { concurrency: 2 })
  const jobs = []
  for (let i = 0; i < 5; i++) jobs.push((await service.create({ query: `job ${i}`, depth: 'quick' })).job)
  await waitFor('two jobs running', () => engine.running === 2)
  await sleep(60)
  t.equal(engine.running, 2, 'the third waits while two run')
  while (engine.order.length < 5 || engine.running > 0) {
    engine.releaseAll()
    await sleep(5)
  }
  t.same(engine.order, ['job 0', 'job 1', 'job 2', 'job 3', 'job 4'], 'started in the order created')
  t.equal(engine.maxRunning, 2)
  await waitFor('all completed', async () => (await store.list({ limit: 10, status: 'completed' })).jobs.length === 5)
})

t.test('a completed job holds the report, progress 100, timestamps and one attempt; progress never went down', async (t) => {
  const { service, store } = setup(t, new PacedEngine(0))
  const created = (await service.create({ query: 'How do leases let another worker take over a crashed job?', depth: 'standard' })).job
  await waitFor('completed', async () => (await store.get(created.job_id))?.status === 'completed')
  const job = await store.get(created.job_id) as StoredJob
  t.equal(job.progress, 100)
  t.equal(job.current_step, 'Completed')
  t.equal(job.attempts, 1)
  t.ok(job.started_at !== null && job.completed_at !== null)
  t.ok(Date.parse(job.completed_at as string) >= Date.parse(job.started_at as string))
  t.equal(job.result?.sources[0]?.path_or_url, 'corpus/job-queues.md')
  const trail = store.writes.filter((w) => w.job_id === created.job_id)
  t.same(trail.map((w) => w.progress), [...trail.map((w) => w.progress)].sort((a, b) => a - b), 'progress only grew')
  t.same(trail.map((w) => w.version), trail.map((_w, i) => i + 1), 'each write bumped the version by one')
  t.ok(trail.some((w) => w.current_step.startsWith('Round 1/2')), 'the steps were written as they happened')
})

t.test('a failing engine is retried up to JOB_MAX_ATTEMPTS, then the job fails with its message and step', async (t) => {
  const engine = new FailingEngine(new Error('source unavailable'), 'Reading sources')
  const { service, store, log } = setup(t, engine, { maxAttempts: 3 })
  const created = (await service.create({ query: 'q', depth: 'quick' })).job
  await waitFor('failed', async () => (await store.get(created.job_id))?.status === 'failed')
  const job = await store.get(created.job_id) as StoredJob
  t.equal(engine.runs, 3)
  t.equal(job.attempts, 3)
  t.equal(job.error, 'source unavailable')
  t.equal(job.current_step, 'Failed during: Reading sources')
  t.equal(job.progress, 30, 'progress stays where the work stopped')
  t.ok(job.completed_at)
  t.same(job.attempt_history.map((a) => [a.attempt, a.outcome, a.error]), [
    [1, 'retrying', 'source unavailable'], [2, 'retrying', 'source unavailable'], [3, 'failed', 'source unavailable']
  ], 'each attempt and its error are on the record')
  t.ok(job.attempt_history.every((a) => a.ended_at !== null && a.worker.length > 0))
  t.ok(log.lines.some((l) => l.startsWith('warn: job failed') && l.includes('"attempt":3')), 'the failure is logged with its attempt')
  const retryWrites = store.writes.filter((w) => w.job_id === created.job_id && w.next_attempt_at !== null)
  t.equal(retryWrites.length, 2, 'two retries were scheduled')
  t.match(retryWrites[0]?.current_step, /^Attempt 1 of 3 failed during: Reading sources; retrying in \d+ s$/)
})

t.test('a transient failure that clears is retried and completes', async (t) => {
  const engine = new FailingEngine(new Error('dependency down'), 'Searching', 1)
  const { service, store } = setup(t, engine)
  const created = (await service.create({ query: 'q', depth: 'quick' })).job
  await waitFor('completed', async () => (await store.get(created.job_id))?.status === 'completed')
  const job = await store.get(created.job_id) as StoredJob
  t.equal(job.attempts, 2)
  t.equal(job.error, null, 'a success clears the previous attempt\'s error')
  t.same(job.attempt_history.map((a) => a.outcome), ['retrying', 'completed'])
})

t.test('an error the engine marks permanent fails at once, without retries', async (t) => {
  const engine = new FailingEngine(new PermanentError('the question cannot be researched'), 'Planning')
  const { service, store } = setup(t, engine, { maxAttempts: 5 })
  const created = (await service.create({ query: 'q', depth: 'quick' })).job
  await waitFor('failed', async () => (await store.get(created.job_id))?.status === 'failed')
  const job = await store.get(created.job_id) as StoredJob
  t.equal(engine.runs, 1)
  t.equal(job.attempts, 1)
  t.same(job.attempt_history.map((a) => a.outcome), ['failed'])
})

t.test('retry backoff grows exponentially, is capped, and is jittered within its upper half', async (t) => {
  const options = { baseMs: 1000, maxMs: 10_000 }
  t.same([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, { ...options, random: () => 0 })), [500, 1000, 2000, 4000, 5000, 5000], 'lowest: half the exponential delay')
  t.same([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, { ...options, random: () => 0.999999 })), [1000, 2000, 4000, 8000, 10000, 10000], 'highest: the full delay, capped')
  const spread = new Set(Array.from({ length: 50 }, () => retryDelayMs(3, options)))
  t.ok(spread.size > 10, 'real jitter spreads retries out')
  t.ok([...spread].every((d) => d >= 2000 && d <= 4000))
})

t.test('the runner waits the backoff before a retry', async (t) => {
  const engine = new FailingEngine(new Error('flaky'), 'Searching', 1)
  const { service, store } = setup(t, engine, { retryBaseMs: 400, random: () => 0.999999 })
  const created = (await service.create({ query: 'q', depth: 'quick' })).job
  await waitFor('retry scheduled', async () => (await store.get(created.job_id))?.next_attempt_at !== null)
  const scheduled = await store.get(created.job_id) as StoredJob
  t.equal(scheduled.status, 'pending')
  const waited = Date.parse(scheduled.next_attempt_at as string) - Date.parse(scheduled.updated_at)
  t.ok(waited >= 390 && waited <= 410, `retry scheduled ${waited} ms after the failure`)
  t.equal((await store.stats()).delayed, 1, 'the job waits outside the queue')
  await waitFor('completed', async () => (await store.get(created.job_id))?.status === 'completed')
  const done = await store.get(created.job_id) as StoredJob
  const second = done.attempt_history[1]
  t.ok(Date.parse(second?.started_at ?? '') >= Date.parse(scheduled.next_attempt_at as string), 'the second attempt started no earlier than scheduled')
})

t.test('a job past JOB_TIMEOUT_MS is aborted and fails with a timeout error', async (t) => {
  const engine = new PacedEngine(200)
  const { service, store } = setup(t, engine, { jobTimeoutMs: 300 })
  const created = (await service.create({ query: 'q', depth: 'deep' })).job
  await waitFor('failed', async () => (await store.get(created.job_id))?.status === 'failed')
  const job = await store.get(created.job_id) as StoredJob
  t.equal(job.error, 'The job did not finish within 300 ms')
  t.match(job.current_step, /^Failed during: /)
  t.ok(engine.abortReasons[0] instanceof JobTimeoutError, 'the engine saw the abort signal')
})

t.test('cancel marks the job cancelled and aborts the engine; the runner writes nothing after it', async (t) => {
  const engine = new PacedEngine(50)
  const { service, store } = setup(t, engine)
  const created = (await service.create({ query: 'q', depth: 'deep' })).job
  await waitFor('processing', async () => (await store.get(created.job_id))?.status === 'processing')
  const cancelled = await service.cancel(created.job_id)
  t.equal(cancelled.status, 'cancelled')
  await waitFor('the engine stopped', () => engine.abortReasons.length === 1)
  t.ok(engine.abortReasons[0] instanceof JobCancelledError)
  await sleep(100)
  const job = await store.get(created.job_id) as StoredJob
  t.equal(job.status, 'cancelled', 'still cancelled')
  t.equal(job.version, cancelled.version, 'no write followed the cancel')
})

t.test('a cancel written by another process stops the run at its next progress write', async (t) => {
  const engine = new PacedEngine(30)
  const { service, store } = setup(t, engine)
  const created = (await service.create({ query: 'q', depth: 'deep' })).job
  await waitFor('processing', async () => (await store.get(created.job_id))?.status === 'processing')
  const current = await store.get(created.job_id) as StoredJob
  // Straight to the store: this process's runner is not told.
  t.ok((await store.put({ ...current, status: 'cancelled' }, current.version)).ok)
  await waitFor('the engine stopped', () => engine.abortReasons.length === 1)
  t.ok(engine.abortReasons[0] instanceof JobCancelledError)
  t.equal((await store.get(created.job_id))?.status, 'cancelled')
})

t.test('a job cancelled while queued never runs; a queue entry without a record is dropped', async (t) => {
  const engine = new GateEngine()
  const { service, store, runner } = setup(t, engine, { concurrency: 1 })
  const first = (await service.create({ query: 'first', depth: 'quick' })).job
  await waitFor('first running', () => engine.running === 1)
  const second = (await service.create({ query: 'second', depth: 'quick' })).job
  await service.cancel(second.job_id)
  const orphan = newJob({ query: 'orphan', depth: 'quick' })
  store.enqueue(orphan.job_id, 'tail')
  engine.releaseAll()
  await waitFor('queue drained', async () => (await store.queueDepth()) === 0 && runner.stats().running === 0)
  t.same(engine.order, ['first'], 'only the first job ran')
  t.equal((await store.get(first.job_id))?.status, 'completed')
  t.equal(store.claimOf(orphan.job_id), null, 'the orphan was never claimed')
})

t.test('stop hands running jobs back: pending, first in line, and takes no new work', async (t) => {
  const engine = new PacedEngine(100)
  const { service, store, runner } = setup(t, engine, { concurrency: 2 })
  const a = (await service.create({ query: 'a', depth: 'deep' })).job
  const b = (await service.create({ query: 'b', depth: 'deep' })).job
  await waitFor('both processing', async () => (await store.get(a.job_id))?.status === 'processing' && (await store.get(b.job_id))?.status === 'processing')
  const c = (await service.create({ query: 'c', depth: 'deep' })).job
  const started = Date.now()
  await runner.stop(2000)
  t.ok(Date.now() - started < 2000, 'stop finished within its timeout')
  t.ok(engine.abortReasons.every((r) => r instanceof ShutdownError) && engine.abortReasons.length === 2)
  for (const id of [a.job_id, b.job_id]) {
    const job = await store.get(id) as StoredJob
    t.equal(job.status, 'pending')
    t.equal(job.current_step, 'Queued again: the process running it shut down')
    t.equal(job.attempts, 0, 'a shutdown does not use up an attempt')
    t.equal(job.worker, null)
    t.same(job.attempt_history.map((h) => h.outcome), ['handed_back'])
    t.equal(store.claimOf(id), null, 'the lease was released')
  }
  const order = (await store.claim(60_000, 3)).map((claim) => claim.job.job_id)
  t.same(order.slice(2), [c.job_id], 'the never-started job stays behind the handed-back ones')
  t.same(new Set(order.slice(0, 2)), new Set([a.job_id, b.job_id]))
  runner.notify()
  t.equal(runner.stats().accepting, false)
  t.equal(runner.stats().running, 0)
  runner.start()
  t.equal(runner.stats().accepting, true, 'a stopped runner can start again')
})

t.test('jobs a claim brings back after stop began are handed straight back, never run', async (t) => {
  /** A store whose next claim waits until the test lets it answer. */
  class GatedClaimStore extends RecordingStore {
    gate: Promise<void> | null = null
    claimStarted = false
    override async claim (leaseMs: number, limit: number): Promise<Claim[]> {
      if (this.gate !== null) {
        this.claimStarted = true
        await this.gate
      }
      return await super.claim(leaseMs, limit)
    }
  }
  const store = new GatedClaimStore()
  let open = (): void => {}
  store.gate = new Promise((resolve) => { open = resolve })
  const engine = new PacedEngine(10)
  const { service, runner } = setup(t, engine, {}, store)
  const job = (await service.create({ query: 'claimed during shutdown', depth: 'quick' })).job
  await waitFor('a claim in flight', () => store.claimStarted)
  const stopping = runner.stop(1000)
  store.gate = null
  open()
  await stopping
  await waitFor('the job handed back', async () => (await store.get(job.job_id))?.version === 2)
  const back = await store.get(job.job_id) as StoredJob
  t.equal(back.status, 'pending')
  t.equal(back.attempts, 0, 'no attempt used up')
  t.same(back.attempt_history, [], 'it never started, so it has no attempt')
  t.equal(engine.started, 0, 'the engine never ran it')
  t.equal((await store.claim(60_000, 1))[0]?.job.job_id, job.job_id, 'first in line for the next runner')
})

/** Reports `steps` progress updates at once, then holds the run until released. */
class BurstEngine implements ResearchEngine {
  readonly name = 'burst'
  #release: () => void = () => {}
  #reported: () => void = () => {}
  readonly reported: Promise<void>
  readonly steps: number
  constructor (steps: number) {
    this.steps = steps
    this.reported = new Promise<void>((resolve) => { this.#reported = resolve })
  }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    for (let i = 1; i <= this.steps; i++) await context.progress(i * 9, `step ${i}`)
    this.#reported()
    await new Promise<void>((resolve) => { this.#release = resolve })
    return { title: request.query, summary: '', markdown: `# ${request.query}\n`, sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 } }
  }

  release (): void { this.#release() }
}

t.test('PROGRESS_MIN_INTERVAL_MS: a burst of progress reports is written as its first and, when the interval ends, its latest; 0 writes each', async (t) => {
  const progressWrites = (store: RecordingStore, id: string): string[] =>
    store.writes.filter((job) => job.job_id === id && job.status === 'processing' && job.current_step.startsWith('step')).map((job) => job.current_step)

  const coalescing = new BurstEngine(10)
  const slow = setup(t, coalescing, { progressMinIntervalMs: 300 })
  const job = (await slow.service.create({ query: 'a burst of progress', depth: 'quick' })).job
  await coalescing.reported
  t.same(progressWrites(slow.store, job.job_id), ['step 1'], 'the first report is written at once, the next nine are held')
  await waitFor('the trailing write', () => progressWrites(slow.store, job.job_id).length === 2, 5000)
  t.same(progressWrites(slow.store, job.job_id), ['step 1', 'step 10'], 'the latest report is written when the interval ends; those between are never written')
  t.match(await slow.store.get(job.job_id), { status: 'processing', progress: 90, current_step: 'step 10' }, 'a poller sees where the run got to')
  coalescing.release()
  await waitFor('completed', async () => (await slow.store.get(job.job_id))?.status === 'completed')

  const eager = new BurstEngine(10)
  const each = setup(t, eager)
  const other = (await each.service.create({ query: 'the same burst, no interval', depth: 'quick' })).job
  await eager.reported
  t.equal(progressWrites(each.store, other.job_id).length, 10, 'with no interval (the default) every report is written')
  eager.release()
  await waitFor('completed', async () => (await each.store.get(other.job_id))?.status === 'completed')
})

t.test('a report held for the interval is dropped when the run ends first: the final write says where it got to', async (t) => {
  const engine = new BurstEngine(3)
  const { service, store } = setup(t, engine, { progressMinIntervalMs: 400 })
  const job = (await service.create({ query: 'ends before the interval', depth: 'quick' })).job
  await engine.reported
  engine.release()
  await waitFor('completed', async () => (await store.get(job.job_id))?.status === 'completed')
  await sleep(600)
  const steps = store.writes.filter((j) => j.job_id === job.job_id).map((j) => j.current_step)
  t.same(steps.filter((s) => s.startsWith('step')), ['step 1'], 'the held report was not written after the end')
  t.equal(steps.at(-1), 'Completed', 'nothing follows the final write')
})
