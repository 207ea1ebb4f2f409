import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { createJob, json, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'
import { readEvents } from '../helpers/sse.js'
import { RedisKeys } from '../../src/store/keys.js'

async function listen (app: FastifyInstance): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}

function increasing (ids: string[]): boolean {
  return ids.every((id, i) => i === 0 || compare(ids[i - 1] as string, id) < 0)
}
function compare (a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number]
  const [bm, bs] = b.split('-').map(Number) as [number, number]
  return am - bm || as - bs
}

t.test('a job\'s stream: status, progress with its steps, the final event, then the server ends it', async (t) => {
  const app = await startApp(t, { SSE_POLL_MS: 20 }, { engine: new PacedEngine(30) })
  const base = await listen(app)
  const job = await createJob(app, { query: 'lease expiry and crashed workers', depth: 'quick' })
  const read = await readEvents(`${base}/v1/jobs/${job.job_id}/events`)
  t.equal(read.status, 200)
  t.match(read.contentType, /^text\/event-stream/)
  t.ok(read.ended, 'the server ended the stream after the final event')
  const types = read.events.map((e) => e.event)
  t.equal(types[0], 'status')
  t.equal(read.events[0]?.data.status, 'pending')
  t.ok(types.includes('progress'))
  t.equal(types.at(-1), 'completed')
  t.equal(types.filter((type) => type === 'completed').length, 1)
  t.ok(increasing(read.events.map((e) => e.id)), 'ids increase')
  const progress = read.events.map((e) => e.data.progress as number)
  t.same(progress, [...progress].sort((a, b) => a - b), 'progress never goes down')
  t.ok(read.events.some((e) => /^Round 1\/1/.test(e.data.current_step)), 'the steps are there')
  t.ok(read.events.every((e) => e.data.job_id === job.job_id))
  t.equal(new Set(read.events.map((e) => e.data.current_step + e.data.status)).size, read.events.length, 'no event repeats the one before it (lease renewals add none)')

  const late = await readEvents(`${base}/v1/jobs/${job.job_id}/events`)
  t.same(late.events, read.events.slice(-1), 'a client arriving after the end gets the final event alone (#29: a finished job keeps no other), as the live client got it')
  t.ok(late.ended)
  const resumed = await readEvents(`${base}/v1/jobs/${job.job_id}/events`, { lastEventId: read.events[1]?.id })
  t.same(resumed.events, read.events.slice(-1), 'a client resuming from before the end gets the final event')
})

/** The paced engine, holding its report until `open()`: the job ends only when the test says so. */
class GatedEngine extends PacedEngine {
  readonly #gate: Promise<void>
  open: () => void = () => {}
  constructor (stepMs: number) {
    super(stepMs)
    this.#gate = new Promise((resolve) => { this.open = resolve })
  }

  holding = false

  override async run (...args: Parameters<PacedEngine['run']>): ReturnType<PacedEngine['run']> {
    const report = await super.run(...args)
    this.holding = true
    await this.#gate
    return report
  }
}

t.test('resume with Last-Event-ID on another replica: no gaps, no duplicates (events kept in Redis while the job runs)', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const engine = new GatedEngine(40)
  const a = await startApp(t, { REDIS_URL: redis.url, SSE_POLL_MS: 20, WORKER_ID: 'a' }, { engine })
  const b = await startApp(t, { REDIS_URL: redis.url, SSE_POLL_MS: 20, WORKER_ID: 'b' }, { engine })
  await waitFor('Redis ready on both', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  const [baseA, baseB] = [await listen(a), await listen(b)]
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const job = await createJob(a, { query: 'circuit breaker half-open state', depth: 'standard' })
  const log = new RedisKeys().events(job.job_id)
  // One client follows the whole run live, on replica A, while another drops and resumes on B.
  let followed = 0
  const following = readEvents(`${baseA}/v1/jobs/${job.job_id}/events`, { onEvent: () => { followed++ } })
  const first = await readEvents(`${baseA}/v1/jobs/${job.job_id}/events`, { stopAfter: 3 })
  t.equal(first.events.length, 3)
  t.notOk(first.ended, 'the first connection was dropped by the client')
  t.ok(await admin.ttl(log) > 86_000, 'the log has the record\'s TTL')
  const viaQuery = readEvents(`${baseB}/v1/jobs/${job.job_id}/events?last_event_id=${first.events[1]?.id as string}`)
  let resumed = 0
  const reading = readEvents(`${baseB}/v1/jobs/${job.job_id}/events`, { lastEventId: first.events[2]?.id, onEvent: () => { resumed++ } })
  // The engine is done and holds its report: every event but the final one is in the log, and
  // both readers have read it all (twice over 100 ms: no progress write was still on its way).
  let logged = -1
  await waitFor('the engine done, the resumed reader caught up', async () => {
    const length = await admin.lLen(log)
    const settled = engine.holding && length === logged && resumed === length - 3 && followed === length
    logged = length
    await new Promise((resolve) => setTimeout(resolve, 100))
    return settled
  })
  engine.open()
  const [rest, full] = [await reading, await following]
  t.ok(rest.ended)
  t.equal(full.events.length, logged + 1, `the live reader: the ${logged} events of the log, then the end`)
  t.same([...first.events, ...rest.events], full.events, 'the two halves are exactly the whole stream')
  t.equal(full.events.at(-1)?.event, 'completed')
  t.ok(full.events.length >= 6, `${full.events.length} events`)
  t.same((await viaQuery).events, full.events.slice(2), 'last_event_id in the query string works too')
  t.equal(await admin.exists(log), 0, 'and once the job ended, its log is gone')
})

