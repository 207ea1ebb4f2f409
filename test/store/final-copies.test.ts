// The copies a replica keeps of what Redis holds (FinalCopies over MemoryJobStore).
import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { FinalCopies } from '../../src/store/final-copies.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { JobNotices } from '../../src/store/notices.js'

function completed (): StoredJob {
  const job = newJob({ query: 'kept copies', depth: 'quick' })
  return { ...job, status: 'completed', progress: 100, current_step: 'Completed', version: 3, expires_at: new Date(Date.now() + 3600_000).toISOString() }
}

t.test('a reply read after its job was deleted brings no copy back: the final write\'s reply, on the runner\'s connection, may be read after a poll and a delete on the main one', async (t) => {
  const memory = new MemoryJobStore({ ttlSeconds: 3600, maxJobs: 100_000 })
  const notices = new JobNotices(true)
  const copies = new FinalCopies(memory, notices)
  const job = completed()
  // The poll saw the job completed, the client deleted it, and the delete's notice came back.
  notices.emit({ id: job.job_id, version: 0, status: 'deleted' })
  t.equal(await memory.delete(job.job_id), false, 'nothing was held yet')
  // Then the final write's reply is read, and its record adopted.
  copies.adopt(job)
  t.equal(memory.peek(job.job_id), null, 'no copy of the deleted job is kept')
  t.notOk(copies.isCurrent(job.job_id), 'and none is trusted to answer reads without Redis')
  // Another job is kept as before.
  const other = completed()
  copies.adopt(other)
  t.equal(memory.peek(other.job_id)?.version, 3)
  t.ok(copies.isCurrent(other.job_id))
})

t.test('deleted ids are remembered up to a bound, oldest forgotten first', async (t) => {
  const memory = new MemoryJobStore({ ttlSeconds: 3600, maxJobs: 100_000 })
  const first = completed()
  await memory.delete(first.job_id)
  let last = first
  for (let i = 0; i < 10_000; i++) {
    last = completed()
    await memory.delete(last.job_id)
  }
  t.equal(memory.adopt(last), false, 'the latest deleted id is still refused')
  t.equal(memory.peek(last.job_id), null)
  t.equal(memory.adopt(first), true, 'past the bound the oldest deleted id is forgotten')
  t.equal(memory.peek(first.job_id)?.job_id, first.job_id)
})
