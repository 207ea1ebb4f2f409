import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { FallbackJobStore, StoreUnavailableError } from '../../src/store/fallback.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { KEYS, RedisJobStore } from '../../src/store/redis.js'
import { type RedisClient, connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { RedisServer } from '../helpers/redis-server.js'

interface Rig { store: FallbackJobStore, client: RedisClient, memory: MemoryJobStore, logs: string[] }

function rig (t: Tap.Test, url: string, timeoutMs = 200): Rig {
  const logs: string[] = []
  const client = createRedisClient({ url, rejectUnauthorized: true, maxReconnectDelayMs: 100 })
  const memory = new MemoryJobStore({ ttlSeconds: 3600, maxJobs: 1000 })
  const redis = new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs })
  const store = new FallbackJobStore({
    memory,
    redis,
    breakerMs: 100,
    logger: { warn: (_o, msg) => logs.push(`warn: ${msg}`), info: (_o, msg) => logs.push(`info: ${msg}`) }
  })
  connectInBackground(client)
  t.teardown(() => client.destroy())
  return { store, client, memory, logs }
}

async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await sleep(10)
  }
}

async function create (store: FallbackJobStore, query = 'q'): Promise<StoredJob> {
  const r = await store.put(newJob(query, 'quick'), 0, 'tail')
  if (!r.ok) throw new Error('create failed')
  return r.job
}

t.test('without Redis configured, the Map is the store and misses are plain misses', async (t) => {
  const store = new FallbackJobStore({ memory: new MemoryJobStore({ ttlSeconds: 60, maxJobs: 10 }), breakerMs: 100 })
  t.equal(store.mode, 'memory')
  t.equal(store.redisConfigured, false)
  const job = await create(store)
  t.same(await store.get(job.job_id), job)
  t.equal(await store.get('00000000-0000-4000-8000-000000000000'), null)
  t.equal(await store.claim(Date.now() + 60_000), job.job_id)
  t.equal(await store.queueDepth(), 0)
  t.equal(store.unsyncedCount, 0, 'nothing to copy anywhere')
  await t.rejects(store.pingRedis(), /not configured/)
  await store.syncToRedis()
  t.equal(await store.delete(job.job_id), true)
})

t.test('claimMany fills its limit from the local queue first, then from Redis\'s, in one call', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const { store, client, memory } = rig(t, server.url)
  await until('Redis ready', () => client.isReady)
  const inRedis = [await create(store, 'r1'), await create(store, 'r2')]
  const local = await memory.put(newJob('written only here', 'quick'), 0, 'tail')
  if (!local.ok) throw new Error('local create failed')
  t.same(await store.claimMany(Date.now() + 60_000, 2), [local.job.job_id, inRedis[0]?.job_id], 'local work, then the head of Redis\'s queue')
  t.same(await store.claimMany(Date.now() + 60_000, 5), [inRedis[1]?.job_id])
  await server.kill()
  await until('fallback mode', () => store.mode === 'memory')
  t.same(await store.claimMany(Date.now() + 60_000, 5), [], 'Redis down and nothing local: nothing, no error')
})

t.test('Redis down at start: answers from memory at once, then copies everything over when Redis comes up', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  await server.kill()
  const { store, client } = rig(t, server.url)
  t.equal(store.mode, 'memory')
  await t.rejects(store.pingRedis(), 'health sees Redis down')

  const pending = await create(store, 'created during the outage')
  const running = await create(store, 'running during the outage')
  t.equal(await store.claim(Date.now() + 60_000), pending.job_id, 'the local queue serves work while Redis is down')
  t.equal(await store.claim(Date.now() + 60_000), running.job_id)
  const progressed = await store.put({ ...running, status: 'processing', progress: 40 }, running.version)
  t.ok(progressed.ok)
  await t.rejects(store.get('00000000-0000-4000-8000-000000000000'), StoreUnavailableError, 'an id the Map does not hold cannot be answered honestly while Redis is down')
  t.equal(store.unsyncedCount, 2)

  // put the pending job back in the local queue as if nobody took it
  store.memory.enqueue(pending.job_id, 'tail')
  await server.start()
  await until('the client is ready', () => client.isReady)
  await until('the outage jobs are copied', () => store.unsyncedCount === 0)
  t.equal(store.mode, 'redis')

  const admin = await server.client()
  t.teardown(() => admin.close())
  const copied = JSON.parse(await admin.get(KEYS.job(running.job_id)) as string) as StoredJob
  t.equal(copied.progress, 40, 'the newest record of the outage is in Redis')
  const ttl = await admin.ttl(KEYS.job(running.job_id))
  t.ok(ttl > 3590 && ttl <= 3600, `with its remaining TTL (${ttl})`)
  t.same(await admin.lRange(KEYS.pending, 0, -1), [pending.job_id], 'the pending job moved to the shared queue')
  t.equal(await store.memory.queueDepth(), 0, 'and left the local one, so it runs once')
  t.equal((await store.list({ limit: 10 })).jobs.length, 2, 'both are listed from Redis')
})

