// A mistyped id of a recent job: 404 when every replica is connected and none could hold it,
// 503 "not visible yet" only while one has gone silent (cut off by a stalling proxy), or holds a
// job Redis does not have yet. Two replicas on one Redis; the ids are fresh UUIDv7s.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { newJobId } from '../../src/store/job-ids.js'
import { createJob, json, startApp, waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { RedisKeys } from '../../src/store/keys.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { RedisJobStore } from '../../src/store/redis.js'

const FAST = { REDIS_TIMEOUT_MS: 200, REDIS_BREAKER_MS: 200, REDIS_READ_WAIT_MS: 200, REPLICA_HEARTBEAT_MS: 100 }

/** Both replicas have said they are here (a replica that never reached Redis is not on the roster). */
async function bothOnRoster (redis: RedisServer): Promise<void> {
  const admin = await redis.client()
  await waitFor('both replicas on the roster', async () => await admin.hLen(new RedisKeys().replicas) === 2)
  await admin.close()
}

async function statusOf (app: Awaited<ReturnType<typeof startApp>>, id: string): Promise<number> {
  return (await app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).statusCode
}

t.test('an id issued moments ago that no store holds: 404 while every replica is connected, 503 while one is cut off, 404 again once it is back', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const proxy = await TcpProxy.start(redis.port)
  t.teardown(() => proxy.close())
  const a = await startApp(t, { REDIS_URL: redis.url, ...FAST, WORKER_ID: 'replica-a' })
  const b = await startApp(t, { REDIS_URL: proxy.url, ...FAST, WORKER_ID: 'replica-b' })
  await waitFor('both replicas on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  await bothOnRoster(redis)

  const mistyped = newJobId()
  let found = await a.inject({ method: 'GET', url: `/v1/jobs/${mistyped}` })
  await waitFor('a 404 for the fresh unknown id', async () => (found = await a.inject({ method: 'GET', url: `/v1/jobs/${mistyped}` })).statusCode === 404, 5000)
  t.match(json(found), { error: 'not_found' }, 'a plain 404: every replica accounts for it')
  await waitFor('the same answer on the other replica', async () => await statusOf(b, mistyped) === 404, 5000)

  proxy.stall()
  const during = newJobId()
  // B is silent from now on: after three of its heartbeats, A can no longer rule out that B holds
  // a job, even one whose id it answered 404 for a moment ago.
  await waitFor('503 for the id answered 404 before, once replica-b is silent', async () => await statusOf(a, mistyped) === 503, 5000)
  let answer = await a.inject({ method: 'GET', url: `/v1/jobs/${during}` })
  await waitFor('503 for an id issued since', async () => (answer = await a.inject({ method: 'GET', url: `/v1/jobs/${during}` })).statusCode === 503, 5000)
  t.match(json(answer), { error: 'job_not_visible_yet' })
  t.equal(answer.headers['retry-after'], '1')

  proxy.resume()
  await waitFor('404 again once replica-b is heard from', async () => await statusOf(a, during) === 404, 10_000)
})

t.test('a replica that accepted a job while cut off keeps it "not visible yet" elsewhere, never 404, until it hands it over', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const proxy = await TcpProxy.start(redis.port)
  t.teardown(() => proxy.close())
  const a = await startApp(t, { REDIS_URL: redis.url, ...FAST, WORKER_ID: 'replica-a', ROLE: 'api' })
  const b = await startApp(t, { REDIS_URL: proxy.url, ...FAST, WORKER_ID: 'replica-b', ROLE: 'api' })
  await waitFor('both replicas on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  await bothOnRoster(redis)
  proxy.stall()
  await waitFor('replica-b in fallback mode', () => b.store.mode === 'memory', 5000)
  const job = await createJob(b, { query: 'Made while cut off', depth: 'quick' })
  const seen = new Set<number>()
  const poll = setInterval(() => { void statusOf(a, job.job_id).then((status) => seen.add(status)) }, 50)
  t.teardown(() => clearInterval(poll))
  await new Promise((resolve) => setTimeout(resolve, 1000))
  proxy.resume()
  await waitFor('the job visible on replica-a', async () => await statusOf(a, job.job_id) === 200, 15_000)
  clearInterval(poll)
  t.notOk(seen.has(404), `replica-a never said the job does not exist (saw ${[...seen].join(', ')})`)
  t.ok(seen.has(503), 'it said "not visible yet" while replica-b held the job alone')
})

/** A store of the test's own on that Redis, as another process would have. */
async function redisJobStoreOn (t: Test, url: string): Promise<RedisJobStore> {
  const client = createRedisClient({ url, rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  return new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 1000 })
}

t.test('a replica that leaves cleanly leaves the roster (no 503s after a deploy); replicas sharing a WORKER_ID are each on it', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const a = await startApp(t, { REDIS_URL: redis.url, ...FAST, WORKER_ID: 'same' })
  const b = await startApp(t, { REDIS_URL: redis.url, ...FAST, WORKER_ID: 'same' })
  await waitFor('both on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  await bothOnRoster(redis)
  await b.close()
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const keys = new RedisKeys()
  const entries = Object.entries(await admin.hGetAll(keys.replicas)).map(([name, entry]) => ({ name, ...JSON.parse(entry) as { at: number, left?: boolean } }))
  t.same(entries.map((entry) => entry.left === true).sort(), [false, true], 'the replica that stopped said it left; the other is still on the roster')
  const mark = entries.find((entry) => entry.left === true) as { name: string, at: number }
  const [seconds] = await admin.sendCommand(['TIME']) as string[]
  t.ok(Math.abs(mark.at - Number(seconds) * 1000) < 5000, 'the mark is dated by Redis\'s clock')
  // A heartbeat of the stopped replica arriving after the mark (sent before it, or from a reconnect
  // during shutdown) would bring it back as present, to go silent at once.
  const late = await redisJobStoreOn(t, redis.url)
  await late.heartbeat(mark.name, 0, Date.now(), 300_000, 0)
  t.match(JSON.parse(await admin.hGet(keys.replicas, mark.name) as string), { left: true }, 'a late heartbeat leaves it marked')
  // Left on the roster, the stopped replica would hold fresh ids at 503 for the whole grace (5 min).
  // Past three of its heartbeats it would count as gone silent: a fresh id must still be a 404.
  await sleep(500)
  const fresh = newJobId(Date.now() - 2000)
  await waitFor('a fresh unknown id is not held at 503 by a replica that is gone', async () => await statusOf(a, fresh) === 404, 5000)
})

t.test('a replica cut off for longer than the others wait for it refuses creates (503), instead of taking jobs they would deny', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const proxy = await TcpProxy.start(redis.port)
  t.teardown(() => proxy.close())
  // Others take a replica silent for 1 s (the grace) for gone: it may hold jobs for 1 s - 3 beats.
  const config = { ...FAST, JOB_VISIBILITY_GRACE_MS: 1000 }
  const a = await startApp(t, { REDIS_URL: redis.url, ...config, WORKER_ID: 'replica-a' })
  const b = await startApp(t, { REDIS_URL: proxy.url, ...config, WORKER_ID: 'replica-b' })
  await waitFor('both on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  await bothOnRoster(redis)
  proxy.stall()
  await waitFor('replica-b in fallback mode', () => b.store.mode === 'memory', 5000)
  await new Promise((resolve) => setTimeout(resolve, 800))
  const refused = await b.inject({ method: 'POST', url: '/v1/research', payload: { query: 'Too late to hold here', depth: 'quick' } })
  t.equal(refused.statusCode, 503)
  t.match(json(refused), { error: 'store_unavailable', message: /out of reach for longer than JOB_VISIBILITY_GRACE_MS allows/ })
  proxy.resume()
  await waitFor('replica-b back on Redis', () => b.store.mode === 'redis', 10_000)
  const accepted = await b.inject({ method: 'POST', url: '/v1/research', payload: { query: 'Back again', depth: 'quick' } })
  t.equal(accepted.statusCode, 202)
})
