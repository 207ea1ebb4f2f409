// A running job's progress write (issue #29): the holder sends its fencing token, the progress and
// the step; one script checks the claim and patches the stored record's head, with its event and
// notice, in 5 Redis commands (the write counter's tick, which every record write takes: see
// docs/guarantees.md rule 9; the record's head read, and written over the old in place; the event;
// the notice). Nothing else about the job may change or be lost for it.
import t, { type Test } from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { START_STEP, advance } from '../../src/lifecycle.js'
import { JobHolder } from '../../src/runner/job-holder.js'
import { toPublic } from '../../src/schemas/job.js'
import { compareEventIds } from '../../src/schemas/events.js'
import { RedisKeys } from '../../src/store/keys.js'
import { redisJobStore } from '../helpers/redis-store.js'
import { commandCalls } from '../helpers/commandstats.js'

const KEYS = new RedisKeys()
const { admin, store } = await redisJobStore(t)
const begin = { worker: 'worker-a', maxAttempts: 3, step: START_STEP }

t.beforeEach(async () => { await admin.flushAll() })

async function claimedAndBegun (worker = begin.worker): Promise<JobHolder> {
  const created = await store.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create refused')
  const [claim] = await store.claim(60_000, 1, { ...begin, worker })
  if (claim?.started !== true) throw new Error('the claim did not begin the attempt')
  return new JobHolder(store, claim, worker, 60_000, performance.now())
}

const stored = async (id: string): Promise<Record<string, unknown>> => JSON.parse(await admin.get(KEYS.job(id)) as string)
const events = async (id: string): Promise<string[]> => await admin.lRange(KEYS.events(id), 0, -1)

/** The Redis commands, by name, one progress write runs inside its script (it must be one script: an FCALL). */
async function callsOfOneWrite (t: Test, write: () => Promise<unknown>): Promise<Map<string, number>> {
  await admin.configResetStat()
  await write()
  const calls = commandCalls(await admin.info('commandstats'))
  for (const name of calls.keys()) if (name.startsWith('config')) calls.delete(name)
  t.equal(calls.get('fcall'), 1, 'one script, called as a Redis Function')
  t.equal((calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0), 0, 'none sent whole')
  calls.delete('fcall')
  return calls
}

/** Commands by name, as `get:1 set:1`, for a test's message. */
const named = (calls: Map<string, number>): string => [...calls].map(([name, n]) => `${name}:${n}`).join(' ')

/** How many Redis commands one progress write runs inside its script. */
async function commandsOfOneWrite (t: Test, write: () => Promise<unknown>): Promise<number> {
  const calls = await callsOfOneWrite(t, write)
  const inside = [...calls.values()].reduce((sum, n) => sum + n, 0)
  t.comment(`${inside} commands inside the script (${named(calls)})`)
  return inside
}

t.test('a progress write is one script of at most 5 Redis commands, the first after the attempt began too, without the lease or the indexes', async (t) => {
  // The first call finds the library missing and loads it: another job's write does that.
  t.equal(await (await claimedAndBegun()).progress(5, 'Planning'), 'written')
  const holder = await claimedAndBegun()
  t.ok(await commandsOfOneWrite(t, async () => t.equal(await holder.progress(10, 'Planning'), 'written')) <= 5, 'the first write after the claim began the attempt')
  const before = await stored(holder.job.job_id)
  const leaseBefore = await admin.zScore(KEYS.leases, holder.job.job_id)
  t.ok(await commandsOfOneWrite(t, async () => t.equal(await holder.progress(40, 'Reading sources'), 'written')) <= 5, 'a write after a write')
  const after = await stored(holder.job.job_id)
  t.match(after, { status: 'processing', progress: 40, current_step: 'Reading sources', version: (before.version as number) + 1, attempts: 1, worker: 'worker-a' })
  t.same(after.attempt_history, before.attempt_history, 'the rest of the record as it was')
  t.equal(after.expires_at, before.expires_at, 'the record keeps its expiry')
  t.ok(await admin.pTTL(KEYS.job(holder.job.job_id)) > 3_500_000, 'and its TTL')
  t.equal(holder.job.version, after.version, 'the holder knows the version it wrote')
  t.equal(holder.job.progress, 40)
  t.equal(await admin.zScore(KEYS.leases, holder.job.job_id), leaseBefore, 'the lease is left to the renewals')
  const log = await events(holder.job.job_id)
  t.equal(log.length, 4, 'the create, the start and two progress writes')
  t.match(log[3], /^\d+-\d+ progress processing\t40\t1\tnull\t"Reading sources"$/)
  t.same(JSON.parse((await store.events(holder.job.job_id, null, 10))[3]?.data as string), { job_id: holder.job.job_id, status: 'processing', progress: 40, current_step: 'Reading sources', attempts: 1, error: null }, 'read back as the job\'s event data')
})

