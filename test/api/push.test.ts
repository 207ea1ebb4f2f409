// Event streams driven by notices of changes (Redis pub/sub, or the in-process store), not by
// polling: they end when there is nothing more to say, and idle ones cost Redis nothing.
import type { FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine, StuckEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'
import { readEvents } from '../helpers/sse.js'

async function listen (app: FastifyInstance): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
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
  // Polling, if any, every 10 s: only notices can make these streams move within the test. The
  // replicas' heartbeats (their upkeep, like claims and the reaper) once a minute.
  const config = { REDIS_URL: redis.url, SSE_POLL_MS: 10_000, SSE_HEARTBEAT_MS: 60_000, REPLICA_HEARTBEAT_MS: 60_000, RUNNER_CONCURRENCY: 16, SSE_MAX_STREAMS_PER_CLIENT: 100 }
  const writer = await startApp(t, config, { engine: new StuckEngine() })
  const watcher = await startApp(t, config, { engine: new StuckEngine() })
  await waitFor('both subscribed', () => writer.store.notices.live && watcher.store.notices.live)
  const base = await listen(watcher)
  const jobs: any[] = []
  // Two replicas' worth of jobs (RUNNER_CONCURRENCY each): a replica with room would look for
  // work every 250 ms, and whether one has room would depend on how the jobs split.
  for (let i = 0; i < 2 * config.RUNNER_CONCURRENCY; i++) jobs.push(await createJob(writer, { query: `idle ${i}`, depth: 'quick' }))
  await waitFor('all running', async () => (await Promise.all(jobs.map(async (j) => json(await writer.inject({ url: `/v1/jobs/${j.job_id as string}` })).status))).every((s) => s === 'processing'))
  const streams = jobs.map((job) => readEvents(`${base}/v1/jobs/${job.job_id as string}/events`, { timeoutMs: 15_000 }))
  await waitFor('all open', () => watcher.store.notices.watching === jobs.length)
  await admin.configResetStat()
  await sleep(2000)
  const stats = await admin.info('commandstats')
  const calls = [...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].filter(([, command]) => command !== 'info' && command !== 'config').map(([, command, n]) => `${command as string}=${n as string}`)
  const total = calls.reduce((sum, entry) => sum + Number(entry.split('=')[1]), 0)
  // What is left is the replicas' own upkeep (moving due retries, the reaper, the epoch check), not the 32 streams.
  t.ok(total < 60, `Redis commands in 2 s with ${jobs.length} idle streams: ${total} (${calls.join(' ')})`)
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

t.test('ETag on every read; If-None-Match answers 304 while the record is unchanged, 200 once it changed', async (t) => {
  const app = await startApp(t, {}, { engine: new StuckEngine() })
  const job = await createJob(app, { query: 'conditional polls', depth: 'quick' })
  await pollJob(app, job.job_id, (j) => j.status === 'processing')
  const first = await app.inject({ url: `/v1/jobs/${job.job_id as string}` })
  const etag = first.headers.etag as string
  t.match(etag, /^"\d+"$/)
  const same = await app.inject({ url: `/v1/jobs/${job.job_id as string}`, headers: { 'if-none-match': etag } })
  t.equal(same.statusCode, 304)
  t.equal(same.body, '')
  t.equal(same.headers.etag, etag)
  t.equal((await app.inject({ url: `/v1/jobs/${job.job_id as string}`, headers: { 'if-none-match': `"0", W/${etag}` } })).statusCode, 304, 'lists and weak tags match too')
  t.equal((await app.inject({ method: 'POST', url: `/v1/jobs/${job.job_id as string}/cancel` })).statusCode, 200)
  const changed = await app.inject({ url: `/v1/jobs/${job.job_id as string}`, headers: { 'if-none-match': etag } })
  t.equal(changed.statusCode, 200)
  t.not(changed.headers.etag, etag)
})

t.test('Retry-After on reads of unfinished jobs, sized to their stage; none once final', async (t) => {
  const app = await startApp(t, {}, { engine: new StuckEngine() })
  const job = await createJob(app, { query: 'when to ask again', depth: 'quick' })
  const processing = await pollJob(app, job.job_id, (j) => j.status === 'processing')
  t.equal((await app.inject({ url: `/v1/jobs/${processing.job_id as string}` })).headers['retry-after'], '1', 'running: every second')
  await app.inject({ method: 'POST', url: `/v1/jobs/${job.job_id as string}/cancel` })
  t.equal((await app.inject({ url: `/v1/jobs/${job.job_id as string}` })).headers['retry-after'], undefined, 'final: nothing more to wait for')
})

t.test('long poll: ?wait=N or Prefer: wait=N answers as soon as the job changes, or after N s with what it has', async (t) => {
  const app = await startApp(t, {}, { engine: new StuckEngine() })
  const job = await createJob(app, { query: 'long polls', depth: 'quick' })
  // The engine's own step, not just 'processing': the claim begins the job and the engine's first progress write follows.
  await pollJob(app, job.job_id, (j) => j.status === 'processing' && j.current_step === 'Working')
  const etag = (await app.inject({ url: `/v1/jobs/${job.job_id as string}` })).headers.etag as string

  let started = performance.now()
  const quiet = await app.inject({ url: `/v1/jobs/${job.job_id as string}`, headers: { prefer: 'wait=1', 'if-none-match': etag } })
  const quietMs = performance.now() - started
  t.equal(quiet.statusCode, 304, 'nothing changed in 1 s, and the client has this version')
  t.equal(quiet.headers['preference-applied'], 'wait=1')
  t.ok(quietMs >= 900 && quietMs < 2000, `answered after the wait: ${Math.round(quietMs)} ms`)

  started = performance.now()
  const waiting = app.inject({ url: `/v1/jobs/${job.job_id as string}?wait=10`, headers: { 'if-none-match': etag } })
  await sleep(300)
  await app.inject({ method: 'POST', url: `/v1/jobs/${job.job_id as string}/cancel` })
  const woken = await waiting
  t.equal(woken.statusCode, 200)
  t.equal(json(woken).status, 'cancelled', 'the new state')
  t.ok(performance.now() - started < 1500, `as soon as it changed: ${Math.round(performance.now() - started)} ms`)
  t.equal((await app.inject({ url: `/v1/jobs/${job.job_id as string}?wait=61` })).statusCode, 400, 'at most 60 s')
  const final = await app.inject({ url: `/v1/jobs/${job.job_id as string}?wait=30` })
  t.equal(final.statusCode, 200, 'a final job is answered at once: it will not change')
})

t.test('a final record is served from this replica without Redis, until a delete on another replica drops it', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const a = await startApp(t, { REDIS_URL: redis.url }, { engine: new PacedEngine(0) })
  const b = await startApp(t, { REDIS_URL: redis.url }, { engine: new PacedEngine(0) })
  await waitFor('subscribed', () => a.store.notices.live && b.store.notices.live)
  const job = await createJob(a, { query: 'cached finals', depth: 'quick' })
  const done = await pollJob(a, job.job_id)
  const etag = (await a.inject({ url: `/v1/jobs/${job.job_id as string}` })).headers.etag as string
  // Everything Redis runs that names this job (the replicas' own periodic checks name none).
  const monitor = await redis.client()
  const seen: string[] = []
  await monitor.monitor((line) => { seen.push(line) })
  t.teardown(() => monitor.destroy())
  for (let i = 0; i < 20; i++) {
    t.equal((await a.inject({ url: `/v1/jobs/${job.job_id as string}`, headers: { 'if-none-match': etag } })).statusCode, 304)
  }
  t.equal(json(await a.inject({ url: `/v1/jobs/${job.job_id as string}` })).status, done.status)
  // MONITOR reports in order: once it shows this PING, it has shown everything before it.
  await admin.sendCommand(['PING', 'polls-done'])
  await waitFor('MONITOR caught up', () => seen.some((line) => line.includes('"polls-done"')))
  t.same(seen.filter((line) => line.includes(job.job_id as string)), [], 'no read of the record reached Redis')
  t.equal((await b.inject({ method: 'DELETE', url: `/v1/jobs/${job.job_id as string}` })).statusCode, 204)
  await waitFor('replica A hears of the delete', async () => (await a.inject({ url: `/v1/jobs/${job.job_id as string}` })).statusCode === 404)
})
