// The caps on open event streams hold when many streams are opened at once, and every way a
// stream ends gives its place back (#25: opens raced past the caps while a lookup was awaited).
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { createJob, startApp, waitFor } from '../helpers/app.js'
import { StuckEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'
import { readEvents } from '../helpers/sse.js'
import type { Config } from '../../src/config.js'

interface Opened { status: number, error: string | null }

/**
 * Opens `count` streams at once through real sockets. Those answered 200 stay open until
 * `hangUp` aborts; the others are read to the end.
 */
async function openAtOnce (url: string, count: number, hangUp: AbortSignal): Promise<Opened[]> {
  return await Promise.all(Array.from({ length: count }, async () => {
    const res = await fetch(url, { signal: hangUp })
    if (res.status === 200) return { status: 200, error: null }
    const body = await res.text()
    return { status: res.status, error: res.status === 204 ? null : (JSON.parse(body) as { error: string }).error }
  }))
}

function tally (opened: Opened[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const { status, error } of opened) counts[`${status}${error === null ? '' : ` ${error}`}`] = (counts[`${status}${error === null ? '' : ` ${error}`}`] ?? 0) + 1
  return counts
}

/** A listening app on a real Redis (its lookups take real round trips) with a job that never ends. */
async function appWithRunningJob (t: Test, overrides: Partial<Config>): Promise<{ app: FastifyInstance, url: string }> {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const app = await startApp(t, { REDIS_URL: redis.url, ...overrides }, { engine: new StuckEngine() })
  await waitFor('Redis ready', () => app.store.mode === 'redis')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const job = await createJob(app, { query: 'many watchers at once', depth: 'quick' })
  return { app, url: `${base}/v1/jobs/${job.job_id as string}/events` }
}

/**
 * Opens `count` + 1 streams at once until `count` open and one is refused (the server notices
 * hang-ups a moment later), then closes them: every place taken before was given back.
 */
async function allPlacesFree (t: Test, url: string, count: number): Promise<void> {
  const expected = { 200: count, '429 too_many_streams': 1 }
  let last: Record<string, number> = {}
  await waitFor(`${count} streams open at once, and not one more`, async () => {
    const hangUp = new AbortController()
    t.teardown(() => hangUp.abort())
    last = tally(await openAtOnce(url, count + 1, hangUp.signal))
    hangUp.abort()
    return JSON.stringify(last) === JSON.stringify(expected)
  })
  t.same(last, expected, `${count} places free, no more`)
}

for (const count of [100, 300]) {
  t.test(`${count} streams opened at once by one client: at most the per-client cap (20) open, the rest 429; closed, the places come back`, async (t) => {
    const { url } = await appWithRunningJob(t, { SSE_MAX_STREAMS_PER_CLIENT: 20 })
    const hangUp = new AbortController()
    t.teardown(() => hangUp.abort())
    const opened = await openAtOnce(url, count, hangUp.signal)
    t.same(tally(opened), { 200: 20, '429 too_many_streams': count - 20 })
    hangUp.abort()
    await allPlacesFree(t, url, 20)
  })
}

t.test('100 streams opened at once against the process cap (SSE_MAX_STREAMS=20): 20 open, the rest 429', async (t) => {
  const { url } = await appWithRunningJob(t, { SSE_MAX_STREAMS: 20, SSE_MAX_STREAMS_PER_CLIENT: 1000 })
  const hangUp = new AbortController()
  t.teardown(() => hangUp.abort())
  t.same(tally(await openAtOnce(url, 100, hangUp.signal)), { 200: 20, '429 too_many_streams': 80 })
  hangUp.abort()
  await allPlacesFree(t, url, 20)
})

t.test('clients that hang up while their streams are opening give their places back', async (t) => {
  const { url } = await appWithRunningJob(t, { SSE_MAX_STREAMS_PER_CLIENT: 20 })
  for (let round = 0; round < 5; round++) {
    const hangUp = new AbortController()
    const opening = openAtOnce(url, 20, hangUp.signal).catch(() => [])
    // Hung up as the requests arrive, mostly while the server awaits the job's lookup.
    setImmediate(() => hangUp.abort())
    await opening
  }
  await allPlacesFree(t, url, 20)
})

t.test('404s, 204s and streams that ran to their end give their places back', async (t) => {
  const app = await startApp(t, { SSE_MAX_STREAMS_PER_CLIENT: 2 }, { engine: new StuckEngine() })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const ended = await createJob(app, { query: 'a stream that ends', depth: 'quick' })
  await app.inject({ method: 'POST', url: `/v1/jobs/${ended.job_id as string}/cancel` })
  const running = await createJob(app, { query: 'a stream that stays open', depth: 'quick' })
  const never = new AbortController()
  const reads = await Promise.all([1, 2].map(async () => await readEvents(`${base}/v1/jobs/${ended.job_id as string}/events`)))
  t.ok(reads.every((read) => read.ended && read.events.at(-1)?.event === 'cancelled'), 'two streams ran to the final event')
  const finalId = reads[0]?.events.at(-1)?.id as string
  const answers: Opened[] = []
  for (let i = 0; i < 5; i++) {
    answers.push(...await openAtOnce(`${base}/v1/jobs/8a0c6b3e-5f64-4b8e-9d7c-2a1b3c4d5e6f/events`, 1, never.signal))
    answers.push(...await openAtOnce(`${base}/v1/jobs/${ended.job_id as string}/events?last_event_id=${finalId}`, 1, never.signal))
  }
  t.same(tally(answers), { '404 not_found': 5, 204: 5 }, 'one after another, more than the cap')
  await allPlacesFree(t, `${base}/v1/jobs/${running.job_id as string}/events`, 2)
})