t.test('a progress write that changes nothing a client sees writes nothing', async (t) => {
  const holder = await claimedAndBegun()
  t.equal(await holder.progress(40, 'Reading sources'), 'written')
  const version = holder.job.version
  t.equal(await holder.progress(30, 'Reading sources'), 'written', 'progress never goes back')
  t.equal((await stored(holder.job.job_id)).version, version)
  t.equal((await events(holder.job.job_id)).length, 3)
})

t.test('a progress write by a holder whose claim moved on is refused and changes nothing', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  // The lease ran out; the reaper took the job over and another worker claimed and began it.
  const takenOver = await store.put({ ...holder.job, status: 'pending', worker: null, attempts: 1 }, holder.job.version, { takeover: true, enqueue: 'head' })
  t.ok(takenOver.ok === false, 'a live lease is not taken over')
  await admin.zAdd(KEYS.leases, { score: 0, value: id })
  const again = await store.put({ ...holder.job, status: 'pending', worker: null }, holder.job.version, { takeover: true, enqueue: 'head' })
  t.ok(again.ok, 'taken over once the lease ran out')
  const [claim] = await store.claim(60_000, 1, { ...begin, worker: 'worker-b' })
  t.equal(claim?.job.worker, 'worker-b')
  const before = await stored(id)
  t.equal(await holder.progress(90, 'A stale step'), 'lost')
  t.same(await stored(id), before, 'the new attempt\'s record as it was')
  t.equal((await events(id)).length, 4, 'no event of the stale holder')
})

t.test('a progress write on a cancelled job ends the run as finished', async (t) => {
  const holder = await claimedAndBegun()
  const cancelled = await store.put({ ...holder.job, status: 'cancelled', worker: null }, holder.job.version)
  t.ok(cancelled.ok)
  t.equal(await holder.progress(50, 'Reading'), 'finished')
  t.equal((await stored(holder.job.job_id)).status, 'cancelled')
})

t.test('a progress write over a version the holder has not seen (a lost reply that landed) still lands', async (t) => {
  const holder = await claimedAndBegun()
  const landed = await store.put(advance(holder.job, 20, 'Planning'), holder.job.version, { fence: holder.fence, leaseMs: 60_000 })
  t.ok(landed.ok)
  t.equal(await holder.progress(40, 'Reading'), 'written')
  t.match(await stored(holder.job.job_id), { progress: 40, current_step: 'Reading', version: holder.job.version })
})

t.test('the claim\'s token is kept with a running record, never in a finished one or the public record', async (t) => {
  const holder = await claimedAndBegun()
  t.equal(await holder.progress(40, 'Reading'), 'written')
  const running = await stored(holder.job.job_id)
  t.match(running, { fence: holder.fence, last_event_id: new RegExp(`^${running.version as number}:\\d+-\\d+$`) })
  t.notOk('fence' in toPublic(running as never), 'not in the public record')
  t.notOk('last_event_id' in toPublic(running as never), 'nor the last event\'s id')
  t.equal(await holder.end('failed', (job, now) => ({ ...job, status: 'failed', error: 'x', completed_at: now, worker: null })), 'written')
  const final = await stored(holder.job.job_id)
  t.notOk('fence' in final, 'not kept once the attempt ended')
  t.match(final, { last_event_id: new RegExp(`^${final.version as number}:\\d+-\\d+$`) }, 'the final event\'s id is (its log is gone)')
  t.notOk('last_event_id' in toPublic(final as never), 'but never in the public record')
})

t.test('a progress event\'s id follows the last one even when the writer\'s clock is far behind Redis\'s', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  const [ms, seq] = ((await events(id)).at(-1) as string).split(' ')[0]?.split('-').map(Number) as [number, number]
  t.match(await store.patchProgress(id, holder.fence, holder.job.version, { progress: 30, step: 'Reading', now: 1000 }), { outcome: 'written' })
  t.equal(((await events(id)).at(-1) as string).split(' ')[0], `${ms}-${seq + 1}`)
})

