// Replicas on one Redis, under the faults that broke them: a claim started from a stale copy, a
// popped job dropped for a stale copy, and one replica's link to Redis cut off mid-run.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Report, ResearchEngine, ResearchRequest, RunContext } from '../../src/research/engine.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { createJob, json, startApp, waitFor } from '../helpers/app.js'
import { type RunSpan, SpanEngine, overlappingRuns } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { RedisKeys } from '../../src/store/keys.js'

const FAST = { REDIS_TIMEOUT_MS: 200, REDIS_BREAKER_MS: 200, REDIS_READ_WAIT_MS: 200 }

/** An engine whose runs do what the test scripts for each query. */
class ScriptedEngine implements ResearchEngine {
  readonly name = 'scripted'
  readonly runs: string[] = []
  readonly act: (query: string, runs: number) => Promise<void>
  constructor (act: (query: string, runs: number) => Promise<void>) { this.act = act }
  async run (request: ResearchRequest, _context: RunContext): Promise<Report> {
    this.runs.push(request.query)
    await this.act(request.query, this.runs.filter((q) => q === request.query).length)
    return { title: request.query, summary: 'done', markdown: `# ${request.query}\n`, sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 } }
  }
}

function gate (): { wait: Promise<void>, open: () => void } {
  let open = (): void => {}
  const wait = new Promise<void>((resolve) => { open = resolve })
  return { wait, open }
}

async function inRedis (admin: Awaited<ReturnType<RedisServer['client']>>, id: string): Promise<StoredJob | null> {
  const raw = await admin.get(new RedisKeys().job(id))
  return raw === null ? null : JSON.parse(raw) as StoredJob
}

t.test('a claim takes its attempt number from the record in Redis, never from a stale copy', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const x = gate()
  const y = gate()
  t.teardown(() => { x.open(); y.open() })
  const config = { REDIS_URL: redis.url, ...FAST, RUNNER_CONCURRENCY: 1, JOB_MAX_ATTEMPTS: 2, JOB_RETRY_BASE_MS: 100, JOB_RETRY_MAX_MS: 100 }
  const a = await startApp(t, { ...config, WORKER_ID: 'replica-a' }, { engine: new ScriptedEngine(async (query) => { if (query === 'X') await x.wait }) })
  await waitFor('A ready', () => a.store.mode === 'redis')
  const busy = await createJob(a, { query: 'X', depth: 'quick' })
  await waitFor('A busy with X', async () => (await inRedis(admin, busy.job_id))?.status === 'processing')
  // A creates J and keeps its copy (attempts 0); B then runs J's first attempt, which fails.
  const job = await createJob(a, { query: 'J', depth: 'quick' })
  await createJob(a, { query: 'Y', depth: 'quick' })
  await startApp(t, { ...config, WORKER_ID: 'replica-b' }, {
    engine: new ScriptedEngine(async (query, runs) => {
      if (query === 'J' && runs === 1) throw new Error('transient failure')
      if (query === 'Y') await y.wait
    })
  })
  await waitFor('J failed once and waits for its retry', async () => (await inRedis(admin, job.job_id))?.attempts === 1 && (await inRedis(admin, job.job_id))?.status === 'pending')
  t.equal(a.store.memory.peek(job.job_id)?.attempts, 0, 'replica A still holds its copy from before the attempt')
  x.open()
  await waitFor('J completed on A', async () => (await inRedis(admin, job.job_id))?.status === 'completed')
  const done = await inRedis(admin, job.job_id) as StoredJob
  t.same(done.attempt_history.map((h) => [h.attempt, h.worker, h.outcome]), [[1, 'replica-b', 'retrying'], [2, 'replica-a', 'completed']], 'attempt 2, counted from Redis')
  t.equal(done.attempts, 2)
})

