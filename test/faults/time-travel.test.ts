// Redis that comes back with older data under the same epoch key (a failover to a replica that
// lagged, a restart from an older snapshot), Redis that refuses writes (MISCONF) while runs
// finish, and Redis filled by its own jobs. Real redis-server processes, real HTTP through Fastify.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { type RunSpan, SpanEngine, overlappingRuns } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import type { Report, ResearchEngine, ResearchRequest, RunContext } from '../../src/research/engine.js'

const FAST = { REDIS_TIMEOUT_MS: 300, REDIS_BREAKER_MS: 200, REDIS_READ_WAIT_MS: 2000 }
const FINAL = new Set(['completed', 'failed', 'cancelled'])

/**
 * Clients behind a load balancer: every job polled on every app, one view per job, as one client
 * sees it. Returns the regressions seen (a final status followed by an unfinished one) and stops.
 */
function pollAll (apps: FastifyInstance[], ids: () => string[]): { regressions: string[], stop: () => Promise<void> } {
  const seen = new Map<string, string>()
  const regressions: string[] = []
  const polling = new AbortController()
  const loop = (async () => {
    while (!polling.signal.aborted) {
      for (const id of ids()) {
        for (const app of apps) {
          const res = await app.inject({ url: `/v1/jobs/${id}` })
          if (res.statusCode !== 200) continue
          const status = json(res).status as string
          const before = seen.get(id)
          if (before !== undefined && FINAL.has(before) && before !== status) regressions.push(`${id}: ${before} -> ${status}`)
          seen.set(id, status)
        }
      }
      await sleep(20)
    }
  })()
  return { regressions, stop: async () => { polling.abort(); await loop } }
}

const completedRuns = (spans: RunSpan[], query: string): number => spans.filter((s) => s.query === query && s.end !== null && s.aborted === null).length

/** Two apps on one Redis URL, 24 jobs of about a second; resolves once `before` of them completed. */
async function manyJobs (t: Parameters<typeof startApp>[0], url: string, spans: RunSpan[], before: number): Promise<{ apps: FastifyInstance[], jobs: any[] }> {
  const config = { REDIS_URL: url, ...FAST, JOB_LEASE_MS: 1500, RUNNER_CONCURRENCY: 2 }
  const apps = [
    await startApp(t, { ...config, WORKER_ID: 'a' }, { engine: new SpanEngine('a', spans, 200, 5) }),
    await startApp(t, { ...config, WORKER_ID: 'b' }, { engine: new SpanEngine('b', spans, 200, 5) })
  ]
  const jobs: any[] = []
  for (let i = 0; i < 24; i++) jobs.push(await createJob(apps[i % 2] as FastifyInstance, { query: `back in time ${i}`, depth: 'quick' }))
  await waitFor(`${before} jobs completed`, () => spans.filter((s) => s.end !== null && s.aborted === null).length >= before)
  return { apps, jobs }
}

/** What every test of a Redis that went back checks once the jobs drained. */
async function checkNothingGoesBack (t: any, apps: FastifyInstance[], jobs: any[], spans: RunSpan[], finishedBeforeLoss: Map<string, unknown[]>, regressions: string[]): Promise<void> {
  for (const job of jobs) {
    const done = await pollJob(apps[0] as FastifyInstance, job.job_id, undefined, 30_000)
    t.equal(done.status, 'completed', `${job.query as string} completed`)
    const completedEntries = done.attempt_history.filter((entry: any) => entry.outcome === 'completed').length
    t.equal(completedEntries, 1, `${job.query as string}: one completed attempt in its history`)
    const historyBeforeLoss = finishedBeforeLoss.get(job.job_id)
    if (historyBeforeLoss !== undefined) {
      t.equal(completedRuns(spans, job.query), 1, `${job.query as string} finished before the loss and was not run again`)
      // Compared with what it was, not with one entry: on a loaded machine a lease of 1.5 s can
      // run out before the loss, and a takeover's entry is then history, not a rewrite.
      t.same(done.attempt_history, historyBeforeLoss, `${job.query as string}: its history was not rewritten`)
    }
  }
  t.same(regressions, [], 'no client saw a finished job go back')
  t.same(overlappingRuns(spans), [], 'no job ran twice at once')
}

