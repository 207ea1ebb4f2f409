// Redis itself misbehaving: restarted empty, full, answering late, a Cluster endpoint, an
// eviction policy that drops keys. Real redis-server processes, real HTTP through Fastify.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { type RunSpan, SpanEngine, overlappingRuns } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { RedisKeys } from '../../src/store/keys.js'

const FAST = { REDIS_TIMEOUT_MS: 200, REDIS_BREAKER_MS: 200, REDIS_READ_WAIT_MS: 200 }

t.test('Redis restarted empty: every job a living replica holds is back in Redis within 10 s and completes; no 404 meanwhile', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const spans: RunSpan[] = []
  const config = { REDIS_URL: redis.url, ...FAST, JOB_LEASE_MS: 1500, RUNNER_CONCURRENCY: 2 }
  const creator = await startApp(t, { ...config, WORKER_ID: 'creator' }, { engine: new SpanEngine('creator', spans, 100, 4) })
  const runner = await startApp(t, { ...config, WORKER_ID: 'runner' }, { engine: new SpanEngine('runner', spans, 100, 4) })
  await waitFor('ready', () => creator.store.mode === 'redis' && runner.store.mode === 'redis')
  const jobs: any[] = []
  for (let i = 0; i < 12; i++) jobs.push(await createJob(creator, { query: `restart empty ${i}`, depth: 'quick' }))
  await waitFor('some finished, some running', () => spans.some((s) => s.end !== null) && spans.some((s) => s.end === null))
  const finishedBefore = new Set<string>()
  for (const job of jobs) if (json(await creator.inject({ url: `/v1/jobs/${job.job_id}` })).status === 'completed') finishedBefore.add(job.job_id)

  await redis.restart()
  const restartedAt = Date.now()
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const answers = new Set<number>()
  await waitFor('every job back in Redis', async () => {
    for (const job of jobs) answers.add((await creator.inject({ url: `/v1/jobs/${job.job_id}` })).statusCode)
    for (const job of jobs) if (await admin.get(new RedisKeys().job(job.job_id as string)) === null) return false
    return true
  }, 10_000)
  t.ok(Date.now() - restartedAt < 10_000, `back in ${Date.now() - restartedAt} ms`)
  t.notOk(answers.has(404), `the creator never denied a job it holds (answers: ${[...answers].join(', ')})`)
  for (const job of jobs) {
    const done = await pollJob(creator, job.job_id, undefined, 20_000)
    t.equal(done.status, 'completed', `${job.job_id as string} completed`)
    if (finishedBefore.has(job.job_id)) t.equal(done.attempt_history.length, 1, 'a job finished before the loss was not run again')
  }
  t.same(overlappingRuns(spans), [], 'no job ran twice at once')
  t.match(json(await creator.inject({ url: '/health' })).redis, { connected: true })
})

t.test('Redis full under noeviction (other data fills it): creates answer 503 store_full with Retry-After, /health names the cause, and nothing accepted is lost', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const app = await startApp(t, { REDIS_URL: redis.url, ...FAST })
  await waitFor('ready', () => app.store.mode === 'redis')
  const before = await createJob(app, { query: 'accepted before Redis filled up', depth: 'quick' })
  await admin.set('ballast', 'x'.repeat(2 * 1024 * 1024))
  await admin.configSet('maxmemory', '1mb')
  // The store took Redis's "no maxmemory" as true for up to a second (MemoryLimitReading): a
  // create meanwhile is refused by Redis itself (OOM), or by the admission if the limit was
  // read already; a 503 either way, and nothing stored.
  const createdBefore = await admin.zCard(new RedisKeys().created)
  const meanwhile = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'refused by Redis itself', depth: 'quick' } })
  t.equal(meanwhile.statusCode, 503, `not accepted while the limit was not read yet: ${meanwhile.body}`)
  t.match(json(meanwhile), { error: /^(?:store_unavailable|store_full)$/ })
  t.equal(await admin.zCard(new RedisKeys().created), createdBefore, 'nothing stored')
  await sleep(1100)
  const refused = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'refused while Redis is full', depth: 'quick' } })
  t.equal(refused.statusCode, 503, 'not a 202 that other replicas would answer 404 for')
  // Past the admission limit the create is refused before Redis would answer OOM (the OOM
  // refusal itself is test/store/fallback.test.ts's).
  t.equal(json(refused).error, 'store_full')
  t.match(json(refused).message, /too full to take more jobs/)
  t.ok(Number(refused.headers['retry-after']) >= 1)
  const health = json(await app.inject({ url: '/health' }))
  t.match(health, { status: 'degraded', redis: { connected: true, warnings: [/past the create admission limit.*store_full/] } })
  await admin.del('ballast')
  await admin.configSet('maxmemory', '0')
  t.equal((await pollJob(app, before.job_id, undefined, 10_000)).status, 'completed', 'the job accepted before went on')
  t.equal((await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'accepted again', depth: 'quick' } })).statusCode, 202)
})

