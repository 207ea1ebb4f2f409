// One contract for every JobStore: the in-memory store, the Redis store (single and sharded), and
// the fallback store with and without Redis behind it. Each case runs against each store, on real Redis.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { type JobStore, type PutOptions, type WebhookOutbox, decodeCursor, encodeCursor } from '../../src/store/job-store.js'
import { RedisKeys } from '../../src/store/keys.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { type RedisClient, connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { ShardedRedisJobStore, shardOf } from '../../src/store/sharded.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

type Store = JobStore & WebhookOutbox

const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())

async function redisClient (test: Test): Promise<RedisClient> {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  test.teardown(() => client.destroy())
  await waitFor('Redis ready', () => client.isReady)
  return client
}

const redisStore = async (test: Test): Promise<RedisJobStore> => new RedisJobStore(await redisClient(test), { ttlSeconds: 600, timeoutMs: 1000 })

/**
 * Under `npm run test:cluster`: the sharded store on the Redis Cluster too (6 shards over 3
 * masters), each store under a prefix of its own, since FLUSHALL reaches one node only.
 */
const clusterUrl = process.env.TEST_REDIS_CLUSTER_URL
let clusterStores = 0
async function clusterStore (test: Test): Promise<ShardedRedisJobStore> {
  clusterStores += 1
  const keys = new RedisKeys(`contract-${process.pid}-${clusterStores}:{0}:`)
  const client = createRedisClient({ url: clusterUrl ?? '', rejectUnauthorized: true, cluster: true, homeKey: keys.epoch })
  connectInBackground(client)
  test.teardown(() => client.destroy())
  await waitFor('the Cluster ready', () => client.isReady)
  return new ShardedRedisJobStore(client, { ttlSeconds: 600, timeoutMs: 1000, shards: 6, keys })
}

const memory = (): MemoryJobStore => new MemoryJobStore({ ttlSeconds: 600, maxJobs: 1000 })
// Each store lives for one test: a fallback store left running would see the next test's
// FLUSHALL as Redis losing its data, and rightly put its copies back.
const STORES: Record<string, (test: Test) => Promise<Store>> = {
  memory: async () => memory(),
  redis: async (test) => await redisStore(test),
  // REDIS_SHARDS: the same contract when every call is routed to (or merged over) 3 hash tags.
  'sharded Redis': async (test) => new ShardedRedisJobStore(await redisClient(test), { ttlSeconds: 600, timeoutMs: 1000, shards: 3 }),
  ...(clusterUrl === undefined ? {} : { 'sharded Redis Cluster': clusterStore }),
  'fallback without Redis': async () => new FallbackJobStore({ memory: memory(), breakerMs: 100 }),
  'fallback on Redis': async (test) => {
    const store = new FallbackJobStore({ memory: memory(), redis: await redisStore(test), breakerMs: 100 })
    test.teardown(() => store.close())
    return store
  }
}

async function write (store: Store, job: StoredJob, expected: number, options?: PutOptions): Promise<StoredJob> {
  const r = await store.put(job, expected, options)
  if (!r.ok) throw new Error(`write refused: ${r.reason}`)
  return r.job
}

const create = async (store: Store, query = 'q'): Promise<StoredJob> => await write(store, newJob({ query, depth: 'quick' }), 0, { enqueue: 'tail' })

/** A job in the store's first queue: a sharded store keeps one queue per shard, in order within it. */
async function createInFirstQueue (store: Store, query: string): Promise<StoredJob> {
  const shards = store instanceof ShardedRedisJobStore ? store.shardCount : 1
  let job = newJob({ query, depth: 'quick' })
  while (shardOf(job.job_id, shards) !== 0) job = newJob({ query, depth: 'quick' })
  return await write(store, job, 0, { enqueue: 'tail' })
}

