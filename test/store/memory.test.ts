import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { resolveOptions } from '../../src/schemas/options.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { StoreFullError } from '../../src/store/job-store.js'
import type { StoredJob } from '../../src/schemas/job.js'

function clock (start = Date.parse('2026-01-01T00:00:00Z')) {
  let now = start
  return { now: () => now, advance: (ms: number) => { now += ms } }
}

// What is particular to the in-memory store: its clock, its bound and eviction, and the copies
// the fallback store keeps in it. The behaviour every store shares is in contract.test.ts.

t.test('records expire TTL seconds after their last write; leases and retries follow its own clock', async (t) => {
  const c = clock()
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100, now: c.now })
  const r = await store.put(newJob({ query: 'q', depth: 'quick' }), 0)
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

  const queued = await store.put(newJob({ query: 'leased', depth: 'quick' }), 0, { enqueue: 'tail' })
  const [claim] = await store.claim(1000, 1)
  t.equal(claim?.job.job_id, queued.ok ? queued.job.job_id : '')
  t.match(claim?.fence, /^m[0-9a-f]{8}-\d+$/, 'fences from here never look like Redis\'s')
  t.same(await store.expiredLeases(10), [])
  c.advance(1000)
  t.same(await store.expiredLeases(10), [claim?.job.job_id], 'the lease ran out by this store\'s clock')
  t.same(store.claimOf(claim?.job.job_id ?? ''), { fence: claim?.fence, remainingMs: 0 })
})

t.test('the Map is bounded: expired records go first, then the oldest finished ones', async (t) => {
  const c = clock()
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 3, now: c.now })
  const write = async (job: StoredJob, expected = 0) => {
    const r = await store.put(job, expected)
    if (!r.ok) throw new Error('write failed')
    return r.job
  }
  const oldFinished = await write({ ...newJob({ query: 'a', depth: 'quick' }), status: 'completed' })
  c.advance(1)
  const newerFinished = await write({ ...newJob({ query: 'b', depth: 'quick' }), status: 'failed' })
  c.advance(1)
  const active = await write(newJob({ query: 'c', depth: 'quick' }))
  await write(newJob({ query: 'd', depth: 'quick' }))
  t.equal(store.size, 3)
  t.equal(await store.get(oldFinished.job_id), null, 'the oldest finished record was evicted')
  t.ok(await store.get(newerFinished.job_id))
  t.ok(await store.get(active.job_id), 'running work is never evicted')

  c.advance(61_000)
  await write(newJob({ query: 'e', depth: 'quick' }))
  t.equal(store.size, 1, 'all expired records were swept to make room')

  const full = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 2, now: c.now })
  await full.put(newJob({ query: '1', depth: 'quick' }), 0)
  await full.put(newJob({ query: '2', depth: 'quick' }), 0)
  await t.rejects(full.put(newJob({ query: '3', depth: 'quick' }), 0), StoreFullError, 'with only active jobs, a new one is refused rather than dropping work')
  t.equal(full.size, 2)
})

t.test('sweep drops expired records without any write', async (t) => {
  const c = clock()
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100, now: c.now })
  for (let i = 0; i < 5; i++) await store.put(newJob({ query: `q${i}`, depth: 'quick' }), 0)
  c.advance(60_001)
  t.equal(store.sweep(), 5)
  t.equal(store.size, 0)
})

t.test('adopt keeps only newer copies and never throws when full', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 10 })
  const r = await store.put(newJob({ query: 'q', depth: 'quick' }), 0)
  if (!r.ok) throw new Error('create failed')
  store.adopt({ ...r.job, version: 0, progress: 99 })
  t.equal(store.peek(r.job.job_id)?.progress, 0, 'an older copy does not replace a newer one')
  store.adopt({ ...r.job, version: 5, progress: 40 })
  t.equal(store.peek(r.job.job_id)?.progress, 40)
  const tiny = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 10 })
  for (let i = 0; i < 10; i++) await tiny.put(newJob({ query: `${i}`, depth: 'quick' }), 0)
  const extra = { ...newJob({ query: 'x', depth: 'quick' }), version: 1, expires_at: new Date(Date.now() + 60_000).toISOString() }
  t.doesNotThrow(() => tiny.adopt(extra))
  t.equal(tiny.peek(extra.job_id), null, 'a full store skips the copy')
})

t.test('records with the default options share one frozen options object; others keep their own', async (t) => {
  const store = new MemoryJobStore({ ttlSeconds: 60, maxJobs: 100 })
  const parsed = [newJob({ query: 'a', depth: 'quick' }), newJob({ query: 'b', depth: 'quick' })].map((job) => JSON.parse(JSON.stringify(job)) as StoredJob)
  for (const job of parsed) await store.put(job, 0)
  const custom = newJob({ query: 'c', depth: 'quick', options: resolveOptions({ depth: 'quick', max_sources: 2 }) })
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
    const r = await store.put({ ...newJob({ query: `q${i}`, depth: 'quick' }), status: 'completed' }, 0)
    if (r.ok) finished.push(r.job)
  }
  t.equal(store.size, 300)
  await store.put(newJob({ query: 'one more', depth: 'quick' }), 0)
  t.equal(store.size, 298, 'three evicted (1% of 300), one added')
  t.same(await Promise.all(finished.slice(0, 4).map(async (j) => (await store.get(j.job_id)) !== null)), [false, false, false, true], 'the three oldest went')
  await store.put(newJob({ query: 'and another', depth: 'quick' }), 0)
  t.equal(store.size, 299, 'no eviction while there is room')
})
