// Event streams driven by notices of changes (Redis pub/sub, or the in-process store), not by
// polling: they end when there is nothing more to say, and idle ones cost Redis nothing.
import type { FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Report, ResearchEngine, ResearchRequest, RunContext } from '../../src/research/engine.js'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'
import { readEvents } from '../helpers/sse.js'

async function listen (app: FastifyInstance): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}

/** Runs never end on their own: jobs stay processing until the test is over. */
class StuckEngine implements ResearchEngine {
  readonly name = 'stuck'
  async run (_request: ResearchRequest, context: RunContext): Promise<Report> {
    await context.progress(10, 'Working')
    return await new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true }))
  }
}

t.test('a stream resumed at or after the final event answers 204 at once (an EventSource stops reconnecting)', async (t) => {
  const app = await startApp(t, {}, { engine: new PacedEngine(0) })
  const base = await listen(app)
  const job = await createJob(app, { query: 'streams that end', depth: 'quick' })
  const whole = await readEvents(`${base}/v1/jobs/${job.job_id as string}/events`)
  const final = whole.events.at(-1)
  t.equal(final?.event, 'completed')
  const started = Date.now()
  const resumed = await readEvents(`${base}/v1/jobs/${job.job_id as string}/events`, { lastEventId: final?.id, timeoutMs: 3000 })
  t.equal(resumed.status, 204)
  t.same(resumed.events, [])
  t.ok(Date.now() - started < 1000, 'at once, no heartbeat wait')
})

t.test('a stream ends when its job is deleted', async (t) => {
  const app = await startApp(t, {}, { engine: new StuckEngine() })
  const base = await listen(app)
  const job = await createJob(app, { query: 'deleted while watched', depth: 'quick' })
  await pollJob(app, job.job_id, (j) => j.status === 'processing')
  const reading = readEvents(`${base}/v1/jobs/${job.job_id as string}/events`, { timeoutMs: 3000 })
  await sleep(200)
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.job_id as string}` })).statusCode, 204)
  const read = await reading
  t.ok(read.ended, 'the server ended it')
})

t.test('idle streams cost Redis nothing; a write on another replica reaches them at once', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const admin = await redis.client()
  t.teardown(() => admin.close())
  // Polling, if any, every 10 s: only notices can make these streams move within the test.
  const config = { REDIS_URL: redis.url, SSE_POLL_MS: 10_000, SSE_HEARTBEAT_MS: 60_000, RUNNER_CONCURRENCY: 16, SSE_MAX_STREAMS_PER_CLIENT: 100 }
  const writer = await startApp(t, config, { engine: new StuckEngine() })
  const watcher = await startApp(t, config, { engine: new StuckEngine() })
  await waitFor('both subscribed', () => writer.store.notices.live && watcher.store.notices.live)
  const base = await listen(watcher)
  const jobs = []
  for (let i = 0; i < 30; i++) jobs.push(await createJob(writer, { query: `idle ${i}`, depth: 'quick' }))
  await waitFor('all running', async () => (await Promise.all(jobs.map(async (j) => json(await writer.inject({ url: `/v1/jobs/${j.job_id as string}` })).status))).every((s) => s === 'processing'))
  const streams = jobs.map((job) => readEvents(`${base}/v1/jobs/${job.job_id as string}/events`, { timeoutMs: 15_000 }))
  await waitFor('all open', () => watcher.store.notices.watching === jobs.length)
  await admin.configResetStat()
  await sleep(2000)
  const stats = await admin.info('commandstats')
  const calls = [...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].filter(([, command]) => command !== 'info' && command !== 'config').map(([, command, n]) => `${command as string}=${n as string}`)
  const total = calls.reduce((sum, entry) => sum + Number(entry.split('=')[1]), 0)
  // What is left is the replicas' own upkeep (claims, the reaper, the epoch check), not the 30 streams.
  t.ok(total < 60, `Redis commands in 2 s with 30 idle streams: ${total} (${calls.join(' ')})`)
  t.notOk(calls.some((c) => c.startsWith('xrange')), 'no stream read while nothing changed')

  const started = performance.now()
  for (const job of jobs) t.equal((await writer.inject({ method: 'POST', url: `/v1/jobs/${job.job_id as string}/cancel` })).statusCode, 200)
  const reads = await Promise.all(streams)
  t.ok(reads.every((read) => read.ended && read.events.at(-1)?.event === 'cancelled'), 'every stream got its job\'s cancel from the other replica, and ended')
  t.ok(performance.now() - started < 3000, `within ${Math.round(performance.now() - started)} ms, with no polling`)
})

t.test('open streams are capped per client: past the cap, 429', async (t) => {
  const app = await startApp(t, { SSE_MAX_STREAMS_PER_CLIENT: 2 }, { engine: new StuckEngine() })
  const base = await listen(app)
  const job = await createJob(app, { query: 'many watchers', depth: 'quick' })
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const first = await fetch(`${base}/v1/jobs/${job.job_id as string}/events`, { signal: controller.signal })
  const second = await fetch(`${base}/v1/jobs/${job.job_id as string}/events`, { signal: controller.signal })
  t.same([first.status, second.status], [200, 200])
  const third = await fetch(`${base}/v1/jobs/${job.job_id as string}/events`)
  t.equal(third.status, 429)
  t.match(await third.json(), { error: 'too_many_streams' })
  controller.abort()
  await waitFor('the two closed', async () => (await fetch(`${base}/v1/jobs/${job.job_id as string}/events`, { signal: AbortSignal.timeout(200) }).then((r) => r.status, () => 0)) === 200)
})