/** /health once it reports Redis recovering from a loss, or its last answer after 5 s. */
async function lossReported (app: FastifyInstance): Promise<any> {
  const deadline = Date.now() + 5000
  for (;;) {
    const health = json(await app.inject({ url: '/health' }))
    if ((health.status === 'degraded' && health.redis.recovering === true) || Date.now() > deadline) return health
    await sleep(20)
  }
}

/** The jobs completed by now, each with its attempt history as it stands. */
async function finishedJobs (app: FastifyInstance, jobs: any[]): Promise<Map<string, unknown[]>> {
  const finished = new Map<string, unknown[]>()
  for (const job of jobs) {
    const record = json(await app.inject({ url: `/v1/jobs/${job.job_id as string}` }))
    if (record.status === 'completed') finished.set(job.job_id, record.attempt_history)
  }
  return finished
}

/**
 * Two apps run 24 jobs, polled by clients throughout; `mark` is the moment Redis will come back
 * to (a replica stops receiving, a snapshot), two more jobs complete after it, then `back`
 * brings Redis back to it. Then /health must report the loss, and nothing may go back.
 */
async function rewind (t: any, url: string, mark: () => Promise<void>, back: () => Promise<void>): Promise<void> {
  const spans: RunSpan[] = []
  const { apps, jobs } = await manyJobs(t, url, spans, 3)
  const poller = pollAll(apps, () => jobs.map((job) => job.job_id))
  t.teardown(() => poller.stop())
  await mark()
  const doneAtMark = spans.filter((s) => s.end !== null && s.aborted === null).length
  await waitFor('two more jobs completed after the mark', () => spans.filter((s) => s.end !== null && s.aborted === null).length >= doneAtMark + 2)
  await sleep(100)
  const finishedBeforeLoss = await finishedJobs(apps[0] as FastifyInstance, jobs)
  await back()
  t.match(await lossReported(apps[1] as FastifyInstance), { status: 'degraded', redis: { recovering: true, data_loss: /went back in time/ } }, '/health reports the loss while replicas recover')
  await checkNothingGoesBack(t, apps, jobs, spans, finishedBeforeLoss, poller.regressions)
  await poller.stop()
}

t.test('failover to a replica that lagged behind: the loss is detected and reported, finished jobs stay finished and none runs twice', async (t) => {
  const master = await RedisServer.start()
  t.teardown(() => master.stop())
  const link = await TcpProxy.start(master.port)
  t.teardown(() => link.close())
  const replica = await RedisServer.start({ replicaOf: link.port })
  t.teardown(() => replica.stop())
  const front = await TcpProxy.start(master.port)
  t.teardown(() => front.close())
  await rewind(t, front.url, async () => {
    await replica.caughtUpWith(master)
    link.stall()
  }, async () => {
    await master.kill()
    await replica.promote()
    front.retarget(replica.port)
  })
})

t.test('restart from an older snapshot (no AOF): the loss is detected and reported, finished jobs stay finished and none runs twice', async (t) => {
  const redis = await RedisServer.start({ snapshots: true })
  t.teardown(() => redis.stop())
  await rewind(t, redis.url, async () => { await redis.snapshot() }, async () => { await redis.restart() })
})