t.test('after a whole write of the running record, a progress write still runs at most 5 commands and its event follows the whole write\'s', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  t.equal(await holder.progress(10, 'Planning'), 'written')
  const whole = await store.put({ ...holder.job, progress: 20, current_step: 'Searching', fence: holder.fence }, holder.job.version, { fence: holder.fence })
  if (!whole.ok) throw new Error('whole write refused')
  const [ms, seq] = ((await events(id)).at(-1) as string).split(' ')[0]?.split('-').map(Number) as [number, number]
  const version = holder.job.version + 1
  t.ok(await commandsOfOneWrite(t, async () => t.match(await store.patchProgress(id, holder.fence, version, { progress: 30, step: 'Reading', now: 1000 }), { outcome: 'written' })) <= 5)
  t.equal(((await events(id)).at(-1) as string).split(' ')[0], `${ms}-${seq + 1}`, 'an id after the whole write\'s event, though the writer\'s clock is far behind')
  t.match(await stored(id), { version: version + 1, progress: 30, current_step: 'Reading' })
})

t.test('a running record without the last event\'s id (a copy sync.lua wrote back) has its log read: the event still follows the last one', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  const json = await admin.get(KEYS.job(id)) as string
  await admin.set(KEYS.job(id), json.replace(/"last_event_id":"[^"]*",/, ''), { KEEPTTL: true })
  await admin.rPush(KEYS.events(id), `${Date.now() + 60_000}-7 progress processing\t5\t1\tnull\t"Planning"`)
  const [ms] = ((await events(id)).at(-1) as string).split(' ')[0]?.split('-').map(Number) as [number]
  t.match(await store.patchProgress(id, holder.fence, holder.job.version, { progress: 30, step: 'Reading', now: Date.now() }), { outcome: 'written' })
  t.equal(((await events(id)).at(-1) as string).split(' ')[0], `${ms}-8`)
  t.match(await stored(id), { last_event_id: `${holder.job.version + 1}:${ms}-8`, progress: 30 }, 'and the record keeps it from then on, tagged with the version it wrote')
})

t.test('the write that ends a running job takes the last event\'s id from the record, not the log (no LINDEX), and a whole write that changes nothing a client sees adds no event', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  t.equal(await holder.progress(40, 'Reading'), 'written')
  const same = await store.put({ ...holder.job, fence: holder.fence }, holder.job.version, { fence: holder.fence })
  if (!same.ok) throw new Error('whole write refused')
  const before = await events(id)
  t.equal(before.length, 3, 'the create, the start and the progress write: the whole write changed nothing a client sees')
  await admin.configResetStat()
  const ended = await store.put({ ...same.job, status: 'completed', progress: 100, current_step: 'Completed', completed_at: new Date().toISOString(), worker: null }, same.job.version, { fence: holder.fence })
  t.ok(ended.ok, 'the final write lands')
  const calls = commandCalls(await admin.info('commandstats'))
  t.notOk(calls.has('lindex'), `no read of the log (${named(calls)})`)
  t.notOk(calls.has('rpush'), 'nor a write to it: the log goes with the end')
  const [last] = (before.at(-1) as string).split(' ')
  const final = (await store.events(id, null, 10)).map((event) => event.id)
  t.equal(final.length, 1)
  t.ok(compareEventIds(final[0] as string, last as string) > 0, `the final event's id ${final[0] as string} follows the last one, ${last as string}`)
})

t.test('a record laid out otherwise (no token in its head: an older version\'s) is written whole, and the write moves the token into it', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  const json = await admin.get(KEYS.job(id)) as string
  await admin.set(KEYS.job(id), json.replace(/"fence":"[^"]*",/, ''), { KEEPTTL: true })
  // An older version keeps the claim's token in the fences hash alone.
  await admin.hSet(KEYS.fences, id, holder.fence)
  t.same(await store.patchProgress(id, holder.fence, holder.job.version, { progress: 30, step: 'Reading', now: Date.now() }), { outcome: 'stale' })
  t.equal(await holder.progress(30, 'Reading'), 'written')
  t.match(await stored(id), { progress: 30, current_step: 'Reading', fence: holder.fence })
  t.notOk(await admin.hExists(KEYS.fences, id), 'kept in the record alone from then on')
  t.equal(await holder.progress(40, 'Writing'), 'written')
})

t.test('an engine\'s NaN or Infinity leaves the progress where it was; quotes, backslashes and unicode in a step stay valid JSON', async (t) => {
  const holder = await claimedAndBegun()
  t.equal(await holder.progress(40, 'Reading'), 'written')
  t.equal(await holder.progress(Number.NaN, 'Reading "the" \\ sources \u2028 \u{1F50D}'), 'written')
  t.equal(await holder.progress(Number.POSITIVE_INFINITY, 'Writing'), 'written')
  const record = await stored(holder.job.job_id)
  t.match(record, { progress: 40, current_step: 'Writing' })
  const steps = (await store.events(holder.job.job_id, null, 10)).map((event) => JSON.parse(event.data).current_step)
  t.ok(steps.includes('Reading "the" \\ sources \u2028 \u{1F50D}'), 'the step as the engine named it')
})