t.test('an idle stream sends heartbeat comments; a cancel ends it with a cancelled event', async (t) => {
  const app = await startApp(t, { SSE_POLL_MS: 20, SSE_HEARTBEAT_MS: 100 }, { engine: new PacedEngine(300) })
  const base = await listen(app)
  const job = await createJob(app, { query: 'lease expiry', depth: 'deep' })
  const reading = readEvents(`${base}/v1/jobs/${job.job_id}/events`)
  await new Promise((resolve) => setTimeout(resolve, 400))
  await app.inject({ method: 'POST', url: `/v1/jobs/${job.job_id}/cancel` })
  const read = await reading
  t.ok(read.comments.includes('heartbeat'), 'heartbeat comments were sent')
  t.equal(read.events.at(-1)?.event, 'cancelled')
  t.ok(read.ended)
})

t.test('unknown ids are 404, malformed Last-Event-ID values 400, as JSON', async (t) => {
  const app = await startApp(t)
  const missing = await app.inject({ url: '/v1/jobs/8a0c6b3e-5f64-4b8e-9d7c-2a1b3c4d5e6f/events' })
  t.equal(missing.statusCode, 404)
  t.equal(json(missing).error, 'not_found')
  const job = await createJob(app, { query: 'q', depth: 'quick' })
  const bad = await app.inject({ url: `/v1/jobs/${job.job_id}/events`, headers: { 'last-event-id': 'yesterday' } })
  t.equal(bad.statusCode, 400)
  t.match(json(bad), { error: 'validation_error', message: /last-event-id/ })
})

t.test('closing the app ends open streams at once', async (t) => {
  const app = await startApp(t, { SSE_POLL_MS: 20 }, { engine: new PacedEngine(5000) })
  const base = await listen(app)
  const job = await createJob(app, { query: 'slow', depth: 'quick' })
  let received = 0
  const reading = readEvents(`${base}/v1/jobs/${job.job_id}/events`, { onEvent: () => { received++ } })
  await waitFor('the stream to start', () => received > 0)
  const started = Date.now()
  await app.close()
  const read = await reading
  t.ok(read.ended)
  t.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`)
})

t.test('NOOP_PROGRESS_WRITES sets how many progress updates a no-op job writes (the benchmark measures 0 and 3)', async (t) => {
  // A finished job keeps its final event alone, so the writes are counted by the record's
  // version (its ETag), which every write bumps.
  const versions: number[] = []
  for (const writes of [0, 3]) {
    const app = await startApp(t, { RESEARCH_ENGINE: 'noop', NOOP_PROGRESS_WRITES: writes })
    const job = await createJob(app, { query: `noop with ${writes} progress writes`, depth: 'quick' })
    await waitFor('completed', async () => json(await app.inject({ url: `/v1/jobs/${job.job_id as string}` })).status === 'completed')
    const read = await app.inject({ url: `/v1/jobs/${job.job_id as string}` })
    versions.push(Number(JSON.parse(String(read.headers.etag))))
    t.match((await app.inject({ url: `/v1/jobs/${job.job_id as string}/events` })).body, /event: completed/)
  }
  t.equal((versions[1] as number) - (versions[0] as number), 3, `3 progress writes more (versions ${versions.join(', ')})`)
})
