// What is particular to the Redis store: its key layout and TTLs, tombstones, the copy and
// re-seed scripts, orphan repair, the epoch, and deadlines that measure Redis's silence.
// The behaviour every store shares is in contract.test.ts.
import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import * as lifecycle from '../../src/lifecycle.js'
import { type StoredJob, toPublic } from '../../src/schemas/job.js'
import { compareEventIds, eventData } from '../../src/schemas/events.js'
import { type PutOptions, withProgress } from '../../src/store/job-store.js'
import { RedisKeys } from '../../src/store/keys.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { RedisTimeoutError, SilenceDeadline } from '../../src/store/silence-deadline.js'
import { connectInBackground, createRedisClient, firstKey } from '../../src/store/redis-client.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/app.js'
import { commandCalls, scriptCalls } from '../helpers/commandstats.js'

const KEYS = new RedisKeys()
const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())

async function connectedStore (options: { timeoutMs?: number, ttlSeconds?: number, maxEvents?: number } = {}): Promise<RedisJobStore> {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  return new RedisJobStore(client, { ttlSeconds: options.ttlSeconds ?? 86400, timeoutMs: options.timeoutMs ?? 500, maxEvents: options.maxEvents })
}

const store = await connectedStore()

async function write (job: StoredJob, expected = 0, options: PutOptions = {}): Promise<StoredJob> {
  const r = await store.put(job, expected, options)
  if (!r.ok) throw new Error('write refused')
  return r.job
}

const create = async (job: StoredJob = newJob({ query: 'q', depth: 'quick' })): Promise<StoredJob> => await write(job, 0, { enqueue: 'tail' })
const stored = async (id: string): Promise<any> => JSON.parse(await admin.get(KEYS.job(id)) as string)
const copyOf = (job: StoredJob, changes: Partial<StoredJob> = {}): StoredJob => ({ ...job, expires_at: new Date(Date.now() + 3600_000).toISOString(), ...changes })

t.beforeEach(async () => { await admin.flushAll() })

t.test('a record is JSON at job:<id>, written with SETEX, leading with version, status and attempts', async (t) => {
  const job = await create()
  const ttl = await admin.ttl(KEYS.job(job.job_id))
  t.ok(ttl > 86390 && ttl <= 86400, `TTL ${ttl}`)
  const raw = await admin.get(KEYS.job(job.job_id))
  t.match(raw, /^\{"version":1,"status":"pending","attempts":0,/, 'the scripts read these three there')
  const { last_event_id: lastEventId, ...stored } = JSON.parse(raw as string)
  t.same(stored, job)
  t.match(lastEventId, /^1:\d+-0$/, 'with its log\'s last event id, tagged with the record\'s version, which the claim that starts it takes instead of reading the log')
  await admin.expire(KEYS.job(job.job_id), 100)
  await write({ ...job, progress: 10 }, 1)
  t.ok(await admin.ttl(KEYS.job(job.job_id)) > 86390, 'every write renews the TTL')
  t.same(await admin.zRange(KEYS.queue, 0, -1), [job.job_id], 'queued in jobs:queue')
})

t.test('a job\'s events: a list with the record\'s TTL (set when it starts, renewed when the job is queued, not by a running job\'s writes), one entry per visible change, ids that only grow, the newest kept, well under 1 KB for a running job', async (t) => {
  const small = await connectedStore({ maxEvents: 3 })
  const put = async (job: StoredJob, expected: number): Promise<StoredJob> => {
    const r = await small.put(job, expected)
    if (!r.ok) throw new Error('write refused')
    return r.job
  }
  let job = await put(newJob({ query: 'q', depth: 'quick' }), 0)
  job = await put({ ...job, status: 'processing', attempts: 1, current_step: 'Starting research' }, job.version)
  job = await put({ ...job, worker: 'another worker' }, job.version)
  t.same((await small.events(job.job_id, null, 10)).map((e) => e.type), ['status', 'status'], 'a write no client can see (a lease renewal) adds no event')
  t.equal(await admin.type(KEYS.events(job.job_id)), 'list')
  t.ok(await admin.ttl(KEYS.events(job.job_id)) > 86390, 'the record\'s TTL')
  await admin.expire(KEYS.events(job.job_id), 1000)
  for (let progress = 10; progress <= 40; progress += 10) job = await put({ ...job, progress }, job.version)
  t.ok(await admin.ttl(KEYS.events(job.job_id)) <= 1000, 'a running job\'s writes leave the log\'s TTL alone')
  const kept = await small.events(job.job_id, null, 10)
  t.same(kept.map((e) => JSON.parse(e.data).progress), [20, 30, 40], 'the newest 3 (maxEvents) kept')
  const ids = kept.map((e) => e.id)
  t.ok(ids.every((id, i) => i === 0 || compareEventIds(id, ids[i - 1] as string) > 0), `ids grow, also within one millisecond: ${ids.join(', ')}`)
  t.same((await small.events(job.job_id, ids[0] as string, 10)).map((e) => e.id), ids.slice(1), 'resumed after an id')
  t.same((await small.events(job.job_id, null, 1)).map((e) => e.id), ids.slice(0, 1), 'at most limit')
  // A stream would take 4 KB for its first entry (Redis preallocates a node of stream-node-max-bytes).
  const bytes = await admin.memoryUsage(KEYS.events(job.job_id)) as number
  t.ok(bytes < 1024, `a running job's events take ${bytes} bytes of Redis memory`)
  job = await put({ ...job, status: 'pending', worker: null }, job.version)
  t.ok(await admin.ttl(KEYS.events(job.job_id)) > 86390, 'queued again: the record\'s TTL again')
  job = await put({ ...job, status: 'completed', progress: 100 }, job.version)
  t.equal((await small.events(job.job_id, ids[2] as string, 10)).at(-1)?.type, 'completed')
})

t.test('a job\'s events are kept as their values alone, without the job id or the names, which the reader puts back; entries kept as JSON are read as they are', async (t) => {
  let job = await create()
  const [claim] = await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: 'Starting research' })
  t.equal(claim?.started, true, 'the claim began the attempt (its event written by the script)')
  job = claim?.job as StoredJob
  job = await write({ ...job, progress: 50, current_step: 'Reading sources' }, job.version, { fence: claim?.fence })
  const raw = await admin.lRange(KEYS.events(job.job_id), 0, -1)
  t.equal(raw.length, 3)
  t.same(raw.filter((entry) => entry.includes(job.job_id)), [], 'no kept entry holds the job id')
  const events = await store.events(job.job_id, null, 10)
  t.ok(events.every((e) => e.data.startsWith(`{"job_id":"${job.job_id}",`)), 'read back, each event\'s data leads with the job id, as before')
  t.same(JSON.parse(events[2]?.data as string), JSON.parse(eventData(job)), 'and is the job\'s event data')
  t.same(events.map((e) => JSON.parse(e.data).status), ['pending', 'processing', 'processing'])
  t.same(raw.map((entry) => entry.split(' ').slice(2).join(' ')), [
    'pending\t0\t0\tnull\t"Queued"', 'processing\t0\t1\tnull\t"Starting research"', 'processing\t50\t1\tnull\t"Reading sources"'
  ], 'each entry keeps the values alone: status, progress, attempts, error and step (JSON texts)')
  const saved = events.reduce((sum, e) => sum + Buffer.byteLength(`${e.id} ${e.type} ${e.data}`), 0) - raw.reduce((sum, entry) => sum + Buffer.byteLength(entry), 0)
  t.equal(saved, 3 * (`"job_id":"${job.job_id}",`.length + 58), 'the bytes of three ids and three sets of names saved')
  // Entries kept as JSON, with the id (before #29) or without it (before this change), are read as they are.
  const { job_id: _id, ...withoutId } = JSON.parse(eventData({ ...job, progress: 55 }))
  await admin.rPush(KEYS.events(job.job_id), `${Date.now() + 500}-0 progress ${JSON.stringify(withoutId)}`)
  t.equal((await store.events(job.job_id, events[2]?.id as string, 10))[0]?.data, eventData({ ...job, progress: 55 }))
  const older = `${Date.now() + 1000}-0 progress ${eventData({ ...job, progress: 60 })}`
  await admin.rPush(KEYS.events(job.job_id), older)
  const last = (await store.events(job.job_id, events[2]?.id as string, 10)).at(-1)
  t.equal(last?.data, eventData({ ...job, progress: 60 }))
})

