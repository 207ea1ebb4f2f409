// The Redis store's tenant indexes under the faults they must outlive: a running job's record
// gone without a write, a copy synced with little time left, lost ring keys, and records
// written before the indexes existed. On a real redis-server of the test's own.
import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import type { StoredJob } from '../../src/store/job-store.js'
import { RedisKeys } from '../../src/store/keys.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import type { RunningLimits } from '../../src/store/tenant-queues.js'
import { waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

const KEYS = new RedisKeys()
const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())
t.beforeEach(async () => { await admin.flushAll() })

async function connectedStore (runningLimits?: RunningLimits): Promise<RedisJobStore> {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  return new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 1000, runningLimits })
}

const begin = { worker: 'w', maxAttempts: 3, step: 'Starting' }
async function create (store: RedisJobStore, owner: string, changes: Partial<StoredJob> = {}): Promise<StoredJob> {
  const written = await store.put({ ...newJob({ query: `${owner}'s`, depth: 'quick' }), owner, ...changes }, 0, changes.status === undefined ? { enqueue: 'tail' } : {})
  if (!written.ok) throw new Error('not written')
  return written.job
}

t.test('a tenant at its running limit whose running job\'s record vanished (expired, evicted) is not held back for good', async (t) => {
  const store = await connectedStore({ max: 1, of: {} })
  const first = await create(store, 'alice')
  const second = await create(store, 'alice')
  t.same((await store.claim(60_000, 5, begin)).map((claim) => claim.job.job_id), [first.job_id], 'one at a time')
  t.same(await store.claim(60_000, 5, begin), [], 'alice is at her limit')
  t.match((await store.stats()).byTenant, { alice: { queued: 1, running: 1 } }, 'a parked tenant is in the stats')
  await admin.del(KEYS.job(first.job_id))
  t.same((await store.claim(60_000, 5, begin)).map((claim) => claim.job.job_id), [second.job_id], 'the vanished run no longer counts')
})

t.test('a copy synced with little time left does not cut short the life of its tenant\'s shared indexes', async (t) => {
  const store = await connectedStore()
  await create(store, 'bob', { status: 'completed' })
  const old = { ...newJob({ query: 'old', depth: 'quick' }), owner: 'bob', status: 'completed' as const, version: 3, expires_at: new Date(Date.now() + 5000).toISOString() }
  t.ok(await store.sync(old, { mode: 'reseed', queue: false }))
  for (const key of [KEYS.ownerStatus('bob', 'completed'), KEYS.ownerCreated('bob')]) {
    t.ok(await admin.pTTL(key) > 3_000_000, `${key} lives as long as bob's newest job`)
  }
})

t.test('queued jobs whose tenant lost its place in the ring are claimed again after the orphan sweep', async (t) => {
  const store = await connectedStore()
  const job = await create(store, 'carol')
  await admin.del(KEYS.tenants)
  t.same(await store.claim(60_000, 5), [], 'no claim reaches carol while the ring has lost her')
  t.ok(await store.sweepOrphans(100) >= 1, 'the sweep repairs it')
  t.same((await store.claim(60_000, 5)).map((claim) => claim.job.job_id), [job.job_id])
})

t.test('records written before the tenants\' status indexes existed: lists scan until the sweep has built them, then read them', async (t) => {
  const store = await connectedStore()
  const failed = await create(store, 'dave', { status: 'failed' })
  for (let i = 0; i < 5; i++) await create(store, 'dave', { status: 'completed' })
  // As an older version left them: no status index, no record of a build.
  await admin.del([KEYS.ownerStatus('dave', 'failed'), KEYS.ownerStatus('dave', 'completed'), KEYS.ownerStatusBackfill])
  const before = await connectedStore()
  t.same((await before.list({ limit: 10, owner: 'dave', status: 'failed' })).jobs.map((job) => job.job_id), [failed.job_id], 'found by a scan meanwhile')
  await store.sweepOrphans(4)
  t.not(await admin.get(KEYS.ownerStatusBackfill), 'done', 'built a few records a sweep')
  await store.sweepOrphans(4)
  t.equal(await admin.get(KEYS.ownerStatusBackfill), 'done')
  t.same(await admin.zRange(KEYS.ownerStatus('dave', 'failed'), 0, -1), [failed.job_id])
  t.equal(await admin.zCard(KEYS.ownerStatus('dave', 'completed')), 5)
  t.ok(await admin.pTTL(KEYS.ownerStatus('dave', 'completed')) > 3_000_000, 'the index lives as long as its records')
  const after = await connectedStore()
  t.same((await after.list({ limit: 10, owner: 'dave', status: 'failed' })).jobs.map((job) => job.job_id), [failed.job_id], 'read from the index')
})

t.test('a tenant new to a ring of busy tenants is served at the next claim; one that leaves the ring and joins again waits its turn', async (t) => {
  const store = await connectedStore()
  for (let i = 0; i < 3; i++) for (const owner of ['t1', 't2', 't3', 't4']) await create(store, owner)
  const owners = async (n: number): Promise<string[]> => (await store.claim(60_000, n)).map((claim) => claim.job.owner as string)
  t.same((await owners(4)).sort(), ['t1', 't2', 't3', 't4'], 'a round of the four busy tenants')
  await create(store, 'newcomer')
  t.same(await owners(1), ['newcomer'], 'not behind a round of busy tenants')
  // newcomer left the ring (nothing queued) having just been served: it joins again behind the
  // tenants served before it.
  await create(store, 'newcomer')
  t.same((await owners(5)).slice(0, 4).sort(), ['t1', 't2', 't3', 't4'], 'a tenant served moments ago waits for the others')
})