t.test('a create whose reply comes after the deadline runs once: held, never run from memory, reconciled by Redis', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const proxy = await TcpProxy.start(redis.port)
  t.teardown(() => proxy.close())
  const spans: RunSpan[] = []
  const app = await startApp(t, { REDIS_URL: proxy.url, ...FAST }, { engine: new SpanEngine('only', spans, 20, 3) })
  await waitFor('ready', () => app.store.mode === 'redis')
  proxy.stall()
  const job = await createJob(app, { query: 'its reply is held by the network', depth: 'quick' })
  await sleep(600)
  t.same(spans, [], 'not run while it may also be in Redis')
  t.equal(json(await app.inject({ url: `/v1/jobs/${job.job_id}` })).status, 'pending', 'answered from this replica meanwhile')
  proxy.resume()
  const done = await pollJob(app, job.job_id, undefined, 10_000)
  t.equal(done.status, 'completed')
  await sleep(500)
  t.equal(spans.length, 1, 'it ran exactly once')
  t.equal(done.attempts, 1)
})

t.test('a Redis Cluster endpoint with a key prefix that has no hash tag (scripts refused with CROSSSLOT): creates answer 503 and /health is degraded, naming it', async (t) => {
  const redis = await RedisServer.start({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] })
  t.teardown(() => redis.stop())
  const admin = await redis.client()
  t.teardown(() => admin.close())
  await admin.sendCommand(['CLUSTER', 'ADDSLOTSRANGE', '0', '16383'])
  await waitFor('the one-node cluster is up', async () => /cluster_state:ok/.test(await admin.sendCommand(['CLUSTER', 'INFO']) as string))
  const app = await startApp(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'dr:', ...FAST })
  await waitFor('connected', () => app.store.health.configured && app.store.mode === 'redis')
  const res = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'on a cluster endpoint', depth: 'quick' } })
  t.equal(res.statusCode, 503)
  t.match(json(res), { error: 'store_unavailable', message: /CROSSSLOT/ })
  const health = json(await app.inject({ url: '/health' }))
  t.match(health, { status: 'degraded', redis: { writes_refused: /CROSSSLOT/ } }, 'not "ok" while every write fails')
})

t.test('an eviction policy other than noeviction is warned about at start and shown in /health', async (t) => {
  const redis = await RedisServer.start({ extraArgs: ['--maxmemory-policy', 'allkeys-lru'] })
  t.teardown(() => redis.stop())
  const lines: string[] = []
  const app = await startApp(t, { REDIS_URL: redis.url, ...FAST, LOG_LEVEL: 'warn' }, { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  await waitFor('the policy was read', async () => json(await app.inject({ url: '/health' })).redis.maxmemory_policy === 'allkeys-lru')
  const health = json(await app.inject({ url: '/health' }))
  t.match(health.redis.warnings, [/allkeys-lru.*noeviction/])
  t.ok(lines.some((l) => l.includes('maxmemory-policy is not noeviction')), 'warned in the log')
})

t.test('shutting down answers a poll that waits for Redis at once (503), instead of waiting out REDIS_READ_WAIT_MS, and its connection does not hold the close open', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  // A poll of a job this replica holds no copy of waits up to REDIS_READ_WAIT_MS for Redis: a
  // minute here, so a shutdown that waited for it would be plain to see.
  const app = await startApp(t, { REDIS_URL: redis.url, REDIS_TIMEOUT_MS: 200, REDIS_BREAKER_MS: 100, REDIS_READ_WAIT_MS: 60_000 })
  await waitFor('on Redis', () => app.store.mode === 'redis')
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  redis.pause()
  t.teardown(() => redis.resume())
  const poll = fetch(`${url}/v1/jobs/00000000-0000-4000-8000-000000000000`)
  await sleep(500)
  const closed = app.close().then(() => 'closed')
  t.equal(await Promise.race([closed, sleep(10_000).then(() => 'still closing after 10 s')]), 'closed', 'the close did not wait for the poll')
  const res = await poll
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1', 'the client retries, on another replica')
  t.match(await res.json(), { error: 'store_unavailable', message: /shutting down/ })
})
