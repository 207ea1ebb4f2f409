// A running record keeps the id of the last event its job's log holds, tagged with the record's
// version (issue #29: no read of the log per write). These are the paths that end or move an
// attempt: a retry, a takeover after a worker died, a cancel while the job runs. After each, the
// log's ids only increase, the kept id (when the record keeps one for its version) is the log's
// last, and a client that saw any event reads every later one. A finished job's log goes in the
// write that ends it; its record keeps the final event's id, above every id before it, and a
// client that saw any event reads the final one.
import t, { type Test } from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { START_STEP, cancel, complete, retryLater } from '../../src/lifecycle.js'
import { JobHolder } from '../../src/runner/job-holder.js'
import { LeaseReaper } from '../../src/runner/reaper.js'
import { RedisKeys } from '../../src/store/keys.js'
import { redisJobStore } from '../helpers/redis-store.js'

const KEYS = new RedisKeys()
const { admin, store } = await redisJobStore(t)
const REPORT = { title: 'r', summary: 's', markdown: '# r', sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 1 } }

t.beforeEach(async () => { await admin.flushAll() })

async function created (): Promise<string> {
  const put = await store.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!put.ok) throw new Error('create refused')
  return put.job.job_id
}

async function claimed (worker: string, leaseMs = 60_000): Promise<JobHolder> {
  const [claim] = await store.claim(leaseMs, 1, { worker, maxAttempts: 3, step: START_STEP })
  if (claim?.started !== true) throw new Error(`${worker}'s claim did not begin an attempt`)
  return new JobHolder(store, claim, worker, leaseMs, performance.now())
}

const order = (a: string, b: string): number => {
  const [am, as] = a.split('-').map(Number) as [number, number]
  const [bm, bs] = b.split('-').map(Number) as [number, number]
  return am - bm || as - bs
}

/**
 * The log's ids increase, and the unfinished record keeps the log's last, for its own version:
 * without it every write reads the log again.
 */
async function logHolds (t: Test, id: string, when: string): Promise<string[]> {
  const ids = (await admin.lRange(KEYS.events(id), 0, -1)).map((entry) => entry.split(' ')[0] as string)
  t.ok(ids.slice(1).every((current, i) => order(ids[i] as string, current) < 0), `${when}: ids increase (${ids.join(', ')})`)
  const record = JSON.parse(await admin.get(KEYS.job(id)) as string) as { version: number, last_event_id?: string }
  const [tag, kept] = (record.last_event_id ?? '').split(':')
  t.equal(Number(tag), record.version, `${when}: the record keeps an id for its version (${record.last_event_id ?? 'none'})`)
  t.equal(kept, ids.at(-1), `${when}: the kept id is the log's last`)
  return ids
}

/** A finished job: its log is gone, and its record keeps the final event's id, after every id the log held. */
async function finished (t: Test, id: string, when: string, before: string[]): Promise<void> {
  t.equal(await admin.exists(KEYS.events(id)), 0, `${when}: the log went with the write that ended the job`)
  const record = JSON.parse(await admin.get(KEYS.job(id)) as string) as { version: number, last_event_id?: string }
  const [tag, kept] = (record.last_event_id ?? '').split(':')
  t.equal(Number(tag), record.version, `${when}: the record keeps the final event's id for its version (${record.last_event_id ?? 'none'})`)
  t.ok(order(kept as string, before.at(-1) as string) > 0, `${when}: the final id ${kept as string} follows every id before it (${before.join(', ')})`)
  t.same((await store.events(id, null, 100)).map((event) => event.id), [kept], `${when}: the final event alone is read`)
}

/** Every event after `seen`, as a client resuming from it reads them. */
async function after (id: string, seen: string): Promise<string[]> {
  return (await store.events(id, seen, 100)).map((event) => event.type)
}

