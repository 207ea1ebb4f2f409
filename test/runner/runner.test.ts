import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { JobService } from '../../src/jobs/service.js'
import { newJob } from '../../src/jobs/records.js'
import type { Report, ResearchEngine, ResearchRequest, RunContext } from '../../src/research/engine.js'
import { JobCancelledError, JobTimeoutError, ShutdownError } from '../../src/runner/errors.js'
import { ResearchRunner } from '../../src/runner/runner.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import type { Enqueue, PutResult, StoredJob } from '../../src/store/job-store.js'
import { FailingEngine, PacedEngine } from '../helpers/engines.js'

/** The real in-memory store, also keeping every record it accepted, in order. */
class RecordingStore extends MemoryJobStore {
  readonly writes: StoredJob[] = []
  constructor () { super({ ttlSeconds: 600, maxJobs: 1000 }) }
  override async put (job: StoredJob, expected: number, enqueue?: Enqueue): Promise<PutResult> {
    const result = await super.put(job, expected, enqueue)
    if (result.ok) this.writes.push(result.job)
    return result
  }
}

function logger () {
  const lines: string[] = []
  const log = (level: string) => (obj: object, msg: string) => { lines.push(`${level}: ${msg} ${JSON.stringify(obj)}`) }
  return { lines, info: log('info'), warn: log('warn'), error: log('error') }
}

async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await sleep(5)
  }
}

function setup (t: Tap.Test, engine: ResearchEngine, options: { concurrency?: number, jobTimeoutMs?: number } = {}) {
  const store = new RecordingStore()
  const log = logger()
  const runner = new ResearchRunner({ store, engine, logger: log, pollIntervalMs: 20, ...options })
  const service = new JobService(store, runner)
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
  for (let i = 0; i < 5; i++) jobs.push(await service.create(`job ${i}`, 'quick'))
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
  const created = await service.create('How do leases let another worker take over a crashed job?', 'standard')
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
  t.ok(trail.some((w) => w.current_step.startsWith('Pass 2/3')), 'the steps were written as they happened')
})

t.test('an engine error fails the job with its message and says at which step', async (t) => {
  const { service, store, log } = setup(t, new FailingEngine(new Error('source unavailable'), 'Reading sources'))
  const created = await service.create('q', 'quick')
  await waitFor('failed', async () => (await store.get(created.job_id))?.status === 'failed')
  const job = await store.get(created.job_id) as StoredJob
  t.equal(job.error, 'source unavailable')
  t.equal(job.current_step, 'Failed during: Reading sources')
  t.equal(job.progress, 30, 'progress stays where the work stopped')
  t.ok(job.completed_at)
  t.ok(log.lines.some((l) => l.startsWith('warn: job failed') && l.includes('"attempt":1')), 'the failure is logged with its attempt')
})

t.test('a job past JOB_TIMEOUT_MS is aborted and fails with a timeout error', async (t) => {
  const engine = new PacedEngine(200)
  const { service, store } = setup(t, engine, { jobTimeoutMs: 300 })
  const created = await service.create('q', 'deep')
  await waitFor('failed', async () => (await store.get(created.job_id))?.status === 'failed')
  const job = await store.get(created.job_id) as StoredJob
  t.equal(job.error, 'The job did not finish within 300 ms')
  t.match(job.current_step, /^Failed during: /)
  t.ok(engine.abortReasons[0] instanceof JobTimeoutError, 'the engine saw the abort signal')
})

t.test('cancel marks the job cancelled and aborts the engine; the runner writes nothing after it', async (t) => {
  const engine = new PacedEngine(50)
  const { service, store } = setup(t, engine)
  const created = await service.create('q', 'deep')
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
  const created = await service.create('q', 'deep')
  await waitFor('processing', async () => (await store.get(created.job_id))?.status === 'processing')
  const current = await store.get(created.job_id) as StoredJob
  // Straight to the store: this process's runner is not told.
  t.ok((await store.put({ ...current, status: 'cancelled' }, current.version)).ok)
  await waitFor('the engine stopped', () => engine.abortReasons.length === 1)
  t.ok(engine.abortReasons[0] instanceof JobCancelledError)
  t.equal((await store.get(created.job_id))?.status, 'cancelled')
})

t.test('a job cancelled while queued never runs; a queue entry without a record is dropped with a warning', async (t) => {
  const engine = new GateEngine()
  const { service, store, log, runner } = setup(t, engine, { concurrency: 1 })
  const first = await service.create('first', 'quick')
  await waitFor('first running', () => engine.running === 1)
  const second = await service.create('second', 'quick')
  await service.cancel(second.job_id)
  const orphan = newJob('orphan', 'quick')
  store.enqueue(orphan.job_id, 'tail')
  engine.releaseAll()
  await waitFor('queue drained', async () => (await store.queueDepth()) === 0 && runner.stats().running === 0)
  t.same(engine.order, ['first'], 'only the first job ran')
  t.equal((await store.get(first.job_id))?.status, 'completed')
  t.ok(log.lines.some((l) => l.startsWith('warn: dropping a queued job whose record is gone') && l.includes(orphan.job_id)))
})

t.test('stop hands running jobs back: pending, first in line, and takes no new work', async (t) => {
  const engine = new PacedEngine(100)
  const { service, store, runner } = setup(t, engine, { concurrency: 2 })
  const a = await service.create('a', 'deep')
  const b = await service.create('b', 'deep')
  await waitFor('both processing', async () => (await store.get(a.job_id))?.status === 'processing' && (await store.get(b.job_id))?.status === 'processing')
  const c = await service.create('c', 'deep')
  const started = Date.now()
  await runner.stop(2000)
  t.ok(Date.now() - started < 2000, 'stop finished within its timeout')
  t.ok(engine.abortReasons.every((r) => r instanceof ShutdownError) && engine.abortReasons.length === 2)
  for (const id of [a.job_id, b.job_id]) {
    const job = await store.get(id) as StoredJob
    t.equal(job.status, 'pending')
    t.equal(job.current_step, 'Queued again: the process running it shut down')
  }
  const order = [await store.dequeue(), await store.dequeue(), await store.dequeue()]
  t.same(order.slice(2), [c.job_id], 'the never-started job stays behind the handed-back ones')
  t.same(new Set(order.slice(0, 2)), new Set([a.job_id, b.job_id]))
  runner.notify()
  t.equal(runner.stats().accepting, false)
  t.equal(runner.stats().running, 0)
  runner.start()
  t.equal(runner.stats().accepting, true, 'a stopped runner can start again')
})
