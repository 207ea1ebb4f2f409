// A job's event stream without Fastify: the Server-Sent Events text a client gets, woken by
// notices of the store's writes, ended by the final event, a delete, an expiry or the caller.
import t from 'tap'
import { JobEventStream } from '../../src/jobs/event-stream.js'
import { newJob } from '../../src/jobs/records.js'
import { JobService } from '../../src/jobs/service.js'
import * as lifecycle from '../../src/lifecycle.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { MemoryJobStore } from '../../src/store/memory.js'

const OPTIONS = { heartbeatMs: 60_000, pollMs: 50, ttlSeconds: 3600 }
const OWNER = { attempt: 1, worker: 'w' }

function setup (): { store: FallbackJobStore, service: JobService } {
  const store = new FallbackJobStore({ memory: new MemoryJobStore({ ttlSeconds: 3600, maxJobs: 100 }), breakerMs: 100 })
  const service = new JobService({ store, feed: store })
  return { store, service }
}

async function write (store: FallbackJobStore, job: StoredJob, next: StoredJob): Promise<StoredJob> {
  const result = await store.put(next, job.version)
  if (!result.ok) throw new Error('write refused')
  return result.job
}

/** Runs a stream into a string; resolves with the text when it ends. */
function collect (stream: JobEventStream, signal = new AbortController().signal): { text: () => string, done: Promise<void> } {
  let text = ''
  const done = stream.run((chunk) => { text += chunk }, signal)
  return { text: () => text, done }
}

const eventTypes = (text: string): string[] => [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1] as string)

t.test('a stream sends the history, then each change as it is written, and ends after the final event', async (t) => {
  const { store, service } = setup()
  let job = (await store.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' }) as { job: StoredJob }).job
  const stream = await JobEventStream.open(service, job, null, OPTIONS)
  if (stream === 'over') throw new Error('unexpected')
  const run = collect(stream)
  job = await write(store, job, lifecycle.begin(job, OWNER, new Date().toISOString()))
  job = await write(store, job, lifecycle.advance(job, 40, 'Reading'))
  const report = { title: 't', summary: 's', markdown: '# t', sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 } }
  await write(store, job, lifecycle.complete(job, OWNER, report, new Date().toISOString()))
  await run.done
  t.match(run.text(), /^retry: 1000\n\n/, 'tells a browser how soon to reconnect')
  t.same(eventTypes(run.text()), ['status', 'status', 'progress', 'completed'])
  t.match(run.text(), /data: \{"job_id":"[^"]+","status":"processing","progress":40,"current_step":"Reading"/)
})

t.test('resumed at the final event, a stream is over before it starts; resumed before it, it sends only what came after', async (t) => {
  const { store, service } = setup()
  const job = (await store.put(newJob({ query: 'q', depth: 'quick' }), 0) as { job: StoredJob }).job
  const [first] = await store.events(job.job_id, null, 10)
  const done = await write(store, job, lifecycle.cancel(job, new Date().toISOString()))
  const [last] = await store.events(job.job_id, null, 10)
  t.equal(await JobEventStream.open(service, done, last?.id ?? null, OPTIONS), 'over')
  const rest = await JobEventStream.open(service, done, first?.id ?? null, OPTIONS)
  if (rest === 'over') throw new Error('unexpected')
  const run = collect(rest)
  await run.done
  t.same(eventTypes(run.text()), ['cancelled'])
})

t.test('a stream ends when its job is deleted, and when the caller aborts', async (t) => {
  const { store, service } = setup()
  const job = (await store.put(newJob({ query: 'q', depth: 'quick' }), 0) as { job: StoredJob }).job
  const deleted = await JobEventStream.open(service, job, null, OPTIONS)
  const aborted = await JobEventStream.open(service, job, null, OPTIONS)
  if (deleted === 'over' || aborted === 'over') throw new Error('unexpected')
  const stop = new AbortController()
  const a = collect(aborted, stop.signal)
  stop.abort()
  await a.done
  t.same(eventTypes(a.text()), ['status'], 'the history, then nothing after the abort')
  const d = collect(deleted)
  await store.delete(job.job_id)
  await d.done
  t.same(eventTypes(d.text()), ['status'])
})

t.test('a quiet stream sends heartbeat comments, and ends when its job expires', async (t) => {
  const { store, service } = setup()
  const created = (await store.put(newJob({ query: 'q', depth: 'quick' }), 0) as { job: StoredJob }).job
  // A record past its expiry that the store no longer holds.
  const expiring = { ...created, expires_at: new Date(Date.now() + 150).toISOString() }
  await store.delete(created.job_id)
  const stream = await JobEventStream.open(service, expiring, null, { ...OPTIONS, heartbeatMs: 40 })
  if (stream === 'over') throw new Error('unexpected')
  const run = collect(stream)
  await run.done
  t.match(run.text(), /: heartbeat\n\n/)
  t.same(eventTypes(run.text()), ['status'], 'its state as one event (its history was not kept), then the end')
})