t.test('a popped job is never dropped because this replica holds a stale copy of it', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const x = gate()
  t.teardown(() => x.open())
  const engine = new ScriptedEngine(async (query) => { if (query === 'X') await x.wait })
  const a = await startApp(t, { REDIS_URL: redis.url, ...FAST, RUNNER_CONCURRENCY: 1 }, { engine })
  await waitFor('A ready', () => a.store.mode === 'redis')
  const busy = await createJob(a, { query: 'X', depth: 'quick' })
  await waitFor('A busy with X', async () => (await inRedis(admin, busy.job_id))?.status === 'processing')
  const job = await createJob(a, { query: 'J', depth: 'quick' })
  // The copy says completed (what a Redis pause once left behind); Redis says pending, queued.
  const copy = a.store.memory.peek(job.job_id) as StoredJob
  await a.store.memory.delete(job.job_id)
  a.store.memory.adopt({ ...copy, status: 'completed', progress: 100 })
  x.open()
  await waitFor('J ran and completed', async () => (await inRedis(admin, job.job_id))?.status === 'completed')
  t.same(engine.runs, ['X', 'J'])
})

t.test('a replica cut off from Redis stops its runs and re-runs nothing; nobody runs a job twice at once, goes back, or denies a job', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const proxy = await TcpProxy.start(redis.port)
  t.teardown(() => proxy.close())
  const spans: RunSpan[] = []
  const config = { ...FAST, JOB_LEASE_MS: 900, RUNNER_CONCURRENCY: 2, JOB_MAX_ATTEMPTS: 3 }
  const cut = await startApp(t, { ...config, REDIS_URL: proxy.url, WORKER_ID: 'cut-off' }, { engine: new SpanEngine('cut-off', spans, 150, 8) })
  await waitFor('ready', () => cut.store.mode === 'redis')
  const jobs: any[] = []
  for (let i = 0; i < 4; i++) jobs.push(await createJob(cut, { query: `partition ${i}`, depth: 'quick' }))
  await waitFor('the cut-off replica runs jobs', () => spans.some((s) => s.end === null))
  const healthy = await startApp(t, { ...config, REDIS_URL: redis.url, WORKER_ID: 'healthy' }, { engine: new SpanEngine('healthy', spans, 150, 8) })
  await waitFor('ready', () => healthy.store.mode === 'redis')

  const seen = new Map<string, string[]>()
  const problems: string[] = []
  const replicas = { cut, healthy }
  const state = { polling: true }
  const ids = (): string[] => jobs.map((j) => j.job_id)
  const poller = (async () => {
    while (state.polling) {
      for (const [name, app] of Object.entries(replicas)) {
        for (const id of ids()) {
          const res = await app.inject({ url: `/v1/jobs/${id}` })
          if (res.statusCode === 404) problems.push(`${name} answered 404 for ${id}`)
          if (res.statusCode !== 200) continue
          const key = `${name} ${id}`
          const history = seen.get(key) ?? []
          const status = json(res).status as string
          if (['completed', 'failed', 'cancelled'].includes(history.at(-1) ?? '') && history.at(-1) !== status) problems.push(`${key} went from ${history.at(-1) as string} to ${status}`)
          history.push(status)
          seen.set(key, history)
        }
      }
      await sleep(30)
    }
  })()

  proxy.stall()
  const cutAt = performance.now()
  const during = await createJob(cut, { query: 'accepted while cut off', depth: 'quick' })
  jobs.push(during)
  await sleep(3000)
  const resumedAt = performance.now()
  proxy.resume()
  for (const job of jobs) {
    await waitFor(`${job.query as string} completed`, async () => json(await healthy.inject({ url: `/v1/jobs/${job.job_id}` })).status === 'completed', 20_000)
  }
  state.polling = false
  await poller

  t.same(overlappingRuns(spans), [], 'no two runs of one job overlapped')
  const rerunWhileCut = spans.filter((s) => s.replica === 'cut-off' && s.start > cutAt && s.start < resumedAt && s.query !== 'accepted while cut off')
  t.same(rerunWhileCut.map((s) => s.query), [], 'the cut-off replica started no job Redis knows while it could not reach Redis')
  t.ok(spans.some((s) => s.replica === 'cut-off' && s.aborted !== null), 'it stopped the runs whose leases it could not renew')
  t.same(problems, [], 'no replica went back from a final state or denied an accepted job')
  for (const job of jobs) {
    const done = json(await healthy.inject({ url: `/v1/jobs/${job.job_id}` }))
    t.ok(done.attempts <= 3, `${job.job_id as string} used ${done.attempts as number} attempts`)
  }
})