t.test('a log that expired under a run longer than the TTL starts again with the TTL at its next entry', async (t) => {
  let job = await create()
  job = await write({ ...job, status: 'processing', attempts: 1 }, job.version)
  await admin.del(KEYS.events(job.job_id))
  job = await write({ ...job, progress: 50 }, job.version)
  t.same((await store.events(job.job_id, null, 10)).map((e) => e.type), ['progress'])
  t.ok(await admin.ttl(KEYS.events(job.job_id)) > 86390, 'never a log without a TTL')
})

t.test('a finished job keeps no event log (#29): the write that ends it drops the list, and its final event, id and data as written, is read from the record', async (t) => {
  let job = await create()
  const [claim] = await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: 'Starting research' })
  job = claim?.job as StoredJob
  job = await write({ ...job, progress: 50, current_step: 'Reading sources' }, job.version, { fence: claim?.fence })
  const running = await store.events(job.job_id, null, 10)
  t.equal(running.length, 3)
  const logBytes = await admin.memoryUsage(KEYS.events(job.job_id)) as number
  job = await write({ ...job, status: 'completed', progress: 100, current_step: 'Completed', completed_at: new Date().toISOString() }, job.version, { fence: claim?.fence })
  t.equal(await admin.exists(KEYS.events(job.job_id)), 0, `the list (${logBytes} bytes while running) went in the write that ended the job`)
  const final = await store.events(job.job_id, null, 10)
  t.equal(final.length, 1, 'a client arriving after the end gets the final event')
  t.equal(final[0]?.type, 'completed')
  t.same(JSON.parse(final[0]?.data as string), JSON.parse(eventData(job)), 'with the job\'s event data')
  t.ok(compareEventIds(final[0]?.id as string, running.at(-1)?.id as string) > 0, 'and an id after every event before it')
  t.same(await store.events(job.job_id, running[0]?.id as string, 10), final, 'a resume from before the end gets the final event')
  t.same(await store.events(job.job_id, final[0]?.id as string, 10), [], 'a resume at the final event gets nothing more')
  t.same(toPublic(await store.get(job.job_id) as StoredJob), toPublic(job), 'the record reads back as written')

  // A webhook's outcome amends the final record: the final event stays where it was, nothing is appended.
  const amended = await store.put({ ...job, webhook: null }, job.version, { amendFinal: true })
  t.ok(amended.ok)
  t.equal(await admin.exists(KEYS.events(job.job_id)), 0, 'no list comes back')
  t.same(await store.events(job.job_id, null, 10), final, 'the same final event')

  // A pending job cancelled: its log goes too.
  const pending = await create()
  const cancelled = await write({ ...pending, status: 'cancelled', completed_at: new Date().toISOString() }, pending.version)
  t.equal(await admin.exists(KEYS.events(pending.job_id)), 0)
  t.same((await store.events(pending.job_id, null, 10)).map((e) => [e.type, JSON.parse(e.data).status]), [['cancelled', 'cancelled']])
  t.equal(cancelled.status, 'cancelled')
})

