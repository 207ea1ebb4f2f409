// The store's rules for a Redis that comes back with older data under the same epoch key, for
// refused writes and for admission, each on its own, on a real redis-server of the test's own.
import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import * as lifecycle from '../../src/lifecycle.js'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { RedisKeys } from '../../src/store/keys.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { RedisJobStore, type WentBack } from '../../src/store/redis.js'
import { refusesEveryWriter } from '../../src/store/redis-gate.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

const KEYS = new RedisKeys()
const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())

async function connectedStore (admission?: { percent: number, reserveBytes: number }): Promise<RedisJobStore> {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  return new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 500, admission })
}

t.beforeEach(async () => {
  await admin.flushAll()
  await admin.configSet('maxmemory', '0')
})

t.test('Redis back behind the write counter a replica saw: told at once, nothing claimed or written on the older data, and the check raises the counter, moves the epoch once and holds what was queued or leased', async (t) => {
  const store = await connectedStore()
  const other = await connectedStore()
  const told: WentBack[] = []
  store.onWentBack((wentBack) => told.push(wentBack))
  await store.epoch('first')
  await other.epoch('first')
  const running = await store.put(newJob({ query: 'running before', depth: 'quick' }), 0, { enqueue: 'tail' })
  const queued = await store.put(newJob({ query: 'queued before', depth: 'quick' }), 0, { enqueue: 'tail' })
  t.ok(queued.ok && running.ok)
  const [claim] = await store.claim(60_000, 1)
  t.ok(claim !== undefined, 'one job claimed')
  const seen = store.highWater
  t.ok(seen >= 3, `every create and claim took a counter value (${seen})`)

  // A restart from an older snapshot, as Redis sees it: the same epoch, a lower counter.
  await admin.set(KEYS.seq, '1')
  await store.read('any')
  t.same(told, [{ seen, found: 1 }], 'the first reply below the mark is told')
  t.same(await store.claim(60_000, 5), [], 'no claim on the older data')
  const write = await store.put(newJob({ query: 'created meanwhile', depth: 'quick' }), 0, { enqueue: 'tail' })
  t.match(write, { ok: false, reason: 'unavailable', applied: 'no', cause: /went back in time/ }, 'no write on the older data')
  t.equal(await admin.get(KEYS.seq), '1', 'the refused claim and write leave the counter where Redis has it')

  const check = await store.epoch('second', 5000)
  t.match(check, { epoch: 'back-second', founded: true, wentBack: { seen, found: 1 } }, 'the first to notice moves the epoch, marked')
  t.equal(Number(await admin.get(KEYS.seq)), seen, 'the counter is raised to what the replica saw: no fence is issued twice')
  t.equal(store.highWater, seen)
  t.same(await admin.zRange(KEYS.queue, 0, -1), [], 'nothing left to claim at once')
  const held = Number(await admin.zScore(KEYS.delayed, (queued as any).job.job_id))
  t.ok(held > Date.now() + 4000, 'the queued job waits the hold')
  t.ok(Number(await admin.zScore(KEYS.leases, claim?.job.job_id as string)) > Date.now() + 4000, 'the leased job is not taken over before the hold either')
  const again = await other.epoch('third', 5000)
  t.match(again, { epoch: 'back-second', founded: false, wentBack: null }, 'a replica that knew less follows the new epoch, and moves nothing')
  const [next] = await (await connectedStore()).claim(60_000, 1)
  t.equal(next, undefined, 'the held job is not claimed before the hold')
  const created = await store.put(newJob({ query: 'created after', depth: 'quick' }), 0, { enqueue: 'tail' })
  t.ok(created.ok, 'writes go on once the counter is set right')
  const [fresh] = await store.claim(60_000, 1)
  t.ok(Number(fresh?.fence.slice(1)) > seen, `a new claim's fence (${fresh?.fence as string}) is above every value seen before the rewind`)
})

t.test('a progress write takes a counter value like every record write, and is refused on data older than the replica saw', async (t) => {
  const store = await connectedStore()
  const told: WentBack[] = []
  store.onWentBack((wentBack) => told.push(wentBack))
  await store.epoch('first')
  t.ok((await store.put(newJob({ query: 'running', depth: 'quick' }), 0, { enqueue: 'tail' })).ok)
  const [claim] = await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: 'Starting' })
  if (claim?.started !== true) throw new Error('the claim did not begin the job')
  const before = store.highWater
  const patch = (version: number, progress: number) => store.patchProgress(claim.job.job_id, claim.fence, version, { progress, step: `at ${progress}`, now: Date.now() })
  const first = await patch(claim.job.version, 10)
  t.match(first, { outcome: 'written', version: claim.job.version + 1 })
  t.ok(store.highWater > before, 'the patch took the counter\'s next value: a rewind that loses only patches is noticed too')

  // A restart from an older snapshot: the same epoch, a lower counter.
  await admin.set(KEYS.seq, '1')
  t.same(await patch(claim.job.version + 1, 20), { outcome: 'unavailable' }, 'no patch on the older data')
  t.match(JSON.parse(await admin.get(KEYS.job(claim.job.job_id)) as string), { progress: 10 }, 'the record as it was')
  t.equal(await admin.get(KEYS.seq), '1', 'and the counter too: the INCR that found Redis behind is undone')
  t.same(told.length, 1, 'the reply below the mark is told')
})

