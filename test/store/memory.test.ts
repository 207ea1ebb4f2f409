import t from 'tap'
import { newJob, resolveOptions } from '../../src/jobs/records.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { StoreFullError, decodeCursor, encodeCursor } from '../../src/store/job-store.js'
import type { StoredJob } from '../../src/schemas/job.js'

function clock (start = Date.parse('2026-01-01T00:00:00Z')) {
  let now = start
  return { now: () => now, advance: (ms: number) => { now += ms } }
}

t.test('a write is a compare-and-set on version', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100 })
  const created = await store.put(newJob('q', 'quick'), 0)
  t.ok(created.ok)
  if (!created.ok) return
  t.equal(created.job.version, 1)
  const stale = await store.put({ ...created.job, progress: 5 }, 0)
  t.same(stale, { ok: false, current: created.job }, 'creating an existing job fails and returns the stored one')
  const next = await store.put({ ...created.job, progress: 10 }, 1)
  t.ok(next.ok && next.job.version === 2)
  const lost = await store.put({ ...created.job, progress: 20 }, 1)
  t.equal(lost.ok, false, 'a writer holding an old version cannot overwrite a newer record')
  t.equal((await store.get(created.job.job_id))?.progress, 10)
  const missing = await store.put({ ...newJob('x', 'quick') }, 3)
  t.same(missing, { ok: false, current: null }, 'updating a job that does not exist fails')
})

t.test('final states are final: no write can follow completed, failed or cancelled', async (t) => {
  for (const status of ['completed', 'failed', 'cancelled'] as const) {
    const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100 })
    const r1 = await store.put(newJob('q', 'quick'), 0)
    if (!r1.ok) throw new Error('create failed')
    const r2 = await store.put({ ...r1.job, status }, 1)
    if (!r2.ok) throw new Error('final write failed')
    const late = await store.put({ ...r2.job, status: 'processing', progress: 50 }, r2.job.version)
    t.equal(late.ok, false, `a late write after ${status} is refused even with the right version`)
    t.equal((await store.get(r1.job.job_id))?.status, status)
  }
})

t.test('records expire TTL seconds after their last write', async (t) => {
  const c = clock()
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100, now: c.now })
  const r = await store.put(newJob('q', 'quick'), 0)
  if (!r.ok) throw new Error('create failed')
  t.equal(r.job.expires_at, new Date(c.now() + 60_000).toISOString())
  c.advance(50_000)
  const again = await store.put({ ...r.job, progress: 1 }, 1)
  t.ok(again.ok, 'a write renews the TTL')
  c.advance(50_000)
  t.ok(await store.get(r.job.job_id), 'alive 100 s after creation because it was written at 50 s')
  c.advance(10_001)
  t.equal(await store.get(r.job.job_id), null, 'gone once its TTL ran out')
  t.equal((await store.list({ limit: 10 })).jobs.length, 0, 'and no longer listed')
})

t.test('the Map is bounded: expired records go first, then the oldest finished ones', async (t) => {
  const c = clock()
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 3, now: c.now })
  const write = async (job: StoredJob, expected = 0) => {
    const r = await store.put(job, expected)
    if (!r.ok) throw new Error('write failed')
    return r.job
  }
  const oldFinished = await write({ ...newJob('a', 'quick'), status: 'completed' })
  c.advance(1)
  const newerFinished = await write({ ...newJob('b', 'quick'), status: 'failed' })
  c.advance(1)
  const active = await write(newJob('c', 'quick'))
  await write(newJob('d', 'quick'))
  t.equal(store.size, 3)
  t.equal(await store.get(oldFinished.job_id), null, 'the oldest finished record was evicted')
  t.ok(await store.get(newerFinished.job_id))
  t.ok(await store.get(active.job_id), 'running work is never evicted')

  c.advance(61_000)
  await write(newJob('e', 'quick'))
  t.equal(store.size, 1, 'all expired records were swept to make room')

  const full = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 2, now: c.now })
  await full.put(newJob('1', 'quick'), 0)
  await full.put(newJob('2', 'quick'), 0)
  await t.rejects(full.put(newJob('3', 'quick'), 0), StoreFullError, 'with only active jobs, a new one is refused rather than dropping work')
  t.equal(full.size, 2)
})

t.test('sweep drops expired records without any write', async (t) => {
  const c = clock()
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100, now: c.now })
  for (let i = 0; i < 5; i++) await store.put(newJob(`q${i}`, 'quick'), 0)
  c.advance(60_001)
  t.equal(store.sweep(), 5)
  t.equal(store.size, 0)
})

/** Creates `count` queued jobs; returns their ids in queue order. */
async function queueJobs (store: MemoryJobStore, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const r = await store.put(newJob(`q${i}`, 'quick'), 0, 'tail')
    if (r.ok) ids.push(r.job.job_id)
  }
  return ids
}