t.test('a final record with no place for the final event\'s id (a head field left out) keeps its log, the final event appended to it', async (t) => {
  let job = await create()
  job = await write({ ...job, status: 'processing', attempts: 1 }, job.version)
  const { worker: _worker, ...headless } = { ...job, status: 'failed' as const, error: 'boom', completed_at: new Date().toISOString() }
  job = await write(headless as StoredJob, job.version)
  t.notOk('last_event_id' in await stored(job.job_id), 'the record keeps no id')
  t.same((await store.events(job.job_id, null, 10)).map((e) => e.type), ['status', 'status', 'failed'], 'the log keeps the whole history and the end')
})

t.test('a finished record of an earlier release (its log kept, no final id in the record) is read from its log as before', async (t) => {
  let job = await create()
  job = await write({ ...job, status: 'processing', attempts: 1 }, job.version)
  const entries = await admin.lRange(KEYS.events(job.job_id), 0, -1)
  const finalJob = { ...job, status: 'failed' as const, error: 'boom', version: job.version + 1 }
  await admin.set(KEYS.job(job.job_id), JSON.stringify(finalJob))
  await admin.rPush(KEYS.events(job.job_id), `${Date.now() + 1000}-0 failed failed\t0\t1\t"boom"\t"Queued"`)
  const events = await store.events(job.job_id, null, 10)
  t.equal(events.length, entries.length + 1)
  t.equal(events.at(-1)?.type, 'failed')
})

t.test('a write does only the index upkeep its transition needs: a create ends no claim, a start under a claim touches no queue, no write keeps a separate expiry index', async (t) => {
  const calls = async (action: () => Promise<unknown>): Promise<Record<string, number>> => {
    await admin.configResetStat()
    await action()
    const counts: Record<string, number> = {}
    for (const [, name, n] of (await admin.info('commandstats')).matchAll(/cmdstat_(\w+):calls=(\d+)/g)) counts[name as string] = Number(n)
    return counts
  }
  let job = newJob({ query: 'q', depth: 'quick' })
  const created = await calls(async () => { job = await create(job) })
  t.notOk(created.zrem ?? created.hdel, `no lease or fence to drop for a new record: ${JSON.stringify(created)}`)
  t.equal(created.zadd, 5, `creation order, status set (scored by expiry: the expiry index too), queue, its tenant's queue and the ring of tenants (fair share): ${JSON.stringify(created)}`)
  t.notOk(created.lindex, `a new record has no last event to read: ${JSON.stringify(created)}`)
  let fence = ''
  const claimed = await calls(async () => { fence = (await store.claim(60_000, 1))[0]?.fence ?? '' })
  t.equal(claimed.incr, 1, `the fencing token is one fresh value of the write counter: ${JSON.stringify(claimed)}`)
  t.equal(fence, `r${await admin.get(KEYS.seq) as string}`)
  const started = await calls(async () => { job = await write({ ...job, status: 'processing', attempts: 1 }, job.version, { fence, leaseMs: 60_000 }) })
  t.equal(started.zrem, 1, `only its pending status entry goes; the claim already took it off the queue: ${JSON.stringify(started)}`)
  t.equal(started.zadd, 2, `its new status set and its lease: ${JSON.stringify(started)}`)
  t.same(await admin.zRange(KEYS.queue, 0, -1), [])
  const queued = await create(newJob({ query: 'cancelled while queued', depth: 'quick' }))
  await write({ ...queued, status: 'cancelled' }, queued.version)
  t.same(await admin.zRange(KEYS.queue, 0, -1), [], 'a queued job written without a claim (cancelled) leaves the queue')
})