t.test('Redis killed mid-job: reads and writes keep working, and the outage writes win afterwards', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const { store, client, logs } = rig(t, server.url)
  await until('the client is ready', () => client.isReady)
  const job = await create(store)
  const claimed = await store.put({ ...job, status: 'processing' }, job.version)
  if (!claimed.ok) throw new Error('claim failed')

  await server.kill()
  const during = await store.put({ ...claimed.job, progress: 70 }, claimed.job.version)
  t.ok(during.ok, 'a progress write lands in the Map while Redis is gone')
  t.equal((await store.get(job.job_id))?.progress, 70, 'polls see it')
  t.equal(store.mode, 'memory')
  t.ok(logs.some((l) => l.startsWith('warn: Redis call failed')), 'the switch is logged')

  const other = await create(store, 'other')
  t.ok(await store.delete(other.job_id), 'a delete during the outage')

  await server.start()
  await until('the client is ready', () => client.isReady)
  await until('the outage writes reach Redis', () => store.unsyncedCount === 0)
  const admin = await server.client()
  t.teardown(() => admin.close())
  t.equal(await admin.get(KEYS.job(other.job_id)), null, 'the delete was replayed')
  t.equal(JSON.parse(await admin.get(KEYS.job(job.job_id)) as string).progress, 70)
  const done = await store.put({ ...(during.ok ? during.job : job), status: 'completed', progress: 100 }, during.ok ? during.job.version : 0)
  t.ok(done.ok, 'the runner goes on writing with the version it holds')
})

t.test('a write that finds Redis behind the Map copies the Map first, then succeeds', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const { store, client } = rig(t, server.url)
  await until('the client is ready', () => client.isReady)
  const job = await create(store)
  await server.kill()
  const outage = await store.put({ ...job, progress: 20 }, job.version)
  if (!outage.ok) throw new Error('outage write failed')
  // Redis returns, but before the background copy runs, a write arrives with the Map's version.
  await server.start()
  await until('the client is ready', () => client.isReady)
  const next = await store.put({ ...outage.job, progress: 30 }, outage.job.version)
  t.ok(next.ok, 'the stale Redis copy did not make the write fail')
  t.equal((await store.get(job.job_id))?.progress, 30)
})

t.test('list merges what only the Map holds, newest version first', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const { store, client } = rig(t, server.url)
  await until('the client is ready', () => client.isReady)
  const inRedis = await create(store, 'in redis')
  await server.kill()
  const changed = await store.put({ ...inRedis, status: 'completed' }, inRedis.version)
  t.ok(changed.ok)
  const onlyLocal = await create(store, 'only in the map')
  t.same((await store.list({ limit: 10 })).jobs.map((j) => j.job_id).sort(), [inRedis.job_id, onlyLocal.job_id].sort(), 'during the outage, the Map lists both')
  // Stop the automatic copy from running so the merge itself is tested.
  store.syncToRedis = async () => {}
  await server.start()
  await until('the client is ready', () => client.isReady)
  const page = await store.list({ limit: 10 })
  t.same(page.jobs.map((j) => j.job_id).sort(), [inRedis.job_id, onlyLocal.job_id].sort(), 'Redis and the Map merged')
  t.equal(page.jobs.find((j) => j.job_id === inRedis.job_id)?.status, 'completed', 'the newer Map record wins')
  t.same((await store.list({ limit: 10, status: 'pending' })).jobs.map((j) => j.job_id), [onlyLocal.job_id], 'status filters apply to the merged records')
  t.equal((await store.list({ limit: 1 })).hasMore, true)
})

t.test('a half-open Redis (accepts, never answers) costs one deadline, then the breaker skips it', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const { store, client } = rig(t, server.url, 150)
  await until('the client is ready', () => client.isReady)
  const job = await create(store)
  server.pause()
  t.teardown(() => server.resume())
  t.same(await store.get(job.job_id), job, 'the first read waits for the deadline, then the Map answers')
  t.equal(store.mode, 'memory', 'the breaker is open')
  t.match(store.lastRedisError, /did not answer/)
  const write = await store.put({ ...job, progress: 5 }, job.version)
  t.ok(write.ok, 'writes go to the Map without waiting')
  const created = await create(store, 'created while Redis hangs')
  t.equal(await store.queueDepth(), 1)
  t.equal(await store.claim(Date.now() + 60_000), created.job_id, 'new work is queued and taken locally')
  server.resume()
  await until('the breaker lets a probe through and Redis answers', async () => {
    await store.get(job.job_id)
    return store.mode === 'redis'
  })
  t.equal(store.lastRedisError, null)
})