for (const [name, make] of Object.entries(STORES)) {
  t.test(name, async (t) => {
    t.beforeEach(async () => { await admin.flushAll() })

    t.test('every write is a compare-and-set on version; a missing record refuses updates', async (t) => {
      const store = await make(t)
      const job = await create(store)
      t.equal(job.version, 1)
      t.match(await store.put(job, 0), { ok: false, reason: 'conflict', current: { job_id: job.job_id, version: 1 } }, 'creating an id that exists')
      const next = await write(store, { ...job, progress: 30 }, 1)
      t.equal(next.version, 2)
      t.match(await store.put({ ...job, progress: 10 }, 1), { ok: false, reason: 'conflict', current: { progress: 30 } }, 'an old version cannot overwrite a newer record')
      t.same(await store.put(newJob({ query: 'gone', depth: 'quick' }), 4), { ok: false, reason: 'conflict', current: null })
      t.match(await store.get(job.job_id), { progress: 30, version: 2 })
      t.ok(Math.abs(Date.parse(next.expires_at) - Date.now() - 600_000) < 5000, 'the store stamps the expiry TTL seconds ahead')
    })

    t.test('final is final: nothing follows completed, failed or cancelled but a status-keeping amendment', async (t) => {
      const store = await make(t)
      for (const status of ['completed', 'failed', 'cancelled'] as const) {
        const job = await create(store)
        const done = await write(store, { ...job, status }, 1)
        t.match(await store.put({ ...done, status: 'processing' }, done.version), { ok: false, reason: 'conflict' }, `nothing after ${status}`)
        t.match(await store.put({ ...done, status: 'pending' }, done.version, { amendFinal: true }), { ok: false }, 'an amendment keeps the status')
        t.ok((await store.put({ ...done, error: 'amended' }, done.version, { amendFinal: true })).ok, `${status} can be amended`)
      }
    })

    t.test('the queue is FIFO, hand-backs go first, and a claim skips jobs that are no longer pending', async (t) => {
      const store = await make(t)
      const [a, b, c, d] = [await createInFirstQueue(store, 'a'), await createInFirstQueue(store, 'b'), await createInFirstQueue(store, 'c'), await createInFirstQueue(store, 'd')]
      t.equal(await store.queueDepth(), 4)
      const first = await store.claim(60_000, 1)
      t.same(first.map((claim) => claim.job.job_id), [a.job_id])
      t.match(first[0]?.job, { status: 'pending', attempts: 0, version: 1 }, 'the claim brings the record as stored')
      await write(store, a, 1, { enqueue: 'head', fence: first[0]?.fence })
      await write(store, { ...b, status: 'cancelled' }, 1)
      await store.delete(c.job_id)
      const rest = await store.claim(60_000, 10)
      t.same(rest.map((claim) => claim.job.job_id), [a.job_id, d.job_id], 'the handed-back job first; cancelled and deleted ones are dropped')
      t.equal(new Set(rest.map((claim) => claim.fence)).size, 2, 'each claim has its own fence')
      t.not(rest[0]?.fence, first[0]?.fence, 'a job claimed again gets a new fence')
      t.same(await store.claim(60_000, 10), [])
      t.equal(await store.queueDepth(), 0)
    })

    t.test('claims rotate between tenants (the open API is one more): a tenant\'s backlog does not hold back another\'s jobs, and each tenant keeps its own order', async (t) => {
      const store = await make(t)
      const of = async (owner: string | null, query: string): Promise<StoredJob> => {
        const shards = store instanceof ShardedRedisJobStore ? store.shardCount : 1
        let job = { ...newJob({ query, depth: 'quick' }), owner }
        while (shardOf(job.job_id, shards) !== 0) job = { ...newJob({ query, depth: 'quick' }), owner }
        return await write(store, job, 0, { enqueue: 'tail' })
      }
      const alice = [await of('alice', 'a1'), await of('alice', 'a2'), await of('alice', 'a3'), await of('alice', 'a4'), await of('alice', 'a5')]
      const bob = [await of('bob', 'b1'), await of('bob', 'b2')]
      const open = await of(null, 'o1')
      const order: string[] = []
      for (let i = 0; i < 10; i++) order.push(...(await store.claim(60_000, 1)).map((claim) => claim.job.query))
      // Round-robin: one job of each tenant with jobs queued per round, each tenant's in its order
      // (the order of the tenants within a round is the ring's, see lib/job.lua's join_ring).
      t.same(order.slice(0, 3).sort(), ['a1', 'b1', 'o1'], 'a first round: one job of each tenant')
      t.same(order.slice(3, 5).sort(), ['a2', 'b2'], 'a second round: one of each tenant with jobs left')
      t.same(order.slice(5), ['a3', 'a4', 'a5'], 'then the rest, in order')
      t.equal(alice.length + bob.length + (open === null ? 0 : 1), 8)
      t.equal(await store.queueDepth(), 0)
    })

    t.test('a create past the tenant\'s queued quota is refused, naming the quota; other tenants and work already queued are unaffected', async (t) => {
      const store = await make(t)
      const quota = { maxQueued: 2 }
      const create = async (owner: string): Promise<unknown> => await store.put({ ...newJob({ query: owner, depth: 'quick' }), owner }, 0, { enqueue: 'tail', quota })
      t.match(await create('alice'), { ok: true })
      t.match(await create('alice'), { ok: true })
      t.match(await create('alice'), { ok: false, reason: 'unavailable', applied: 'no', quota: { name: 'queued', limit: 2 } }, 'the third queued job of one tenant')
      t.match(await create('bob'), { ok: true }, 'another tenant')
      t.equal(await store.queueDepth(), 3, 'the refused create left nothing behind')
      t.equal((await store.claim(60_000, 10)).length, 3)
      t.match(await create('alice'), { ok: true }, 'claims make room')
    })

    t.test('a claim fences the job: writes under another fence, or after a takeover, are refused', async (t) => {
      const store = await make(t)
      const job = await create(store)
      const [claim] = await store.claim(60_000, 1)
      if (claim === undefined) throw new Error('nothing claimed')
      t.match(await store.put({ ...job, status: 'processing' }, 1, { fence: 'r-not-mine', leaseMs: 60_000 }), { ok: false, reason: 'fenced' })
      const running = await write(store, { ...job, status: 'processing', attempts: 1 }, 1, { fence: claim.fence, leaseMs: 60_000 })
      t.equal(await store.renewLease(job.job_id, claim.fence, 60_000), 'renewed')
      t.equal(await store.renewLease(job.job_id, 'r-not-mine', 60_000), 'lost')
      t.match(await store.put({ ...running, status: 'pending' }, running.version, { takeover: true }), { ok: false, reason: 'fenced' }, 'no takeover while the lease is alive')
      const cancelled = await write(store, { ...running, status: 'cancelled' }, running.version)
      t.equal(cancelled.status, 'cancelled')
      t.equal(await store.renewLease(job.job_id, claim.fence, 60_000), 'lost', 'a final write ends the claim')
    })

    t.test('leases run out by the store\'s clock; a takeover needs an expired lease and ends the old claim', async (t) => {
      const store = await make(t)
      const job = await create(store)
      const [claim] = await store.claim(150, 1)
      if (claim === undefined) throw new Error('nothing claimed')
      const running = await write(store, { ...job, status: 'processing', attempts: 1 }, 1, { fence: claim.fence, leaseMs: 150 })
      t.same(await store.expiredLeases(10), [], 'alive right after the write')
      await sleep(250)
      t.same(await store.expiredLeases(10), [job.job_id], 'expired once its time passed')
      const taken = await write(store, { ...running, status: 'pending' }, running.version, { takeover: true, enqueue: 'head' })
      t.equal(taken.status, 'pending')
      t.same(await store.expiredLeases(10), [], 'the takeover ended the lease')
      t.match(await store.put({ ...running, progress: 50 }, taken.version, { fence: claim.fence, leaseMs: 150 }), { ok: false, reason: 'fenced' }, 'the old worker is fenced out')
      t.equal(await store.renewLease(job.job_id, claim.fence, 150), 'lost')
      const [again] = await store.claim(60_000, 1)
      t.equal(again?.job.job_id, job.job_id, 'the job is claimable again')
    })

    t.test('renewals keep a lease alive; dropLease drops only an expired one', async (t) => {
      const store = await make(t)
      const job = await create(store)
      const [claim] = await store.claim(200, 1)
      if (claim === undefined) throw new Error('nothing claimed')
      for (let i = 0; i < 4; i++) {
        await sleep(80)
        t.equal(await store.renewLease(job.job_id, claim.fence, 200), 'renewed')
      }
      t.same(await store.expiredLeases(10), [], 'renewed past its first expiry')
      await store.dropLease(job.job_id)
      t.equal(await store.renewLease(job.job_id, claim.fence, 200), 'renewed', 'a live lease is not dropped')
      await sleep(300)
      await store.dropLease(job.job_id)
      t.same(await store.expiredLeases(10), [], 'an expired one is')
    })

    t.test('a retry waits for its delay (the store\'s clock), then a claim queues and takes it', async (t) => {
      const store = await make(t)
      const job = await create(store)
      const [claim] = await store.claim(60_000, 1)
      await write(store, job, 1, { fence: claim?.fence, enqueue: { retryInMs: 200 } })
      t.same(await store.claim(60_000, 1), [], 'not before its time')
      t.equal((await store.stats()).delayed, 1)
      await sleep(300)
      t.same((await store.claim(60_000, 1)).map((c) => c.job.job_id), [job.job_id], 'due: queued and claimed in one step')
    })

    t.test('lists newest first with cursors and a status filter', async (t) => {
      const store = await make(t)
      const base = Date.parse('2026-01-01T00:00:00Z')
      const made: StoredJob[] = []
      for (let i = 0; i < 11; i++) {
        // Three jobs share each millisecond, to prove ties page correctly.
        const job = newJob({ query: `q${i}`, depth: 'quick', now: new Date(base + Math.floor(i / 3)) })
        made.push(await write(store, i % 3 === 0 ? { ...job, status: 'failed' } : job, 0))
      }
      const seen: string[] = []
      let after
      for (let pages = 0; pages < 20; pages++) {
        const page = await store.list({ limit: 4, after })
        seen.push(...page.jobs.map((j) => j.job_id))
        if (!page.hasMore) break
        after = decodeCursor(encodeCursor(page.jobs.at(-1) as StoredJob)) ?? undefined
      }
      const expected = [...made].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || (a.job_id < b.job_id ? 1 : -1)).map((j) => j.job_id)
      t.same(seen, expected, 'all of them, newest first, each once')
      const failed = await store.list({ limit: 100, status: 'failed' })
      t.equal(failed.jobs.length, 4)
      t.ok(failed.jobs.every((j) => j.status === 'failed'))
    })

    t.test('a tenant\'s status-filtered list follows each job through claim, start, its end and delete', async (t) => {
      const store = await make(t)
      const ids = async (status: StoredJob['status']): Promise<string[]> => (await store.list({ limit: 10, owner: 'alice', status })).jobs.map((j) => j.job_id).sort()
      const made: StoredJob[] = []
      for (let i = 0; i < 3; i++) made.push(await write(store, { ...newJob({ query: `q${i}`, depth: 'quick' }), owner: 'alice' }, 0, { enqueue: 'tail' }))
      await write(store, { ...newJob({ query: 'bob\'s', depth: 'quick' }), owner: 'bob' }, 0)
      t.same(await ids('pending'), made.map((j) => j.job_id).sort())
      const claims: Array<{ job: StoredJob, fence: string, started?: boolean }> = []
      while (claims.length < 3) claims.push(...await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: 'Starting' }))
      const running = await Promise.all(claims.map(async ({ job, fence, started }) =>
        started === true ? job : await write(store, { ...job, status: 'processing' }, job.version, { fence, leaseMs: 60_000 })))
      t.same(await ids('processing'), running.map((j) => j.job_id).sort(), 'started: in processing, not pending')
      const done = running[0] as StoredJob
      await write(store, { ...done, status: 'completed' }, done.version, { fence: claims[0]?.fence })
      t.same(await ids('completed'), [done.job_id])
      t.same(await ids('processing'), running.slice(1).map((j) => j.job_id).sort())
      await store.delete(done.job_id)
      t.same(await ids('completed'), [], 'a deleted job leaves it')
      t.same((await store.list({ limit: 10, owner: 'bob', status: 'processing' })).jobs, [], 'another tenant\'s list is its own')
    })

    t.test('a tenant\'s list holds only its jobs, paged by cursor, newest first', async (t) => {
      const store = await make(t)
      const mine: string[] = []
      for (let i = 0; i < 7; i++) {
        const owner = i % 3 === 0 ? 'alice' : 'bob'
        const job = await write(store, { ...newJob({ query: `q${i}`, depth: 'quick', now: new Date(Date.parse('2026-01-01T00:00:00Z') + i) }), owner }, 0)
        if (owner === 'alice') mine.unshift(job.job_id)
      }
      const seen: string[] = []
      let after
      for (let pages = 0; pages < 10; pages++) {
        const page = await store.list({ limit: 2, owner: 'alice', after })
        seen.push(...page.jobs.map((j) => j.job_id))
        if (!page.hasMore) break
        after = decodeCursor(encodeCursor(page.jobs.at(-1) as StoredJob)) ?? undefined
      }
      t.same(seen, mine)
      await store.delete(mine[0] as string)
      t.same((await store.list({ limit: 10, owner: 'alice' })).jobs.map((j) => j.job_id), mine.slice(1), 'a deleted job leaves it')
      t.same((await store.list({ limit: 10, owner: 'carol' })).jobs, [])
    })

    t.test('a final write with a pending webhook queues its delivery; claims hold it for a while', async (t) => {
      const store = await make(t)
      const job = await create(store)
      const done = await write(store, { ...job, status: 'completed', webhook: { url: 'https://example.com/hook', status: 'pending', message_id: 'msg_1', deliveries: [], next_attempt_at: null, delivered_at: null } }, 1)
      t.same(await store.claimWebhooks(150, 10), [done.job_id], 'due at once')
      t.same(await store.claimWebhooks(150, 10), [], 'held by the claim')
      await sleep(250)
      t.same(await store.claimWebhooks(150, 10), [done.job_id], 'due again once the claim ran out')
      await store.scheduleWebhook(done.job_id, 150)
      t.same(await store.claimWebhooks(150, 10), [])
      await sleep(250)
      t.same(await store.claimWebhooks(150, 10), [done.job_id], 'due after its scheduled delay')
      await store.scheduleWebhook(done.job_id, null)
      await sleep(250)
      t.same(await store.claimWebhooks(150, 10), [], 'settled')
    })

    t.test('delete removes the job from reads, lists and the queue', async (t) => {
      const store = await make(t)
      const job = await create(store)
      t.equal(await store.delete(job.job_id), true)
      t.equal(await store.get(job.job_id), null)
      t.same((await store.list({ limit: 10 })).jobs, [])
      t.same(await store.claim(60_000, 10), [])
      t.equal(await store.delete(job.job_id), false, 'deleting twice is a no-op')
    })

    t.test('stats count live records by status and report queue and leases', async (t) => {
      const store = await make(t)
      const first = await createInFirstQueue(store, 'first')
      const second = await createInFirstQueue(store, 'second')
      await write(store, { ...(await create(store)), status: 'failed' }, 1)
      const [claim] = await store.claim(60_000, 1)
      await write(store, { ...first, status: 'processing', attempts: 1, worker: 'w1' }, 1, { fence: claim?.fence, leaseMs: 60_000 })
      const stats = await store.stats()
      t.same(stats.counts, { pending: 1, processing: 1, completed: 0, failed: 1, cancelled: 0 })
      t.equal(stats.queued, 1)
      t.equal(stats.oldestQueuedAt, second.updated_at)
      t.same(stats.leasesByWorker, { w1: 1 })
    })
  })
}