t.test('a claim asked to start begins each attempt in the same step: the record a start write would store, its status event, one script', async (t) => {
  const begin = { worker: 'host-1-abc', maxAttempts: 3, step: 'Starting research' }
  // A retried job: a history to append to, a step and an error with quotes and backslashes to skip.
  const retried = await create({
    ...newJob({ query: 'q', depth: 'quick' }),
    attempts: 1,
    progress: 30,
    error: 'engine said "no" \\ twice',
    current_step: 'Attempt 1 of 3 failed during: "reading" \\ sources; retrying',
    started_at: '2026-01-01T00:00:00.000Z',
    next_attempt_at: '2026-01-01T00:01:00.000Z',
    attempt_history: [{ attempt: 1, worker: 'old', started_at: '2026-01-01T00:00:00.000Z', ended_at: '2026-01-01T00:00:30.000Z', outcome: 'retrying', error: 'engine said "no" \\ twice' }]
  })
  const fresh = await create()
  await admin.configResetStat()
  const before = Date.now()
  const claims = await store.claim(60_000, 2, begin)
  const stats = await admin.info('commandstats')
  t.equal(scriptCalls(stats), 1, 'one script for the claim and both starts')
  t.notMatch(stats, /cmdstat_lindex/, 'the pending records keep their last event id: no log is read')
  t.same(claims.map((c) => [c.job.job_id, c.started]), [[retried.job_id, true], [fresh.job_id, true]])
  const [again, first] = claims.map((c) => c.job) as [StoredJob, StoredJob]
  const { version, updated_at: updatedAt, expires_at: expiresAt, last_event_id: lastEventId, ...begun } = again
  // The lifecycle's `begin` is the reference the Lua start is held to.
  const { version: _v, updated_at: _u, expires_at: _e, ...reference } = lifecycle.begin(retried, { attempt: 2, worker: begin.worker }, updatedAt, begin.step)
  t.same(begun, { ...reference, fence: claims[0]?.fence }, 'what the lifecycle\'s begin makes of the record (the first started_at, progress and error kept), with the claim\'s token, as the holder\'s start write stores it')
  t.equal(version, retried.version + 1)
  t.ok(Date.parse(updatedAt) >= before && Date.parse(updatedAt) <= Date.now(), 'stamped now')
  t.ok(Math.abs(Date.parse(expiresAt) - Date.parse(updatedAt) - 86_400_000) < 1000, 'expires a TTL later')
  t.same(await stored(again.job_id), again, 'as stored')
  t.equal(first.started_at, first.updated_at, 'a first attempt sets started_at')
  t.same(first.attempt_history.map((a) => a.outcome), ['running'], 'an empty history gets its first entry')
  t.ok(await admin.ttl(KEYS.job(first.job_id)) > 86390, 'the record\'s TTL renewed')
  t.same(await admin.zRange(KEYS.status('processing'), 0, -1), [retried.job_id, first.job_id].sort(), 'in the processing set')
  t.equal(await admin.zCard(KEYS.status('pending')), 0)
  const events = await store.events(again.job_id, null, 10)
  t.same(events.map((e) => [e.type, e.data]).at(-1), ['status', eventData(again)], 'its status event, as a start write would add it')
  t.equal(lastEventId, `${version}:${events.at(-1)?.id as string}`, 'whose id the running record keeps, tagged with its version (the next progress write need not read the log)')
  const claim = claims[0]
  t.ok((await store.put({ ...again, status: 'completed', progress: 100 }, again.version, { fence: claim?.fence })).ok, 'the attempt then ends under its claim')
})

t.test('the scripts read a record\'s head whatever its values hold: an error or step quoting the next field\'s name or ending in a comma, a worker with commas (read field by field), escapes', async (t) => {
  const tricky = {
    error: 'parser stopped at ,"current_step":"fake" and "error":null, then \\" again',
    // A step ending in a comma: its closing quote follows it, as the next field's name would.
    current_step: 'Attempt 1 failed at ,"progress":99, "next": \u2028 done,'
  }
  for (const worker of ['host-1-abc', 'host,1,"odd"']) {
    const pending = await create({
      ...newJob({ query: 'q', depth: 'quick' }),
      ...tricky,
      attempts: 1,
      progress: 30,
      started_at: '2026-01-01T00:00:00.000Z',
      attempt_history: [{ attempt: 1, worker: 'old', started_at: '2026-01-01T00:00:00.000Z', ended_at: '2026-01-01T00:00:30.000Z', outcome: 'retrying', error: tricky.error }]
    })
    const [claim] = await store.claim(60_000, 1, { worker, maxAttempts: 3, step: 'Starting, "really"' })
    t.equal(claim?.started, true, `${worker}: begun by the claim`)
    const begun = claim?.job as StoredJob
    const { version: _v, updated_at: updatedAt, expires_at: _e, last_event_id: _l, ...rest } = begun
    const { version: _rv, updated_at: _ru, expires_at: _re, ...reference } = lifecycle.begin(pending, { attempt: 2, worker }, updatedAt, 'Starting, "really"')
    t.same(rest, { ...reference, fence: claim?.fence }, `${worker}: the error and step kept as they were`)
    let running = begun
    for (const step of ['Reading ,"worker":"x", sources', 'Reading 2/5: say "hi",', 'Reading 3/5: a title,']) {
      const patch = { progress: running.progress + 10, step, now: Date.now() }
      const patched = await store.patchProgress(running.job_id, claim?.fence as string, running.version, patch)
      t.same(patched, { outcome: 'written', version: running.version + 1 }, `${worker}: the progress write finds the claim's token after the head (the step before: ${running.current_step})`)
      running = withProgress(running, patch, running.version + 1)
      const { last_event_id: _k, ...afterPatch } = await stored(running.job_id)
      const { last_event_id: _b, ...expected } = running
      t.same(afterPatch, expected, `${worker}: only progress, step, time and version changed`)
      t.same((await store.events(running.job_id, null, 10)).at(-1)?.data, eventData(running), `${worker}: its event carries the error and step whole`)
    }
    t.ok(await store.renewLease(running.job_id, claim?.fence as string, 60_000) === 'renewed', `${worker}: the lease renewed under the claim the record carries`)
    const final = { ...running, status: 'failed' as const, error: 'gave up,', current_step: 'Failed during: Reading 3/5: a title,', completed_at: new Date().toISOString() }
    const done = await store.put(final, running.version, { fence: claim?.fence })
    t.ok(done.ok, `${worker}: the attempt ends under its claim`)
    const { last_event_id: finalEventId, ...finalStored } = await stored(running.job_id)
    const { fence: _f, last_event_id: _r, ...finalRecord } = final
    t.same(finalStored, { ...finalRecord, version: running.version + 1, updated_at: finalStored.updated_at, expires_at: finalStored.expires_at }, `${worker}: the final record stored whole, as valid JSON`)
    t.match(finalEventId, /^\d+:\d+-\d+$/, `${worker}: with its final event's id in place`)
  }
})

