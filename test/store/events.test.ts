import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { compareEventIds } from '../../src/schemas/events.js'
import { LocalEventLog } from '../../src/store/job-events.js'

function clock (start = 1_800_000_000_000): { now: () => number, advance: (ms: number) => void } {
  let now = start
  return { now: () => now, advance: (ms) => { now += ms } }
}

t.test('in-process events: one per visible change, ids increasing within a millisecond, typed by the change', async (t) => {
  const c = clock()
  const log = new LocalEventLog({ maxEvents: 100, maxJobs: 10, ttlSeconds: 60, now: c.now })
  const job = newJob({ query: 'q', depth: 'quick' })
  log.append(job, null)
  log.append({ ...job, status: 'processing', attempts: 1 }, 'pending')
  log.append({ ...job, status: 'processing', attempts: 1 }, 'processing')
  log.append({ ...job, status: 'processing', attempts: 1, progress: 40, current_step: 'Reading' }, 'processing')
  const events = await log.events(job.job_id, null, 100)
  t.same(events.map((e) => e.type), ['status', 'status', 'progress'], 'the lease renewal (same state) added nothing')
  t.same(events.map((e) => e.id), ['1800000000000-0', '1800000000000-1', '1800000000000-2'])
  t.same((await log.events(job.job_id, events[0]?.id as string, 100)).map((e) => e.type), ['status', 'progress'], 'resume after an id')
  t.equal(compareEventIds('9-1', '10-0') < 0, true, 'ids compare as numbers, not strings')
})

t.test('in-process events: a finished job keeps its final event alone, as the Redis store does (#29)', async (t) => {
  const c = clock()
  const log = new LocalEventLog({ maxEvents: 100, maxJobs: 10, ttlSeconds: 60, now: c.now })
  const job = newJob({ query: 'q', depth: 'quick' })
  log.append(job, null)
  log.append({ ...job, status: 'processing', attempts: 1, progress: 40 }, 'pending')
  c.advance(5)
  log.append({ ...job, status: 'completed', attempts: 1, progress: 100, current_step: 'Completed' }, 'processing')
  const events = await log.events(job.job_id, null, 100)
  t.same(events.map((e) => [e.id, e.type]), [['1800000000005-0', 'completed']], 'a client arriving after the end gets the final event')
  t.same(await log.events(job.job_id, '1800000000000-0', 100), events, 'a resume from before the end gets it too')
  log.append({ ...job, status: 'completed', attempts: 1, progress: 100, current_step: 'Completed' }, 'completed')
  t.same(await log.events(job.job_id, null, 100), events, 'an amend of the final record adds nothing')
})

t.test('bounded: events per job, jobs (oldest dropped 1% at a time), and the TTL', async (t) => {
  const c = clock()
  const log = new LocalEventLog({ maxEvents: 3, maxJobs: 200, ttlSeconds: 60, now: c.now })
  const job = newJob({ query: 'q', depth: 'quick' })
  for (let p = 1; p <= 5; p++) log.append({ ...job, progress: p } as StoredJob, 'pending')
  t.same((await log.events(job.job_id, null, 10)).map((e) => JSON.parse(e.data).progress), [3, 4, 5], 'the newest three kept')
  const others = Array.from({ length: 199 }, (_, i) => newJob({ query: `o${i}`, depth: 'quick' }))
  for (const other of others) log.append(other, null)
  log.append(newJob({ query: 'one more', depth: 'quick' }), null)
  t.same(await log.events(job.job_id, null, 10), [], 'the first job\'s log was the oldest and went')
  t.same(await log.events(others[0]?.job_id as string, null, 10), [], 'with the next-oldest: 2 (1% of 200) per batch')
  t.equal((await log.events(others[1]?.job_id as string, null, 10)).length, 1)
  c.advance(61_000)
  t.same(await log.events(others[1]?.job_id as string, null, 10), [], 'expired with the record\'s TTL')
  log.delete(others[2]?.job_id as string)
})