t.test('a claim on data older than the replica saw moves no due retry into the queue either', async (t) => {
  const store = await connectedStore()
  await store.epoch('first')
  const retry = await store.put(newJob({ query: 'retry due', depth: 'quick' }), 0, { enqueue: { retryInMs: 0 } })
  if (!retry.ok) throw new Error('create refused')
  for (const query of ['one', 'two']) t.ok((await store.put(newJob({ query, depth: 'quick' }), 0)).ok, 'a write the replica sees land')
  t.ok(store.highWater >= 3)
  await admin.set(KEYS.seq, '1')
  t.same(await store.claim(60_000, 1), [], 'nothing claimed')
  t.same(await admin.zRange(KEYS.delayed, 0, -1), [retry.job.job_id], 'the retry waits where it was')
  t.same(await admin.zRange(KEYS.queue, 0, -1), [])
  t.equal(await admin.get(KEYS.seq), '1', 'and the counter where Redis has it')
})

t.test('a create past the admission limit is refused as full in the same step; without maxmemory there is no limit', async (t) => {
  const store = await connectedStore({ percent: 50, reserveBytes: 64 * 1024 })
  const job = (): ReturnType<typeof newJob> => newJob({ query: 'admitted?', depth: 'quick' })
  t.ok((await store.put(job(), 0, { enqueue: 'tail', admit: true })).ok, 'no maxmemory: admitted')
  t.match(await store.memory(), { maxBytes: 0, admitLimitBytes: null })
  const { usedBytes } = await store.memory()
  await admin.configSet('maxmemory', String(Math.round(usedBytes * 2 + 64 * 1024)))
  const refused = await store.put(job(), 0, { enqueue: 'tail', admit: true })
  t.match(refused, { ok: false, reason: 'unavailable', full: true, cause: /too full to take more jobs/ }, 'half of maxmemory leaves no room for one more reserve')
  t.ok((await store.put(job(), 0, { enqueue: 'tail' })).ok, 'writes that are not admissions go on')
  const memory = await store.memory()
  t.equal(memory.admitLimitBytes, Math.floor(memory.maxBytes / 2))
})

t.test('after Redis went back, a final record replaces an unfinished copy that carries a higher version from before', async (t) => {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  const memory = new MemoryJobStore({ ttlSeconds: 3600, maxJobs: 100 })
  const store = new FallbackJobStore({ memory, redis: new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 500 }), breakerMs: 100, reconcileEveryMs: 100 })
  connectInBackground(client)
  t.teardown(() => { store.close(); client.destroy() })
  await waitFor('on Redis', () => store.mode === 'redis')
  const created = await store.put(newJob({ query: 'rewound', depth: 'quick' }), 0)
  if (!created.ok) throw new Error('not created')
  const owner = { attempt: 1, worker: 'w' }
  const now = new Date().toISOString()
  const running = lifecycle.begin(created.job, owner, now)
  // The copy saw the run reach version 9 before the rewind; the run again ended at version 3.
  memory.adopt({ ...lifecycle.advance(running, 80, 'Step 8'), version: 9 })
  await admin.set(KEYS.job(created.job.job_id), JSON.stringify({ ...lifecycle.complete(running, owner, { title: 't', summary: 's', markdown: '#', sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 1 } }, now), version: 3 }))
  const answer = await store.lookup(created.job.job_id)
  t.equal(answer.job?.status, 'completed', 'answered finished, not the older unfinished copy')
  t.equal(memory.peek(created.job.job_id)?.status, 'completed', 'the copy is replaced')
})

t.test('refusals every writer gets (MISCONF, OOM) are told apart from READONLY, which only this connection gets', async (t) => {
  t.ok(refusesEveryWriter('MISCONF Redis is configured to save RDB snapshots, but it is currently unable to persist'))
  t.ok(refusesEveryWriter('OOM command not allowed when used memory > \'maxmemory\''))
  t.notOk(refusesEveryWriter('READONLY You can\'t write against a read only replica.'))
  t.notOk(refusesEveryWriter('CROSSSLOT Keys in request don\'t hash to the same slot'))
})