t.test('a claim asked to start leaves a job pending for the runner past its last attempt, or when its record has another layout', async (t) => {
  const begin = { worker: 'w', maxAttempts: 2, step: 'Starting research' }
  const spent = await create({ ...newJob({ query: 'spent', depth: 'quick' }), attempts: 2 })
  const other = await create()
  const { version, status, attempts, ...rest } = other
  await admin.set(KEYS.job(other.job_id), JSON.stringify({ version, status, attempts, ...rest, worker: null }))
  // Its step moved behind the rest: read in one match, the error would run on to it.
  const late = await create()
  const raw = await admin.get(KEYS.job(late.job_id)) as string
  await admin.set(KEYS.job(late.job_id), raw.replace(',"current_step":"Queued"', '').replace('"attempt_history"', '"current_step":"Queued","attempt_history"'))
  const claims = await store.claim(60_000, 3, begin)
  t.same(claims.map((c) => [c.job.job_id, c.job.status, c.started]), [[spent.job_id, 'pending', undefined], [other.job_id, 'pending', undefined], [late.job_id, 'pending', undefined]])
  t.equal(await admin.zCard(KEYS.status('processing')), 0)
})

t.test('the scripts also read records whose JSON does not lead with the header', async (t) => {
  const job = await create()
  const { version, status, attempts, ...rest } = job
  await admin.set(KEYS.job(job.job_id), JSON.stringify({ ...rest, status, attempts, version }))
  t.ok((await store.put({ ...job, progress: 5 }, version)).ok)
  const [claim] = await store.claim(1000, 1)
  t.equal(claim?.job.job_id, job.job_id)
})

t.test('a delete leaves a tombstone as long-lived as the record, so no stale copy can bring the job back', async (t) => {
  const job = await create()
  await admin.expire(KEYS.job(job.job_id), 500)
  t.equal(await store.delete(job.job_id), true)
  t.match(await admin.get(KEYS.job(job.job_id)), /^\{"version":2,"status":"deleted"\}$/)
  const ttl = await admin.ttl(KEYS.job(job.job_id))
  t.ok(ttl > 490 && ttl <= 500, `the tombstone keeps the record's TTL: ${ttl}`)
  t.same(await store.read(job.job_id), { job: null, deleted: true, epoch: null })
  for (const mode of ['outage', 'create', 'reseed'] as const) {
    t.equal(await store.sync(copyOf(job, { version: 9 }), { mode, base: 2, queue: true }), false, `no ${mode} copy over a tombstone`)
  }
  t.match(await store.put(job, 2), { ok: false, current: null })
  t.equal(await admin.zCard(KEYS.created), 0, 'gone from the indexes')
  t.equal(await store.delete(job.job_id), false)
})

t.test('sync: an outage copy lands only over the version it started from, never over a final record', async (t) => {
  const job = await create()
  t.equal(await store.sync(copyOf(job, { version: 3, progress: 50 }), { mode: 'outage', base: 0, queue: false }), false, 'Redis holds version 1, not the base 0: Redis wins')
  t.equal(await store.sync(copyOf(job, { version: 3, progress: 50 }), { mode: 'outage', base: 1, queue: false }), true)
  const ttl = await admin.ttl(KEYS.job(job.job_id))
  t.ok(ttl > 3590 && ttl <= 3600, `remaining TTL kept: ${ttl}`)
  t.equal((await stored(job.job_id)).progress, 50)
  await write({ ...job, status: 'completed' }, 3)
  t.equal(await store.sync(copyOf(job, { version: 9 }), { mode: 'outage', base: 4, queue: false }), false, 'a final record is never overwritten')
  t.equal(await store.sync(copyOf(job, { expires_at: new Date(Date.now() - 1).toISOString() }), { mode: 'outage', base: 4, queue: false }), false, 'an expired copy is dropped')
})