t.test('Redis refusing writes (MISCONF) while runs finish: the results are kept and written once it accepts writes again; no run is thrown away', async (t) => {
  const redis = await RedisServer.start({ snapshots: true })
  t.teardown(() => redis.stop())
  const spans: RunSpan[] = []
  const config = { REDIS_URL: redis.url, ...FAST, JOB_LEASE_MS: 1000, RUNNER_CONCURRENCY: 2 }
  const apps = [
    await startApp(t, { ...config, WORKER_ID: 'a' }, { engine: new SpanEngine('a', spans, 150, 4) }),
    await startApp(t, { ...config, WORKER_ID: 'b' }, { engine: new SpanEngine('b', spans, 150, 4) })
  ]
  const jobs: any[] = []
  for (let i = 0; i < 4; i++) jobs.push(await createJob(apps[i % 2] as FastifyInstance, { query: `refused final write ${i}`, depth: 'quick' }))
  await waitFor('all four running', () => spans.length === 4)
  await redis.breakPersistence()
  await waitFor('every run finished its work', () => spans.every((s) => s.end !== null), 10_000)
  // Long enough for every lease to run out by Redis's clock, several times over.
  await sleep(3000)
  const health = await Promise.all(apps.map(async (app) => json(await app.inject({ url: '/health' }))))
  t.match(health[0], { status: 'degraded', redis: { writes_refused: /MISCONF/ } })
  t.equal(health.reduce((sum, h) => sum + (h.runner.unwritten as number), 0), spans.filter((s) => s.aborted === null).length, '/health counts the results waiting to be written')
  await redis.restorePersistence()
  for (const job of jobs) {
    const done = await pollJob(apps[0] as FastifyInstance, job.job_id, undefined, 15_000)
    t.equal(done.status, 'completed')
    t.equal(done.attempts, 1, `${job.query as string}: no second attempt`)
    t.equal(spans.filter((s) => s.query === job.query).length, 1, `${job.query as string} ran once`)
  }
  t.same(spans.filter((s) => s.aborted !== null).map((s) => s.query), [], 'no run was cut short because its writes were refused')
})

/** Reports of about 24 KB: a finished record is much larger than the created one, as real reports are. */
class LargeReportEngine implements ResearchEngine {
  readonly name = 'large'
  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    await sleep(150)
    await context.progress(50, 'Writing')
    const text = `${request.query} `.repeat(24_000 / (request.query.length + 1))
    return { title: request.query, summary: text.slice(0, 2000), markdown: text, sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 150 } }
  }
}

t.test('Redis filled by its own jobs (maxmemory, noeviction): creates past the admission limit answer 503 store_full with Retry-After, and every accepted job completes', async (t) => {
  const redis = await RedisServer.start({ extraArgs: ['--maxmemory', '4mb'] })
  t.teardown(() => redis.stop())
  const app = await startApp(t, { REDIS_URL: redis.url, ...FAST, RUNNER_CONCURRENCY: 2 }, { engine: new LargeReportEngine() })
  const accepted: string[] = []
  const refusals = new Map<string, number>()
  let retryAfter: string | undefined
  for (let i = 0; i < 300 && refusals.size === 0; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: `filling Redis ${i}`, depth: 'quick' } })
    if (res.statusCode === 202) accepted.push(json(res).job_id)
    else {
      refusals.set(`${res.statusCode} ${json(res).error as string}`, 1)
      retryAfter = res.headers['retry-after'] as string | undefined
    }
  }
  t.same([...refusals.keys()], ['503 store_full'], 'creates past the limit are refused as store_full')
  t.ok(Number(retryAfter) >= 1, 'with Retry-After')
  t.ok(accepted.length >= 3, `some jobs were accepted first (${accepted.length})`)
  const health = json(await app.inject({ url: '/health' }))
  t.match(health.redis.memory, { used_bytes: Number, max_bytes: 4 * 1024 * 1024, admit_limit_bytes: Number })
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /^redis_memory_bytes\{kind="admit_limit"\} \d+$/m, '/metrics shows the limit')
  t.match(metrics, /^redis_memory_bytes\{kind="used"\} \d+$/m, 'and the memory used')
  for (const id of accepted) t.equal((await pollJob(app, id, undefined, 30_000)).status, 'completed', `${id} completed`)
})
