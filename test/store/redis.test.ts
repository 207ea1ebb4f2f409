import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { KEYS, RedisJobStore, RedisTimeoutError } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { decodeCursor, encodeCursor } from '../../src/store/job-store.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { RedisServer } from '../helpers/redis-server.js'
import { once } from 'node:events'

const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())

async function connectedStore (options: { timeoutMs?: number, ttlSeconds?: number } = {}): Promise<RedisJobStore> {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  await once(client, 'ready')
  t.teardown(() => client.destroy())
  return new RedisJobStore(client, { ttlSeconds: options.ttlSeconds ?? 86400, timeoutMs: options.timeoutMs ?? 500 })
}

const store = await connectedStore()

async function create (job: StoredJob = newJob('q', 'quick')): Promise<StoredJob> {
  const r = await store.put(job, 0, 'tail')
  if (!r.ok) throw new Error('create failed')
  return r.job
}

t.beforeEach(async () => { await admin.flushAll() })

t.test('a record is JSON at job:<id>, written with SETEX: TTL within (86390, 86400] right after a write', async (t) => {
  const job = await create()
  const ttl = await admin.ttl(KEYS.job(job.job_id))
  t.ok(ttl > 86390 && ttl <= 86400, `TTL ${ttl}`)
  const raw = await admin.get(KEYS.job(job.job_id))
  t.match(raw, /^\{"version":1,"status":"pending",/, 'version and status lead the JSON (the scripts read them there)')
  t.same(JSON.parse(raw as string), job)
  await admin.expire(KEYS.job(job.job_id), 100)
  const r = await store.put({ ...job, progress: 10 }, 1)
  t.ok(r.ok)
  t.ok(await admin.ttl(KEYS.job(job.job_id)) > 86390, 'every write renews the TTL')
})

t.test('compare-and-set: stale versions, existing ids and missing records are refused', async (t) => {
  const job = await create()
  t.same(await store.put(job, 0), { ok: false, current: job }, 'creating an id that exists')
  const r2 = await store.put({ ...job, progress: 30 }, 1)
  t.ok(r2.ok)
  const stale = await store.put({ ...job, progress: 10 }, 1)
  t.equal(stale.ok, false, 'a write from an old version is refused')
  t.equal(!stale.ok && stale.current?.progress, 30, 'and returns the current record')
  t.same(await store.put({ ...newJob('gone', 'quick') }, 4), { ok: false, current: null }, 'a record that does not exist')
})

t.test('a late write after completion does not undo it', async (t) => {
  const job = await create()
  const done = await store.put({ ...job, status: 'completed', progress: 100 }, 1)
  if (!done.ok) throw new Error('completion failed')
  const late = await store.put({ ...done.job, status: 'processing', progress: 60 }, done.job.version)
  t.equal(late.ok, false, 'refused even with the current version')
  t.equal((await store.get(job.job_id))?.status, 'completed')
})

t.test('the scripts also read records whose JSON does not lead with version (older writers)', async (t) => {
  const job = await create()
  const { version, status, ...rest } = job
  await admin.set(KEYS.job(job.job_id), JSON.stringify({ ...rest, status, version }))
  t.ok((await store.put({ ...job, progress: 5 }, version)).ok)
})

t.test('queue: FIFO via the create script, head on hand-back, delete removes everything', async (t) => {
  const a = await create()
  const b = await create()
  t.equal(await store.queueDepth(), 2)
  t.equal(await store.claim(Date.now() + 60_000), a.job_id)
  const back = await store.put({ ...a, status: 'pending' }, 1, 'head')
  t.ok(back.ok)
  t.equal(await store.claim(Date.now() + 60_000), a.job_id, 'a handed-back job is first in line')
  t.equal(await store.delete(b.job_id), true)
  t.equal(await store.claim(Date.now() + 60_000), null, 'the deleted job left the queue')
  t.equal(await admin.zCard(KEYS.created), 1, 'and the index')
  t.equal(await store.delete(b.job_id), false)
})

t.test('claimMany takes up to its limit in queue order in one script call, each with a lease', async (t) => {
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await create()).job_id)
  const leaseUntil = Date.now() + 60_000
  t.same(await store.claimMany(leaseUntil, 3), ids.slice(0, 3), 'the three oldest, oldest first')
  t.same(await admin.zRange(KEYS.leases, 0, -1), [...ids.slice(0, 3)].sort(), 'each one leased')
  t.equal(await admin.zScore(KEYS.leases, ids[0] as string), leaseUntil)
  t.same(await store.claimMany(leaseUntil, 10), ids.slice(3), 'fewer left than the limit: what there is')
  t.same(await store.claimMany(leaseUntil, 10), [], 'an empty queue gives an empty list')
  t.same(await store.readForUpdate(ids[0] as string), await store.get(ids[0] as string), 'Redis alone holds no copies: a read for update is a read')
  t.equal(await store.queueDepth(), 0)
})