t.test('sync: a final outage copy drops the job\'s log and steps in Redis (#29) and keeps its final event\'s id, so a client resuming reads the end, not the progress from before the outage', async (t) => {
  let job = await create()
  job = await write({ ...job, status: 'processing', attempts: 1, progress: 30 }, job.version)
  t.equal((await store.events(job.job_id, null, 10)).length, 2)
  const before = await store.events(job.job_id, null, 10)
  await admin.hSet(KEYS.steps(job.job_id), 'plan', '{}')
  t.equal(await store.sync(copyOf(job, { version: job.version + 1, status: 'completed', progress: 100 }), { mode: 'outage', base: job.version, queue: false }), true)
  t.equal(await admin.exists(KEYS.events(job.job_id)), 0, 'the log is gone')
  t.equal(await admin.exists(KEYS.steps(job.job_id)), 0, 'with the checkpointed steps')
  const final = await store.events(job.job_id, null, 10)
  t.same(final.map((e) => [e.type, JSON.parse(e.data).status, JSON.parse(e.data).progress]), [['completed', 'completed', 100]], 'the copy\'s final event is read from the record')
  t.ok(compareEventIds(final[0]?.id as string, before.at(-1)?.id as string) > 0, 'after the last event the log held')
  t.same(await store.events(job.job_id, before[0]?.id as string, 10), final, 'so a client resuming from before the copy gets the end')
})

t.test('sync: a create whose reply was lost is copied only if Redis holds nothing, queued when asked', async (t) => {
  const applied = await create()
  t.equal(await store.sync(copyOf(applied), { mode: 'create', queue: true }), false, 'it had run after all: Redis keeps its record')
  t.same(await admin.zRange(KEYS.queue, 0, -1), [applied.job_id], 'and it is queued once')
  const lost = copyOf(newJob({ query: 'never reached Redis', depth: 'quick' }), { version: 1 })
  t.equal(await store.sync(lost, { mode: 'create', queue: true }), true)
  t.same(await admin.zRange(KEYS.queue, 0, -1), [applied.job_id, lost.job_id])
})

t.test('sync: a claim held elsewhere moves to Redis with the record, so its holder writes on under the same fence', async (t) => {
  const running = copyOf(newJob({ query: 'ran during the outage', depth: 'quick' }), { version: 4, status: 'processing', attempts: 1 })
  t.equal(await store.sync(running, { mode: 'outage', base: 0, queue: false, claim: { fence: 'mlocal-1', leaseMs: 60_000 } }), true)
  t.equal(await store.renewLease(running.job_id, 'mlocal-1', 60_000), 'renewed')
  t.ok((await store.put({ ...running, progress: 80 }, 4, { fence: 'mlocal-1', leaseMs: 60_000 })).ok)
  t.same(await store.claim(60_000, 5), [], 'it is not in the queue')
})

t.test('re-seed: unfinished copies go back only over older records; a final copy wins over any unfinished one', async (t) => {
  const job = await create()
  const progressed = await write({ ...job, progress: 40 }, 1)
  t.equal(await store.sync(copyOf(job, { version: 2 }), { mode: 'reseed', queue: true }), false, 'an unfinished copy no newer than Redis\'s record: Redis wins')
  t.equal(await store.sync(copyOf(job, { version: 1, status: 'completed', progress: 100 }), { mode: 'reseed', queue: false }), true, 'a final copy wins even with a lower version')
  const now = await stored(job.job_id)
  t.match(now, { status: 'completed', version: progressed.version + 1 }, 'with a version above the one it replaced')
  t.equal(await store.sync(copyOf(job, { version: 99, status: 'failed' }), { mode: 'reseed', queue: false }), false, 'never over a final record')
  t.same(await store.claim(60_000, 5), [], 'a completed job is not run again')
  await admin.flushAll()
  t.equal(await store.sync(copyOf(job, { version: 2 }), { mode: 'reseed', queue: true }), true, 'a record Redis lost comes back')
  t.same((await store.claim(60_000, 5)).map((c) => c.job.job_id), [job.job_id], 'and is queued')
})

t.test('orphans: pending jobs in no queue are queued again; processing jobs with no lease get an expired one', async (t) => {
  const queued = [await create(), await create()]
  const running = await create()
  const [claim] = (await store.claim(60_000, 3)).filter((c) => c.job.job_id === running.job_id)
  await write({ ...running, status: 'processing', attempts: 1 }, 1, { fence: claim?.fence, leaseMs: 60_000 })
  // What an eviction of index keys (allkeys-lru) or a partial restore leaves behind.
  await admin.del([KEYS.queue, KEYS.leases])
  t.equal(await store.sweepOrphans(100), 3)
  t.same((await admin.zRange(KEYS.queue, 0, -1)).sort(), queued.map((j) => j.job_id).sort(), 'pending jobs queued again')
  t.same(await store.expiredLeases(10), [running.job_id], 'the processing job is the reaper\'s to take over')
  t.equal(await store.sweepOrphans(100), 0, 'nothing left to repair')
})