// A replica of the release before records kept their last event id copies the field along,
// unchanged, when it writes the record (its progress.lua and claim start keep the rest of the
// record as it is), and appends an event of its own: the kept id is then stale.
t.test('a kept id a replica of an earlier release left stale (it bumped the version and appended an event) is not trusted: the next event still follows the log\'s last one', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  const json = await admin.get(KEYS.job(id)) as string
  const version = holder.job.version
  // What the earlier release's progress.lua leaves: version + 1, new head fields, the rest copied.
  const older = json.replace(`{"version":${version},`, `{"version":${version + 1},`).replace(/"progress":\d+/, '"progress":20')
  t.not(older, json)
  await admin.set(KEYS.job(id), older, { KEEPTTL: true })
  const ahead = Date.now() + 60_000
  await admin.rPush(KEYS.events(id), `${ahead}-0 progress processing\t20\t1\tnull\t"Searching"`)
  t.match(await store.patchProgress(id, holder.fence, version + 1, { progress: 30, step: 'Reading', now: Date.now() }), { outcome: 'written' })
  t.equal(((await events(id)).at(-1) as string).split(' ')[0], `${ahead}-1`, 'after the earlier release\'s event, not after the stale id')
  const ended = await store.put({ ...holder.job, version: version + 2, status: 'completed', progress: 100, fence: holder.fence }, version + 2, { fence: holder.fence })
  t.ok(ended.ok)
  const final = (await store.events(id, null, 10)).map((event) => event.id)
  t.equal(final.length, 1, 'the final event alone is kept')
  t.ok(compareEventIds(final[0] as string, `${ahead}-1`) > 0, `the final event's id ${final[0] as string} follows ${ahead}-1, the log's last, not the stale id`)
})