t.test('list pages newest first through the index, without KEYS, and drops vanished records', async (t) => {
  const base = Date.parse('2026-01-01T00:00:00Z')
  const jobs: StoredJob[] = []
  for (let i = 0; i < 25; i++) {
    // Five jobs share each millisecond, to prove ties page correctly.
    const job = newJob(`q${i}`, 'quick', new Date(base + Math.floor(i / 5)))
    jobs.push(await create(i % 3 === 0 ? { ...job, status: 'failed' } : job))
  }
  const seen: string[] = []
  let after
  for (let pages = 0; pages < 20; pages++) {
    const page = await store.list({ limit: 4, after })
    seen.push(...page.jobs.map((j) => j.job_id))
    if (!page.hasMore) break
    after = decodeCursor(encodeCursor(page.jobs.at(-1) as StoredJob)) ?? undefined
  }
  const expected = [...jobs].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || (a.job_id < b.job_id ? 1 : -1)).map((j) => j.job_id)
  t.same(seen, expected, 'all 25, newest first, each once')

  const failed = await store.list({ limit: 100, status: 'failed' })
  t.equal(failed.jobs.length, 9)
  t.equal(failed.hasMore, false)

  await admin.del(KEYS.job(expected[0] as string))
  const first = await store.list({ limit: 2 })
  t.equal(first.jobs[0]?.job_id, expected[1], 'a record evicted behind our back is skipped')
  t.equal(await admin.zScore(KEYS.created, expected[0] as string), null, 'and dropped from the index')
})

t.test('expired records are trimmed from the indexes', async (t) => {
  const short = await connectedStore({ ttlSeconds: 1 })
  const r = await short.put(newJob('short-lived', 'quick'), 0)
  t.ok(r.ok)
  // Pretend the record expired long ago: the trim works from the expiry index alone.
  await admin.zAdd(KEYS.expiry, { score: 1, value: r.ok ? r.job.job_id : '' })
  await admin.del(KEYS.job(r.ok ? r.job.job_id : ''))
  t.same((await short.list({ limit: 10 })).jobs, [])
  t.equal(await admin.zCard(KEYS.created), 0)
  t.equal(await admin.zCard(KEYS.expiry), 0)
})

t.test('sync copies an outage record only over the version it started from, with its remaining TTL', async (t) => {
  const job = await create()
  const outage = { ...job, version: 3, progress: 50, expires_at: new Date(Date.now() + 3600_000).toISOString() }
  t.equal(await store.sync({ ...outage }, 0, false), false, 'Redis holds version 1, not the base 0: Redis wins')
  t.equal(await store.sync(outage, 1, false), true, 'Redis still holds the base version: copied')
  const ttl = await admin.ttl(KEYS.job(job.job_id))
  t.ok(ttl > 3590 && ttl <= 3600, `remaining TTL kept: ${ttl}`)
  t.equal(JSON.parse(await admin.get(KEYS.job(job.job_id)) as string).progress, 50)
  const done = await store.put({ ...outage, status: 'completed' }, 3)
  t.ok(done.ok)
  t.equal(await store.sync({ ...outage, version: 9 }, 4, false), false, 'a final record is never overwritten')
  t.equal(await store.sync({ ...outage, expires_at: new Date(Date.now() - 1).toISOString() }, 4, false), false, 'an expired copy is dropped')
  await admin.del(KEYS.job(job.job_id))
  t.equal(await store.sync({ ...outage, version: 7 }, 4, false), true, 'a record Redis lost (restart without persistence) is restored')
  const fresh = { ...newJob('outage', 'quick'), version: 2, expires_at: new Date(Date.now() + 60_000).toISOString() }
  t.equal(await store.sync(fresh, 0, true), true)
  t.equal(await store.claim(Date.now() + 60_000), job.job_id)
  t.equal(await store.claim(Date.now() + 60_000), fresh.job_id, 'a synced pending job is queued in Redis')
})