t.test('the epoch is founded once and read back; after the data is lost a new one is founded', async (t) => {
  // A store of its own: once it checked the epoch it holds Redis to the counter it saw, and the
  // flushes between these tests would read as Redis going back.
  const own = await connectedStore()
  const first = await own.epoch('epoch-a')
  t.same(first, { epoch: 'epoch-a', founded: true, wentBack: null })
  t.same(await own.epoch('epoch-b'), { epoch: 'epoch-a', founded: false, wentBack: null })
  const job = (await own.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' })) as { job: StoredJob }
  t.equal((await own.read(job.job.job_id)).epoch, 'epoch-a', 'reads carry the epoch in the same round trip')
  await admin.flushAll()
  t.equal((await own.read(job.job.job_id)).epoch, null)
  t.match(await own.epoch('epoch-c'), { epoch: 'epoch-c', founded: true, wentBack: { found: 0 } }, 'emptied: a new epoch, and the counter found below the one seen')
  t.equal(await own.memoryPolicy(), 'noeviction')
})

t.test('scripts and functions survive a Redis restart (empty script cache, no functions)', async (t) => {
  await admin.scriptFlush()
  await admin.sendCommand(['FUNCTION', 'FLUSH'])
  await admin.configResetStat()
  const job = await create()
  t.ok(await store.get(job.job_id), 'created')
  t.ok(await store.delete(job.job_id), 'deleted')
  t.equal(await store.get(job.job_id), null)
  const calls = commandCalls(await admin.info('commandstats'))
  t.same([calls.get('fcall'), calls.get('function|load')], [2, 1], 'the create\'s FCALL found no function, loaded the library and was called again')
  t.same([calls.get('evalsha'), calls.get('eval')], [1, 1], 'the delete\'s EVALSHA fell back to EVAL after NOSCRIPT')
})

t.test('a call that Redis does not answer in time rejects at the deadline', async (t) => {
  const quick = await connectedStore({ timeoutMs: 100 })
  server.pause()
  const started = performance.now()
  try {
    await t.rejects(quick.get('00000000-0000-4000-8000-000000000000'), RedisTimeoutError)
  } finally {
    server.resume()
  }
  t.ok(performance.now() - started < 400, 'near the deadline')
  t.type(await quick.ping(), 'number', 'the client still works afterwards')
})

t.test('a reply that arrived while the event loop was busy past the deadline is taken, not timed out', async (t) => {
  const quick = await connectedStore({ timeoutMs: 100 })
  const job = await create()
  const reading = quick.get(job.job_id)
  // A burst of work on a slow machine: the loop is blocked well past the deadline.
  const until = performance.now() + 350
  while (performance.now() < until) { /* busy */ }
  t.equal((await reading)?.job_id, job.job_id)
})

/** Calls under a SilenceDeadline of `timeoutMs`, each keeping Redis busy (a Lua loop) for `ms` before it answers. */
async function spinner (timeoutMs: number): Promise<(ms: number) => Promise<unknown>> {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  const deadline = new SilenceDeadline(timeoutMs)
  const busyFor = 'local function now() local t = redis.call("TIME") return t[1] * 1000 + t[2] / 1000 end local stop = now() + tonumber(ARGV[1]) while now() < stop do end return ARGV[1]'
  return async (ms) => await deadline.wait(client.sendCommand(['EVAL', busyFor, '0', String(ms)]), 'EVAL')
}

t.test('replies read late because this process was busy with other callbacks are not Redis\'s silence', async (t) => {
  const spin = await spinner(200)
  // Redis answers the first call after 120 ms and the second (sent 30 ms later, so Redis reads it
  // apart and answers the first before running it) 130 ms after that: never 200 ms of silence.
  // When the second call's deadline timer fires (230 ms), this process spends 200 ms on a
  // callback queued just before that call's check, and the second reply arrives meanwhile.
  const first = spin(120)
  await new Promise((resolve) => setTimeout(resolve, 30))
  setTimeout(() => setImmediate(() => { const until = performance.now() + 200; while (performance.now() < until); }), 200)
  const results = await Promise.allSettled([first, spin(130)])
  t.same(results.map((r) => r.status === 'fulfilled' ? 'answered' : String(r.reason)), ['answered', 'answered'], 'both answered: the 200 ms this process was busy is not Redis\'s silence')
})

t.test('a call made at the start of a long synchronous stretch counts silence from when the stretch ended, not from the call', async (t) => {
  const spin = await spinner(100)
  // The command cannot even be written before this process is done with its 80 ms of work
  // (preparing the rest of a burst, say); Redis then answers it 40 ms after it arrives.
  const call = spin(40)
  const until = performance.now() + 80
  while (performance.now() < until);
  t.equal(await call.catch((err: unknown) => String(err)), '40', 'answered: Redis was silent for 40 ms, not 120')
})

t.test('a burst of writes far past one deadline\'s worth completes in Redis: load is not an outage', async (t) => {
  const quick = await connectedStore({ timeoutMs: 100 })
  const burst = async (count: number, from: number): Promise<number> => {
    const results = await Promise.allSettled(Array.from({ length: count }, async (_v, i) => await quick.put(newJob({ query: `burst ${from + i}`, depth: 'quick' }), 0, { enqueue: 'tail' })))
    return results.filter((r) => r.status === 'rejected').length
  }
  // How many writes this machine gets through in one deadline right now (other test files may
  // be running beside this one), measured with a burst big enough to cost what a big one costs
  // per write, after an untimed one (a cold first burst ran 2-3 times slower per write). The
  // burst is three deadlines' worth of them, at least 400; bigger bursts still ran faster per
  // write, so one that ended within two deadlines is doubled (a burst past the cap of eight
  // deadlines a call may wait would time out by design, so it grows no faster than that).
  t.equal(await burst(1000, 0), 0, 'a warm-up burst')
  const started = performance.now()
  t.equal(await burst(1000, 1000), 0, 'a measured burst')
  const perDeadline = 1000 / (performance.now() - started) * 100
  let count = Math.max(400, Math.round(perDeadline * 3))
  let written = 2000
  let tookMs = 0
  for (let round = 0; round < 4 && tookMs <= 200; round++, count *= 2) {
    const burstStarted = performance.now()
    const failed = await burst(count, written)
    tookMs = performance.now() - burstStarted
    written += count
    t.equal(failed, 0, `no write of ${count} timed out (${failed} did), with about ${Math.round(perDeadline)} done per deadline; it took ${Math.round(tookMs)} ms`)
  }
  t.ok(tookMs > 200, `the burst kept Redis busy past two deadlines (${Math.round(tookMs)} ms)`)
  t.equal(await admin.zCard(KEYS.queue), written)
})

t.test('an unchanged record is parsed once and shared by repeated reads; any change is read fresh', async (t) => {
  const job = await create()
  const first = await store.get(job.job_id)
  t.equal(await store.get(job.job_id), first, 'the same object while Redis holds the same JSON')
  await write({ ...(first as StoredJob), progress: 40, current_step: 'Halfway' }, (first as StoredJob).version)
  const after = await store.get(job.job_id)
  t.not(after, first)
  t.match(after, { progress: 40, current_step: 'Halfway' })
  t.match(first, { progress: 0 }, 'the earlier object was not changed in place')
  await admin.set(KEYS.job(job.job_id), JSON.stringify({ ...after, current_step: 'Written by another replica' }))
  t.equal((await store.get(job.job_id))?.current_step, 'Written by another replica', 'a write from elsewhere is seen at once')
})

t.test('a tenant\'s list reads its own index: its cost does not grow with other tenants\' jobs', async (t) => {
  const sent: string[] = []
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  const counted = new RedisJobStore(client, { ttlSeconds: 600, timeoutMs: 500, onCommand: (command) => sent.push(command) })
  const alice = await counted.put({ ...newJob({ query: 'the only one of alice', depth: 'quick', now: new Date(Date.parse('2026-01-01T00:00:00Z')) }), owner: 'alice' }, 0)
  for (let i = 0; i < 300; i++) await counted.put({ ...newJob({ query: `bob ${i}`, depth: 'quick' }), owner: 'bob' }, 0)
  sent.length = 0
  const page = await counted.list({ limit: 20, owner: 'alice' })
  t.same(page.jobs.map((j) => j.job_id), [alice.ok ? alice.job.job_id : ''])
  t.same(sent.filter((c) => c !== 'trim'), ['ZRANGE', 'MGET'], `one page of the tenant's own index: ${sent.join(' ')}`)
  t.ok(await admin.ttl(KEYS.ownerCreated('alice')) > 500, 'a tenant\'s index lives as long as its newest job')
})

t.test('list drops records evicted behind its back; expired records are trimmed from the indexes', async (t) => {
  const a = await create()
  const b = await create()
  await admin.del(KEYS.job(b.job_id))
  t.same((await store.list({ limit: 10 })).jobs.map((j) => j.job_id), [a.job_id], 'the evicted record is skipped')
  t.equal(await admin.zScore(KEYS.created, b.job_id), null, 'and dropped from the index')
  await admin.flushAll()
  await create(a)
  await admin.zAdd(KEYS.status('pending'), { score: 1, value: a.job_id })
  await admin.del(KEYS.job(a.job_id))
  t.equal((await store.stats()).counts.pending, 0, 'stats trim first (by Redis\'s clock)')
  t.equal(await admin.zCard(KEYS.created), 0)
})

t.test('a process so busy that every timer fires late still gives up on a Redis that never answers', async (t) => {
  const quick = await connectedStore({ timeoutMs: 50 })
  server.pause()
  t.teardown(() => server.resume())
  // Every timer of this process fires 30 ms late (a machine under heavy load), deadline checks included.
  const realSetTimeout = globalThis.setTimeout
  globalThis.setTimeout = ((fn: () => void, ms?: number) => realSetTimeout(fn, (ms ?? 0) + 30)) as typeof setTimeout
  t.teardown(() => { globalThis.setTimeout = realSetTimeout })
  const started = performance.now()
  const outcome = await Promise.race([
    quick.get('00000000-0000-4000-8000-000000000000').then(() => 'answered', (err: unknown) => err instanceof RedisTimeoutError ? 'timed out' : String(err)),
    new Promise((resolve) => realSetTimeout(() => resolve('still waiting after 3 s'), 3000))
  ])
  globalThis.setTimeout = realSetTimeout
  server.resume()
  t.equal(outcome, 'timed out')
  t.ok(performance.now() - started < 50 * 8 + 200, `gave up within 8 deadlines: ${Math.round(performance.now() - started)} ms`)
})

t.test('a Redis Cluster routes a command by its first key: the first KEYS of a script, none for server commands', async (t) => {
  t.equal(firstKey(['EVALSHA', 'abc', '2', 'dr:{0}:job:1', 'dr:{0}:epoch', 'arg']), 'dr:{0}:job:1')
  t.equal(firstKey(['EVAL', 'return 1', '0']), undefined, 'a script with no keys')
  t.equal(firstKey(['MGET', 'dr:{0}:job:1', 'dr:{0}:epoch']), 'dr:{0}:job:1')
  t.equal(firstKey(['ZCARD', 'dr:{0}:jobs:queue']), 'dr:{0}:jobs:queue')
  for (const command of ['PING', 'INFO', 'ping']) t.equal(firstKey([command, 'memory']), undefined, command)
})
