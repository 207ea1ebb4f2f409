import t from 'tap'
import { RedisKeys } from '../../src/store/keys.js'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'

const KEYS = new RedisKeys()
const FAST = { REDIS_TIMEOUT_MS: 200, REDIS_BREAKER_MS: 100, REDIS_READ_WAIT_MS: 200 }

t.test('jobs are stored in Redis at job:<id> with a 24 h TTL, and complete there', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const app = await startApp(t, { REDIS_URL: redis.url, ...FAST })
  await waitFor('Redis ready', () => app.store.mode === 'redis')
  const job = await createJob(app, { query: 'What keeps a Redis job store from evicting jobs?', depth: 'quick' })
  const ttl = await admin.ttl(KEYS.job(job.job_id))
  t.ok(ttl > 86390 && ttl <= 86400, `TTL right after the write: ${ttl}`)
  const done = await pollJob(app, job.job_id)
  t.equal(done.status, 'completed')
  const stored = JSON.parse(await admin.get(KEYS.job(job.job_id)) as string)
  t.equal(stored.status, 'completed', 'the final record is in Redis')
  t.same(stored.result, done.result)
  t.ok(await admin.ttl(KEYS.job(job.job_id)) > 86390, 'the completion renewed the TTL')
  const health = json(await app.inject({ url: '/health' }))
  t.match(health, { status: 'ok', store: 'redis', redis: { configured: true, connected: true, error: null, writes_refused: null, maxmemory_policy: 'noeviction', recovering: false, unsynced: 0, warnings: [] } })
  t.type(health.redis.latency_ms, 'number')
  const cleanup = json(await app.inject({ method: 'DELETE', url: '/api/v4/admin/cleanup-jobs' }))
  t.match(cleanup, { store: 'redis', redis_connected: true, cleanup_method: 'Redis SETEX expiry', ttl_seconds: 86400 })
})

t.test('Redis down at start: the service answers, /health is degraded, jobs complete from memory; they reach Redis when it is up', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  await redis.kill()
  const app = await startApp(t, { REDIS_URL: redis.url, ...FAST })
  const health = await app.inject({ url: '/health' })
  t.equal(health.statusCode, 200, 'still 200 for the platform health check')
  t.match(json(health), { status: 'degraded', store: 'memory', redis: { configured: true, connected: false, latency_ms: null } })
  t.type(json(health).redis.error, 'string')
  t.notMatch(json(health).redis.error, /127\.0\.0\.1:\d+.*@/, 'no credentials in the error')
  const job = await createJob(app, { query: 'circuit breaker fallback', depth: 'quick' })
  t.equal((await pollJob(app, job.job_id)).status, 'completed')
  const unknown = await app.inject({ url: '/v1/jobs/6f1c1a52-4a37-4e6b-9f3e-1d7a0c2b9e55' })
  t.equal(unknown.statusCode, 503, 'an id only Redis could know about is not called missing while Redis is down')
  t.equal(json(unknown).error, 'store_unavailable')
  t.equal(unknown.headers['retry-after'], '1')
  t.equal(json(await app.inject({ method: 'DELETE', url: '/api/v4/admin/cleanup-jobs' })).store, 'memory')

  await redis.start()
  await waitFor('the outage job reaches Redis', async () => app.store.mode === 'redis' && app.store.health.unsynced === 0)
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const stored = JSON.parse(await admin.get(KEYS.job(job.job_id)) as string)
  t.equal(stored.status, 'completed', 'the job created during the outage is in Redis')
  const ttl = await admin.ttl(KEYS.job(job.job_id))
  t.ok(ttl > 86390 && ttl <= 86400, `with its remaining TTL (${ttl})`)
  t.equal(json(await app.inject({ url: '/health' })).status, 'ok')
})

t.test('Redis killed mid-job and back empty: polls of the running job answer 503, never a copy that may be behind; the run stops; the job is put back and completes', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  // Steps slower than the lease, so the run cannot finish before it must stop.
  const engine = new PacedEngine(400)
  const app = await startApp(t, { REDIS_URL: redis.url, ...FAST, JOB_LEASE_MS: 900 }, { engine })
  await waitFor('Redis ready', () => app.store.mode === 'redis')
  const job = await createJob(app, { query: 'how does AOF rewrite work', depth: 'standard' })
  await pollJob(app, job.job_id, (j) => j.status === 'processing')
  await redis.kill()
  const answers = new Set<string>()
  for (let i = 0; i < 10; i++) {
    const res = await app.inject({ url: `/v1/jobs/${job.job_id}` })
    answers.add(`${res.statusCode} ${json(res).error as string} ${res.headers['retry-after'] as string}`)
  }
  t.same([...answers], ['503 store_unavailable 1'], 'every poll during the outage: retry shortly')
  await waitFor('the run stopped before its lease could run out', () => engine.abortReasons.length === 1)
  t.equal((engine.abortReasons[0] as Error).name, 'LeaseLostError')
  const during = await createJob(app, { query: 'jobs created while Redis is down', depth: 'quick' })
  t.equal((await pollJob(app, during.job_id)).status, 'completed', 'a job created during the outage runs here')

  // Redis comes back without its data (no persistence): the process notices and puts its copies back.
  engine.stepMs = 0
  await redis.start()
  const done = await pollJob(app, job.job_id, undefined, 15_000)
  t.equal(done.status, 'completed', 'the job Redis lost was queued again and completed')
  t.match(done.attempt_history.map((h: any) => h.outcome), ['handed_back', 'completed'], 'the attempt Redis lost does not count')
  await waitFor('outage records copied', () => app.store.mode === 'redis' && app.store.health.unsynced === 0)
  const admin = await redis.client()
  t.teardown(() => admin.close())
  for (const id of [job.job_id, during.job_id]) {
    t.equal(JSON.parse(await admin.get(KEYS.job(id)) as string).status, 'completed', `${id} is in Redis`)
    t.ok(await admin.ttl(KEYS.job(id)) > 86000)
  }
  const listed = json(await app.inject({ url: '/v1/jobs' })).jobs.map((j: any) => j.job_id)
  t.same(listed, [during.job_id, job.job_id])
})

