// Checkpointed steps (RunContext.step) as the runner keeps them: a later attempt gets a step's
// result instead of running it again, a stale worker's result is refused, a result too large is
// not kept, a shutdown lets the step in flight finish before the hand-back, and the steps go
// when the job ends. On the in-memory store and on a real Redis.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { JobService } from '../../src/jobs/service.js'
import type { Report, ResearchEngine, ResearchRequest, RunContext } from '../../src/research/engine.js'
import { ResearchRunner } from '../../src/runner/runner.js'
import { Checkpoints } from '../../src/runner/checkpoints.js'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { RedisKeys } from '../../src/store/keys.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { waitFor } from '../helpers/app.js'
import { recordingLogger } from '../helpers/logger.js'
import { RedisServer } from '../helpers/redis-server.js'

const report = (title: string, usage = false): Report => ({
  title,
  summary: '',
  markdown: null,
  sections: [],
  sources: [],
  stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 },
  ...(usage ? { usage: { llm_calls: 0, input_tokens: 0, output_tokens: 0, pages_fetched: 0, bytes_fetched: 0, search_queries: 0, duration_ms: 0, cost_usd: 0 } } : {})
})

/** Three steps, `a` `b` `c`, each counted when it really runs; the first attempt fails after `b`. */
class ThreeSteps implements ResearchEngine {
  readonly name = 'three-steps'
  readonly ran: string[] = []
  attempts = 0
  readonly options: { failAfterB?: boolean, big?: boolean }
  constructor (options: { failAfterB?: boolean, big?: boolean } = {}) { this.options = options }
  async run (_request: ResearchRequest, context: RunContext): Promise<Report> {
    this.attempts++
    const step = context.step?.bind(context) as NonNullable<RunContext['step']>
    const a = await step('a', async () => { this.ran.push('a'); return { n: 1 } })
    const b = await step('b', async () => { this.ran.push('b'); return this.options.big === true ? 'x'.repeat(5000) : 'two' })
    if (this.options.failAfterB === true && this.attempts === 1) throw new Error('a transient failure after b')
    const c = await step('c', async () => { this.ran.push('c'); return [a.n, b.length] })
    return report(`done ${c.join(',')}`, true)
  }
}

type Stores = 'memory' | 'redis'

/** The store as the app has it: the Map alone, or Redis (a server of its own) in front of it. */
async function storeOf (t: Test, kind: Stores): Promise<FallbackJobStore> {
  let redis: RedisJobStore | undefined
  if (kind === 'redis') {
    const server = await RedisServer.start()
    t.teardown(() => server.stop())
    const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
    connectInBackground(client)
    t.teardown(() => client.destroy())
    await waitFor('Redis connected', () => client.isReady)
    redis = new RedisJobStore(client, { ttlSeconds: 600, timeoutMs: 1000 })
  }
  const store = new FallbackJobStore({ memory: new MemoryJobStore({ ttlSeconds: 600, maxJobs: 1000 }), redis, breakerMs: 100 })
  t.teardown(() => store.close())
  if (kind === 'redis') await waitFor('the store on Redis', () => store.mode === 'redis')
  return store
}

async function setup (t: Test, kind: Stores, engine: ResearchEngine, stepMaxBytes = 1024 * 1024) {
  const store = await storeOf(t, kind)
  const outcomes: string[] = []
  const make = (worker: string): ResearchRunner => new ResearchRunner({
    store,
    notices: store.notices,
    engine,
    logger: recordingLogger(),
    pollIntervalMs: 20,
    retryBaseMs: 10,
    retryMaxMs: 10,
    leaseMs: 2000,
    workerId: worker,
    steps: { log: store.steps, maxBytes: stepMaxBytes, onStep: (outcome) => outcomes.push(outcome) }
  })
  const runner = make('first')
  runner.start()
  t.teardown(() => runner.stop(1000))
  return { store, runner, service: new JobService({ store }), outcomes, make }
}