/** A running record whose rest (after the head) is long: a query of 2,000 characters. */
async function longRecordRunning (): Promise<JobHolder> {
  const created = await store.put(newJob({ query: 'Why '.repeat(500), depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create refused')
  const [claim] = await store.claim(60_000, 1, begin)
  if (claim?.started !== true) throw new Error('the claim did not begin the attempt')
  return new JobHolder(store, claim, begin.worker, 60_000, performance.now())
}

/** Where a record's head ends: the kept id and the spaces after it (see SLACK in lua/lib/job.lua). */
function restOf (json: string): string {
  const head = /"last_event_id":"[^"]*", */.exec(json)
  return head === null ? json : json.slice(head.index + head[0].length)
}

t.test('a progress write reads the record\'s head and writes it in place: the record is neither read nor written whole, however long it is', async (t) => {
  const holder = await longRecordRunning()
  const id = holder.job.job_id
  const before = await admin.get(KEYS.job(id)) as string
  t.ok(before.length > 2_500, `a long record (${before.length} bytes)`)
  for (const [percent, step] of [[10, 'Planning'], [40, 'Reading sources'], [70, 'Writing']] as const) {
    const calls = await callsOfOneWrite(t, async () => t.equal(await holder.progress(percent, step), 'written'))
    t.same([calls.get('getrange'), calls.get('setrange'), calls.has('get'), calls.has('set')], [1, 1, false, false], `${step}: the head read and written in place (${named(calls)})`)
  }
  const after = await admin.get(KEYS.job(id)) as string
  t.equal(after.length, before.length, 'the record keeps its length')
  t.equal(restOf(after), restOf(before), 'and everything after its head, byte for byte')
  t.match(JSON.parse(after), { version: holder.job.version, progress: 70, current_step: 'Writing', fence: holder.fence, query: 'Why '.repeat(500), last_event_id: new RegExp(`^${holder.job.version}:\\d+-\\d+$`) }, 'JSON that reads as the record written')
  t.ok(await admin.pTTL(KEYS.job(id)) > 3_500_000, 'its TTL kept')
})

/** The stored record keeps one kept id (a whole rewrite must drop the old one), and reads as JSON. */
async function storedOnce (t: Test, id: string): Promise<{ json: string, record: Record<string, unknown> }> {
  const json = await admin.get(KEYS.job(id)) as string
  t.equal(json.split('"last_event_id"').length, 2, 'one kept id in the record')
  return { json, record: JSON.parse(json) }
}

t.test('a step longer than the room the head has writes the record whole once, with room again for the next writes', async (t) => {
  const holder = await longRecordRunning()
  const id = holder.job.job_id
  const before = await admin.get(KEYS.job(id)) as string
  const long = `Reading ${'a long source title, '.repeat(4)}`
  const whole = await callsOfOneWrite(t, async () => t.equal(await holder.progress(30, long), 'written'))
  t.same([whole.get('set'), whole.has('setrange')], [1, false], 'written whole')
  const rewritten = await storedOnce(t, id)
  t.equal(restOf(rewritten.json), restOf(before), 'everything after the head as it was')
  t.match(rewritten.record, { progress: 30, current_step: long, version: holder.job.version })
  const inPlace = await callsOfOneWrite(t, async () => t.equal(await holder.progress(50, `${long}, and one more`), 'written'))
  t.same([inPlace.get('setrange'), inPlace.has('set')], [1, false], 'the next write, 14 bytes longer, in place')
  const shorter = await callsOfOneWrite(t, async () => t.equal(await holder.progress(60, 'Writing'), 'written'))
  t.same([shorter.get('setrange'), shorter.has('set')], [1, false], 'a shorter one in place, padded')
  const after = await storedOnce(t, id)
  t.equal(restOf(after.json), restOf(before), 'and after them too')
  t.match(after.record, { progress: 60, current_step: 'Writing', fence: holder.fence, version: holder.job.version, query: 'Why '.repeat(500) })
  const events = (await store.events(id, null, 10)).map((event) => JSON.parse(event.data).current_step)
  t.same(events.slice(-3), [long, `${long}, and one more`, 'Writing'], 'each write\'s event')
})

t.test('after a long step, a short one leaves spaces that run past what a write reads: the next writes still fit in place', async (t) => {
  const holder = await longRecordRunning()
  const id = holder.job.job_id
  const before = await admin.get(KEYS.job(id)) as string
  const long = `Reading ${'x'.repeat(180)}`
  t.equal(await holder.progress(20, long), 'written')
  t.equal(await holder.progress(30, 'Writing'), 'written')
  t.ok((await storedOnce(t, id)).json.indexOf('"owner"') > 512, 'the head and its spaces now end past the 512 bytes a write reads')
  for (const [percent, step] of [[40, 'Checking the report'], [50, `Reading ${'y'.repeat(150)}`]] as const) {
    const calls = await callsOfOneWrite(t, async () => t.equal(await holder.progress(percent, step), 'written'))
    t.same([calls.get('setrange'), calls.has('get'), calls.has('set')], [1, false, false], `in place (${named(calls)})`)
    const { json, record } = await storedOnce(t, id)
    t.equal(restOf(json), restOf(before), 'the rest as it was')
    t.match(record, { progress: percent, current_step: step, version: holder.job.version })
  }
})

t.test('a head longer than what a progress write reads first (a long error of an earlier attempt) is read whole, and written as the record it is', async (t) => {
  const holder = await longRecordRunning()
  const id = holder.job.job_id
  const error = `The source could not be read: ${'timeout; '.repeat(70)}`
  const json = await admin.get(KEYS.job(id)) as string
  await admin.set(KEYS.job(id), json.replace('"error":null', JSON.stringify({ error }).slice(1, -1)), { KEEPTTL: true })
  for (const [percent, step] of [[30, 'Reading'], [40, 'Writing']] as const) {
    const calls = await callsOfOneWrite(t, async () => t.equal(await holder.progress(percent, step), 'written'))
    t.same([calls.get('getrange'), calls.get('get')], [1, 1], `the first bytes read, then the whole record (${named(calls)})`)
    t.equal((calls.get('setrange') ?? 0) + (calls.get('set') ?? 0), 1, 'and written once')
    const stored = await storedOnce(t, id)
    t.equal(restOf(stored.json), restOf(json), 'the rest as it was')
    t.match(stored.record, { progress: percent, current_step: step, error, version: holder.job.version, query: 'Why '.repeat(500) })
  }
})

t.test('a progress write refused because the claim moved on reads no more of a long record than its first bytes', async (t) => {
  const holder = await longRecordRunning()
  const id = holder.job.job_id
  const moved = await store.put({ ...holder.job, progress: 20, current_step: 'Searching', fence: holder.fence }, holder.job.version, { fence: holder.fence })
  t.ok(moved.ok, 'another write moved the version on')
  const before = await admin.get(KEYS.job(id)) as string
  const calls = await callsOfOneWrite(t, async () => t.same(await store.patchProgress(id, holder.fence, holder.job.version, { progress: 30, step: 'Reading', now: Date.now() }), { outcome: 'stale' }))
  t.same([calls.get('getrange'), calls.has('get'), calls.has('setrange'), calls.has('set')], [1, false, false, false], `refused from its first bytes (${named(calls)})`)
  t.equal(await admin.get(KEYS.job(id)), before, 'and nothing written')
})