t.test('a restarted process picks up jobs that were pending, and the job it was running', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const slow = new PacedEngine(100)
  const first = await startApp(t, { REDIS_URL: redis.url, RUNNER_CONCURRENCY: 1, ...FAST }, { engine: slow })
  await waitFor('Redis ready', () => first.store.mode === 'redis')
  const jobs = []
  for (let i = 0; i < 3; i++) jobs.push(await createJob(first, { query: `restart ${i} lease takeover`, depth: 'deep' }))
  await pollJob(first, jobs[0].job_id, (j) => j.status === 'processing')
  await first.close()
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const handedBack = JSON.parse(await admin.get(KEYS.job(jobs[0].job_id)) as string)
  t.match(handedBack, { status: 'pending', attempts: 0, worker: null, attempt_history: [{ attempt: 1, outcome: 'handed_back' }] }, 'the running job was handed back before the process stopped, its attempt not counted')
  t.same(await admin.zRange(KEYS.queue, 0, -1), jobs.map((j) => j.job_id), 'first in line, ahead of the jobs that never started')

  const second = await startApp(t, { REDIS_URL: redis.url, ...FAST })
  for (const job of jobs) {
    const done = await pollJob(second, job.job_id)
    t.equal(done.status, 'completed', `${job.job_id} completed in the new process`)
  }
  const rerun = await pollJob(second, jobs[0].job_id)
  t.equal(rerun.attempts, 1, 'a shutdown does not use up an attempt')
  t.same(rerun.attempt_history.map((a: any) => a.outcome), ['handed_back', 'completed'], 'both runs are in the history')
  t.not(rerun.attempt_history[0].worker, rerun.attempt_history[1].worker, 'run by two different processes')
})

t.test('two replicas on one Redis: each sees the other\'s jobs, and a cancel on one stops the run on the other', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const engine = new PacedEngine(50)
  const a = await startApp(t, { REDIS_URL: redis.url, ...FAST }, { engine })
  const b = await startApp(t, { REDIS_URL: redis.url, ...FAST }, { engine })
  await waitFor('both ready', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  const job = await createJob(a, { query: 'replicas and leases', depth: 'deep' })
  await pollJob(b, job.job_id, (j) => j.status === 'processing')
  const cancelled = await b.inject({ method: 'POST', url: `/v1/jobs/${job.job_id}/cancel` })
  t.equal(cancelled.statusCode, 200)
  await waitFor('the run stopped on whichever replica ran it', () => engine.abortReasons.length === 1)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(json(await a.inject({ url: `/v1/jobs/${job.job_id}` })).status, 'cancelled', 'and nothing overwrote the cancel')
})

t.test('rediss:// URLs connect over TLS; self-signed certificates need REDIS_TLS_REJECT_UNAUTHORIZED=false', async (t) => {
  const redis = await RedisServer.start({ tls: true })
  t.teardown(() => redis.stop())
  t.match(redis.url, /^rediss:\/\//)
  const strict = await startApp(t, { REDIS_URL: redis.url, ...FAST })
  await waitFor('the certificate is refused', async () => /certificate/i.test(json(await strict.inject({ url: '/health' })).redis.error ?? ''))
  t.match(json(await strict.inject({ url: '/health' })), { status: 'degraded', redis: { connected: false, error: /certificate/i } }, 'verification is on by default')

  const relaxed = await startApp(t, { REDIS_URL: redis.url, REDIS_TLS_REJECT_UNAUTHORIZED: false, ...FAST })
  await waitFor('connected over TLS', () => relaxed.store.mode === 'redis')
  const job = await createJob(relaxed, { query: 'TLS for managed Redis', depth: 'quick' })
  await pollJob(relaxed, job.job_id)
  const admin = await redis.client()
  t.teardown(() => admin.close())
  t.equal(JSON.parse(await admin.get(KEYS.job(job.job_id)) as string).status, 'completed', 'the job was stored through the TLS connection')
})