for (const kind of ['memory', 'redis'] as const) {
  t.test(`${kind}: a retried attempt gets the steps the failed one finished, and runs only the rest`, async (t) => {
    const engine = new ThreeSteps({ failAfterB: true })
    const { service, store, outcomes } = await setup(t, kind, engine)
    const { job } = await service.create({ query: 'q', depth: 'quick' })
    await waitFor('the job completed', async () => (await store.get(job.job_id))?.status === 'completed')
    const done = await store.get(job.job_id)
    t.same(engine.ran, ['a', 'b', 'c'], 'a and b ran once, in the first attempt; c in the second')
    t.equal(engine.attempts, 2)
    t.equal(done?.result?.title, 'done 1,3', 'the second attempt used the results the first one kept')
    t.equal(done?.result?.usage?.steps_reused, 2)
    t.same(outcomes, ['ran', 'ran', 'reused', 'reused', 'ran'])
    t.same(await store.steps.load(job.job_id), new Map(), 'the steps are dropped once the job is done')
  })

  t.test(`${kind}: a result larger than STEP_MAX_BYTES is not kept, and runs again next attempt`, async (t) => {
    const engine = new ThreeSteps({ failAfterB: true, big: true })
    const { service, store, outcomes } = await setup(t, kind, engine, 1024)
    const { job } = await service.create({ query: 'q', depth: 'quick' })
    await waitFor('the job completed', async () => (await store.get(job.job_id))?.status === 'completed')
    t.same(engine.ran, ['a', 'b', 'b', 'c'], 'b (5 KB) ran in both attempts')
    t.same(outcomes, ['ran', 'too_large', 'reused', 'too_large', 'ran'])
  })

  t.test(`${kind}: a stale claim's step result is refused, and the attempt holding it stops as a lost lease`, async (t) => {
    const store = await storeOf(t, kind)
    const { job } = await new JobService({ store }).create({ query: 'fenced', depth: 'quick' })
    const [first] = await store.claim(60_000, 1)
    t.equal(await store.steps.save(job.job_id, first?.fence as string, 'a', '1'), 'saved')
    // The claim ends (handed back) and the job is claimed again: the first token is stale.
    const held = await store.get(job.job_id)
    t.ok((await store.put({ ...held!, status: 'pending' }, held!.version, { fence: first?.fence, enqueue: 'head' })).ok)
    const [second] = await store.claim(60_000, 1)
    t.ok(second !== undefined && second.fence !== first?.fence)
    t.equal(await store.steps.save(job.job_id, first?.fence as string, 'b', '2'), 'fenced')
    t.same([...(await store.steps.load(job.job_id)).keys()], ['a'], 'nothing of the stale claim was kept')
    let stopped = false
    const stale = new Checkpoints({ log: store.steps, jobId: job.job_id, fence: first?.fence as string, resumed: true, maxBytes: 1024, onFenced: () => { stopped = true; throw new Error('lease lost') } })
    await t.rejects(stale.step('c', async () => 3), /lease lost/)
    t.ok(stopped, 'the attempt is told to stop')
  })
}

t.test('a step kept by one replica is used by another: Redis holds the steps, fenced by the claim', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const stores = await Promise.all(['a', 'b'].map(async () => {
    const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
    connectInBackground(client)
    t.teardown(() => client.destroy())
    await waitFor('Redis connected', () => client.isReady)
    const store = new FallbackJobStore({ memory: new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100 }), redis: new RedisJobStore(client, { ttlSeconds: 600, timeoutMs: 1000 }), breakerMs: 100 })
    t.teardown(() => store.close())
    return store
  }))
  const [a, b] = stores as [FallbackJobStore, FallbackJobStore]
  const { job } = await new JobService({ store: a }).create({ query: 'shared steps', depth: 'quick' })
  const [first] = await a.claim(100, 1)
  t.ok(first !== undefined)
  t.equal(await a.steps.save(job.job_id, first?.fence as string, 'page:x', '{"text":"kept"}'), 'saved')
  t.same(await b.steps.load(job.job_id), new Map([['page:x', '{"text":"kept"}']]), 'the other replica reads it')
  // The lease runs out and the other replica takes the job over: the first claim is stale now.
  await sleep(150)
  const [expired] = await b.expiredLeases(10)
  t.equal(expired, job.job_id)
  const held = await b.get(job.job_id)
  const takeover = await b.put({ ...held!, status: 'pending' }, held!.version, { takeover: true, enqueue: 'head' })
  t.ok(takeover.ok, 'taken over')
  const [second] = await b.claim(2000, 1)
  t.ok(second !== undefined && second.fence !== first?.fence)
  t.equal(await a.steps.save(job.job_id, first?.fence as string, 'page:y', '"late"'), 'fenced', 'the stale worker cannot add a step')
  t.equal(await b.steps.save(job.job_id, second?.fence as string, 'page:y', '"fresh"'), 'saved')
  t.same([...(await a.steps.load(job.job_id)).keys()].sort(), ['page:x', 'page:y'])
  const keys = new RedisKeys()
  const admin = await server.client()
  t.teardown(() => admin.close())
  t.ok(await admin.ttl(keys.steps(job.job_id)) > 500, 'the steps live as long as the record')
})