t.test('a retry: the second attempt\'s events follow the first\'s, and a client that saw the first attempt\'s last progress reads the rest', async (t) => {
  const id = await created()
  const first = await claimed('worker-a')
  t.equal(await first.progress(40, 'Reading'), 'written')
  const seen = (await logHolds(t, id, 'first attempt running')).at(-1) as string
  const retryAt = new Date(Date.now() - 1000).toISOString()
  t.equal(await first.end('retrying', (job, now) => retryLater(job, { attempt: 1, worker: 'worker-a' }, { error: 'boom', step: 'Reading', retryAt }, now), 'tail'), 'written')
  await logHolds(t, id, 'queued for a retry')
  const second = await claimed('worker-b')
  t.equal(second.job.attempts, 2)
  t.equal(await second.progress(60, 'Writing'), 'written')
  const ids = await logHolds(t, id, 'second attempt running')
  t.equal(new Set(ids).size, ids.length, 'no id twice')
  const rest = await after(id, seen)
  t.same(rest, ['status', 'status', 'progress'], 'a client that saw the first attempt\'s last progress reads the retry, the second start and its progress')
  t.equal(await second.end('completed', (job, now) => complete(job, { attempt: 2, worker: 'worker-b' }, REPORT, now)), 'written')
  await finished(t, id, 'completed', ids)
  t.same(await after(id, seen), ['completed'], 'and, once the job ended, the end')
})

t.test('a takeover after a worker died: the taker\'s events follow the dead worker\'s, and the dead worker adds none', async (t) => {
  const id = await created()
  const dead = await claimed('worker-a', 200)
  t.equal(await dead.progress(30, 'Searching'), 'written')
  const seen = (await logHolds(t, id, 'before the worker died')).at(-1) as string
  await new Promise((resolve) => setTimeout(resolve, 300))
  const reaper = new LeaseReaper({ store, maxAttempts: 3, logger: { warn: () => {} } })
  t.equal(await reaper.reap(), 1, 'the job is taken over')
  await logHolds(t, id, 'queued again by the takeover')
  const taker = await claimed('worker-b')
  const before = (await admin.lRange(KEYS.events(id), 0, -1)).length
  t.not(await dead.progress(50, 'Reading'), 'written', 'the dead worker\'s late write is refused')
  t.equal((await admin.lRange(KEYS.events(id), 0, -1)).length, before, 'and adds no event')
  t.equal(await taker.progress(70, 'Writing'), 'written')
  const ids = await logHolds(t, id, 'the taker running')
  t.equal(new Set(ids).size, ids.length, 'no id twice')
  t.equal(await taker.end('completed', (job, now) => complete(job, { attempt: 2, worker: 'worker-b' }, REPORT, now)), 'written')
  await finished(t, id, 'completed', ids)
  t.same(await after(id, seen), ['completed'])
})

t.test('a cancel while the job runs: the cancelled event is the last, above every progress event, and the worker adds none after it', async (t) => {
  const id = await created()
  const holder = await claimed('worker-a')
  t.equal(await holder.progress(40, 'Reading'), 'written')
  const ids = await logHolds(t, id, 'running')
  const seen = ids.at(-1) as string
  const job = await store.get(id)
  if (job === null) throw new Error('no record')
  const cancelled = await store.put(cancel(job, new Date().toISOString()), job.version)
  t.ok(cancelled.ok, 'the cancel lands')
  t.equal(await holder.progress(60, 'Writing'), 'finished', 'the worker learns the job ended')
  const ended = await holder.end('completed', (running, now) => complete(running, { attempt: 1, worker: 'worker-a' }, REPORT, now))
  t.ok(ended === 'finished' || ended === 'lost', `and cannot complete it (${ended})`)
  t.equal((await store.get(id))?.status, 'cancelled')
  await finished(t, id, 'cancelled', ids)
  t.same(await after(id, seen), ['cancelled'], 'a client that saw the last progress reads the cancel, and nothing after it')
})
