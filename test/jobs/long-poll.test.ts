// A long poll (JobService.whenChanged) without Fastify: it answers at a change or at its deadline.
// A resync (the notices may have missed a change: a reconnect, or a process beginning to listen
// to running records for its first reader) makes it read again, and wait on when nothing changed.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { JobService } from '../../src/jobs/service.js'
import * as lifecycle from '../../src/lifecycle.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { MemoryJobStore } from '../../src/store/memory.js'

const OWNER = { attempt: 1, worker: 'w' }

async function running (): Promise<{ store: FallbackJobStore, memory: MemoryJobStore, service: JobService, job: StoredJob }> {
  const memory = new MemoryJobStore({ ttlSeconds: 3600, maxJobs: 100 })
  const store = new FallbackJobStore({ memory, breakerMs: 100 })
  const created = (await store.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' }) as { job: StoredJob }).job
  const begun = await store.put(lifecycle.begin(created, OWNER, new Date().toISOString()), created.version)
  if (!begun.ok) throw new Error('write refused')
  return { store, memory, service: new JobService({ store, feed: store }), job: begun.job }
}

t.test('a long poll woken by a resync with nothing changed waits on until its deadline', async (t) => {
  const { store, service, job } = await running()
  const started = performance.now()
  const polling = service.whenChanged(job.job_id, null, 1000, (held) => held.version === job.version, new AbortController().signal)
  await sleep(100)
  t.equal(store.notices.watching, 1)
  store.notices.resyncWatchers()
  const answered = await polling
  t.equal(answered.version, job.version, 'the job as the client holds it')
  t.ok(performance.now() - started >= 950, `at its deadline: ${Math.round(performance.now() - started)} ms`)
})

// A long poll, then a change whose notice never came (written past the store that tells of its
// writes), then the resync: the poll should answer with the change at once.
const missedChangeThenResync = (current: (held: StoredJob, job: StoredJob) => boolean) => async (t: Test) => {
  const { store, memory, service, job } = await running()
  const started = performance.now()
  const polling = service.whenChanged(job.job_id, null, 10_000, (held) => current(held, job), new AbortController().signal)
  await sleep(100)
  const advanced = await memory.put(lifecycle.advance(job, 40, 'Reading'), job.version)
  t.ok(advanced.ok)
  store.notices.resyncWatchers()
  t.match(await polling, { progress: 40, current_step: 'Reading' })
  t.ok(performance.now() - started < 5000, `at once: ${Math.round(performance.now() - started)} ms`)
}

t.test('a long poll woken by a resync answers at once when the job did change', missedChangeThenResync((held, job) => held.version === job.version))

t.test('a long poll with no version to hold to (no If-None-Match) answers when a resync finds the job changed', missedChangeThenResync(() => true))