t.test('at shutdown a job inside a step finishes it (kept) and is handed back before the next; the next attempt starts after it', async (t) => {
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const ran: string[] = []
  const engine: ResearchEngine = {
    name: 'slow-step',
    async run (_request, context) {
      const step = context.step?.bind(context) as NonNullable<RunContext['step']>
      await step('slow', async () => { ran.push('slow'); await held; return 1 })
      await step('next', async () => { ran.push('next'); return 2 })
      return report('done')
    }
  }
  const { service, store, runner, make } = await setup(t, 'memory', engine)
  const { job } = await service.create({ query: 'drain', depth: 'quick' })
  await waitFor('inside the slow step', () => ran.length === 1)
  const stopping = runner.stop(2000)
  await sleep(50)
  release()
  await stopping
  const back = await store.get(job.job_id)
  t.equal(back?.status, 'pending', 'handed back')
  t.same(ran, ['slow'], 'the next step did not start')
  t.same([...(await store.steps.load(job.job_id)).keys()], ['slow'], 'the step in flight was kept')
  const other = make('second')
  other.start()
  t.teardown(() => other.stop(1000))
  await waitFor('completed by the next runner', async () => (await store.get(job.job_id))?.status === 'completed')
  t.same(ran, ['slow', 'next'], 'the slow step was not run again')
})

t.test('steps kept in this process never pass STEPS_MEMORY_MAX_BYTES: other jobs\' go first, then the job\'s own', async (t) => {
  const memory = new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100 })
  const store = new FallbackJobStore({ memory, breakerMs: 100, steps: { ttlSeconds: 600, maxLocalBytes: 100 } })
  t.teardown(() => store.close())
  const service = new JobService({ store })
  const [first, second] = [(await service.create({ query: 'one', depth: 'quick' })).job, (await service.create({ query: 'two', depth: 'quick' })).job]
  const claims = await store.claim(60_000, 2)
  const fenceOf = (id: string): string => claims.find((c) => c.job.job_id === id)?.fence as string
  t.equal(await store.steps.save(first.job_id, fenceOf(first.job_id), 'a', '"' + 'x'.repeat(40) + '"'), 'saved')
  t.equal(await store.steps.save(second.job_id, fenceOf(second.job_id), 'b', '"' + 'y'.repeat(40) + '"'), 'saved')
  t.ok(store.steps.localBytes <= 100)
  t.equal(await store.steps.save(second.job_id, fenceOf(second.job_id), 'c', '"' + 'z'.repeat(40) + '"'), 'saved')
  t.same([...(await store.steps.load(first.job_id)).keys()], [], 'the other job\'s steps went first')
  t.same([...(await store.steps.load(second.job_id)).keys()], ['b', 'c'])
  t.equal(await store.steps.save(second.job_id, fenceOf(second.job_id), 'd', '"' + 'w'.repeat(40) + '"'), 'saved')
  t.ok(store.steps.localBytes <= 100, `within the bound (${store.steps.localBytes} bytes) even when the job writing is the only one`)
})