t.test('claims register leases; leases follow the record; expired ones are found', async (t) => {
  const a = await create()
  const now = Date.now()
  t.equal(await store.claim(now + 1000), a.job_id)
  t.equal(await admin.zScore(KEYS.leases, a.job_id), now + 1000, 'the claim registered a lease at once')
  const running = await store.put({ ...a, status: 'processing', worker: 'w1', lease_expires_at: new Date(now + 5000).toISOString() }, 1)
  if (!running.ok) throw new Error('claim write failed')
  t.equal(await admin.zScore(KEYS.leases, a.job_id), now + 5000, 'the write moved the lease to the record\'s expiry')
  t.same(await store.expiredLeases(now + 4000, 10), [])
  t.same(await store.expiredLeases(now + 6000, 10), [a.job_id])
  const stats = await store.stats(now)
  t.same(stats.leasesByWorker, { w1: 1 })
  t.equal(stats.counts.processing, 1)
  const done = await store.put({ ...running.job, status: 'completed', lease_expires_at: null }, running.job.version)
  t.ok(done.ok)
  t.equal(await admin.zScore(KEYS.leases, a.job_id), null, 'leaving processing releases the lease')
  t.equal(await admin.zCard(KEYS.status('processing')), 0)
  t.equal(await admin.zCard(KEYS.status('completed')), 1, 'the status sets follow the record')
  await store.dropLease('not-there')
})

t.test('a retry waits in the delayed set until its time, then a claim queues and takes it', async (t) => {
  const job = await create()
  t.equal(await store.claim(Date.now() + 60_000), job.job_id)
  const retry = await store.put({ ...job, status: 'pending' }, 1, { retryAtMs: Date.now() + 300 })
  t.ok(retry.ok)
  t.equal(await store.claim(Date.now() + 60_000), null, 'not before its time')
  t.equal((await store.stats(Date.now())).delayed, 1)
  await new Promise((resolve) => setTimeout(resolve, 350))
  t.equal(await store.claim(Date.now() + 60_000), job.job_id, 'due: queued and claimed in one step')
  t.equal(await admin.zCard(KEYS.delayed), 0)
})

t.test('stats: counts by status without scanning records, queue depth and the oldest queued job', async (t) => {
  const first = await create()
  await create()
  const failed = await create()
  await store.put({ ...failed, status: 'failed' }, 1)
  const stats = await store.stats(Date.now())
  t.same(stats.counts, { pending: 2, processing: 0, completed: 0, failed: 1, cancelled: 0 })
  t.equal(stats.queued, 3, 'the failed job was queued when created and is still in the list until claimed')
  t.equal(stats.oldestQueuedAt, first.updated_at)
  t.same(stats.leasesByWorker, {})
  t.equal(await store.delete(first.job_id), true)
  t.equal((await store.stats(Date.now())).counts.pending, 1, 'delete leaves the status sets')
})

t.test('scripts survive a Redis restart (empty script cache)', async (t) => {
  await admin.scriptFlush()
  const job = await create()
  t.ok(await store.get(job.job_id), 'EVALSHA fell back to EVAL after NOSCRIPT')
})

t.test('a call that Redis does not answer in time rejects at the deadline', async (t) => {
  const quick = await connectedStore({ timeoutMs: 100 })
  server.pause()
  try {
    await t.rejects(quick.get('00000000-0000-4000-8000-000000000000'), RedisTimeoutError)
  } finally {
    server.resume()
  }
  t.type(await quick.ping(), 'number', 'the client still works afterwards')
})

t.test('an unchanged record is parsed once and shared by repeated reads; any change is read fresh', async (t) => {
  const job = await create()
  const first = await store.get(job.job_id)
  t.equal(await store.get(job.job_id), first, 'the same object while Redis holds the same JSON')
  const written = await store.put({ ...(first as StoredJob), progress: 40, current_step: 'Halfway' }, (first as StoredJob).version)
  t.ok(written.ok)
  const after = await store.get(job.job_id)
  t.not(after, first)
  t.match(after, { progress: 40, current_step: 'Halfway' })
  t.match(first, { progress: 0 }, 'the earlier object was not changed in place')
  const admin = await server.client()
  await admin.set(KEYS.job(job.job_id), JSON.stringify({ ...after, current_step: 'Written by another replica' }))
  t.equal((await store.get(job.job_id))?.current_step, 'Written by another replica', 'a write from elsewhere is seen at once')
  await admin.del(KEYS.job(job.job_id))
  t.equal(await store.get(job.job_id), null)
  await admin.close()
})