t.test('the queue is FIFO; hand-backs go first; deletes leave the queue', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100 })
  const ids = await queueJobs(store, 3)
  t.equal(await store.queueDepth(), 3)
  t.equal(await store.claim(Date.now() + 60_000), ids[0])
  store.enqueue(ids[0] as string, 'head')
  await store.delete(ids[1] as string)
  t.equal(await store.claim(Date.now() + 60_000), ids[0])
  t.equal(await store.claim(Date.now() + 60_000), ids[2])
  t.equal(await store.claim(Date.now() + 60_000), null)
  t.equal(store.unqueue('nope'), false)
})

t.test('claimMany takes up to its limit in queue order, each with a lease', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100 })
  const ids = await queueJobs(store, 4)
  const leaseUntil = Date.now() + 60_000
  t.same(await store.claimMany(leaseUntil, 3), ids.slice(0, 3))
  t.same(await store.expiredLeases(leaseUntil + 1, 10), ids.slice(0, 3), 'each one leased until leaseUntil')
  t.same(await store.claimMany(leaseUntil, 3), ids.slice(3))
  t.same(await store.claimMany(leaseUntil, 3), [])
  t.equal(await store.readForUpdate(ids[0] as string), await store.get(ids[0] as string), 'the Map is its own copy')
})

t.test('lists newest first with stable cursors and a status filter', async (t) => {
  const c = clock()
  const store = new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100, now: c.now })
  const made: StoredJob[] = []
  for (let i = 0; i < 7; i++) {
    const job = newJob(`q${i}`, 'quick', new Date(c.now() + (i < 4 ? 0 : i) * 1000))
    const r = await store.put(i % 2 === 0 ? job : { ...job, status: 'completed' }, 0)
    if (r.ok) made.push(r.job)
  }
  const seen: string[] = []
  let after
  for (;;) {
    const page = await store.list({ limit: 3, after })
    seen.push(...page.jobs.map((j) => j.job_id))
    if (!page.hasMore) break
    after = decodeCursor(encodeCursor(page.jobs.at(-1) as StoredJob)) ?? undefined
  }
  t.equal(seen.length, 7, 'every job once, including four created in the same millisecond')
  t.equal(new Set(seen).size, 7)
  const expected = [...made].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || (a.job_id < b.job_id ? 1 : -1)).map((j) => j.job_id)
  t.same(seen, expected, 'newest first, ties by id')
  const done = await store.list({ limit: 10, status: 'completed' })
  t.equal(done.jobs.length, 3)
  t.ok(done.jobs.every((j) => j.status === 'completed'))
  t.equal(decodeCursor('not-a-cursor'), null)
})

t.test('adopt keeps only newer copies and never throws when full', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 10 })
  const r = await store.put(newJob('q', 'quick'), 0)
  if (!r.ok) throw new Error('create failed')
  store.adopt({ ...r.job, version: 0, progress: 99 })
  t.equal(store.peek(r.job.job_id)?.progress, 0, 'an older copy does not replace a newer one')
  store.adopt({ ...r.job, version: 5, progress: 40 })
  t.equal(store.peek(r.job.job_id)?.progress, 40)
  const tiny = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 10 })
  for (let i = 0; i < 10; i++) await tiny.put(newJob(`${i}`, 'quick'), 0)
  const extra = { ...newJob('x', 'quick'), version: 1, expires_at: new Date(Date.now() + 60_000).toISOString() }
  t.doesNotThrow(() => tiny.adopt(extra))
  t.equal(tiny.peek(extra.job_id), null, 'a full store skips the copy')
})

t.test('records with the default options share one frozen options object; others keep their own', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100 })
  const parsed = [newJob('a', 'quick'), newJob('b', 'quick')].map((job) => JSON.parse(JSON.stringify(job)) as StoredJob)
  for (const job of parsed) await store.put(job, 0)
  const custom = newJob('c', 'quick', new Date(), null, resolveOptions({ depth: 'quick', max_sources: 2 }))
  await store.put(custom, 0)
  const [a, b, c] = [...parsed, custom].map((job) => store.peek(job.job_id) as StoredJob)
  t.equal(a?.options, b?.options, 'one object for both (as read back from JSON, then stored)')
  t.ok(Object.isFrozen(a?.options))
  t.same(a?.options, { sources: ['corpus'], urls: [], max_sources: 4, max_duration_s: null, report_format: 'markdown' })
  t.not(c?.options, a?.options)
  t.equal(c?.options.max_sources, 2)
})

t.test('past the bound, the oldest finished records are evicted 1% at a time (one hole-skipping scan per batch)', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 300 })
  const finished: StoredJob[] = []
  for (let i = 0; i < 300; i++) {
    const r = await store.put({ ...newJob(`q${i}`, 'quick'), status: 'completed' }, 0)
    if (r.ok) finished.push(r.job)
  }
  t.equal(store.size, 300)
  await store.put(newJob('one more', 'quick'), 0)
  t.equal(store.size, 298, 'three evicted (1% of 300), one added')
  t.same(await Promise.all(finished.slice(0, 4).map(async (j) => (await store.get(j.job_id)) !== null)), [false, false, false, true], 'the three oldest went')
  await store.put(newJob('and another', 'quick'), 0)
  t.equal(store.size, 299, 'no eviction while there is room')
})
