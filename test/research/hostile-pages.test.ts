// A small page can be costly to parse: nested a few thousand deep, Readability on linkedom takes
// seconds to minutes. Parsing must never stall the process that serves /health and renews leases.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startApp, waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'
import { startTestSite } from '../helpers/test-site.js'

const QUESTION = 'How should failed background jobs be retried with backoff and jitter?'

/** Creates a job reading `urls` over a real socket and polls it until it ends. */
async function research (base: string, urls: string[]): Promise<any> {
  const created = await fetch(`${base}/v1/research`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: QUESTION, depth: 'quick', sources: ['urls'], urls })
  })
  if (created.status !== 202) throw new Error(`create answered ${created.status}`)
  const { job_id: id } = await created.json() as { job_id: string }
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(20)) {
    const job = await (await fetch(`${base}/v1/jobs/${id}`)).json() as any
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job
  }
  throw new Error(`job ${id} did not end`)
}

// A per-test timeout: a build that parses on the main thread stalls here for minutes (the
// timer fires once the stall ends, or tap's per-file timeout ends the run).
t.test('a job listing pages nested 3,000 and 150,000 deep: /health keeps answering, the loop keeps turning, the job completes in its first attempt with those pages unread', { timeout: 120_000 }, async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const site = await startTestSite(t)
  // A short lease: a stall longer than it would let the reaper hand the job to a second attempt.
  const app = await startApp(t, { REDIS_URL: redis.url, ALLOW_PRIVATE_URLS: true, JOB_LEASE_MS: 1500 })
  await waitFor('Redis ready', () => app.store.mode === 'redis')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  // A first job pays one-time costs on the main thread that are not what this test measures: the
  // routes' first answers and the spoken-English word ranks (read on first use) take 100-200 ms
  // each. A text page, so the HTML threads are still to start when the measured job comes.
  t.equal((await research(base, [`${site.url}/notes.txt`])).status, 'completed', 'a warm-up job')

  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  t.teardown(() => delay.disable())
  const healthMs: number[] = []
  const healthStatuses = new Set<number>()
  const stopPolling = new AbortController()
  const healthPoller = (async () => {
    while (!stopPolling.signal.aborted) {
      const started = performance.now()
      const res = await fetch(`${base}/health`)
      await res.body?.cancel()
      healthMs.push(performance.now() - started)
      healthStatuses.add(res.status)
      await sleep(10)
    }
  })()
  const nested = [3000, 150_000].map((depth) => `${site.url}/nested?depth=${depth}`)
  const job = await research(base, [...nested, `${site.url}/jitter.html`])
  stopPolling.abort()
  await healthPoller
  delay.disable()

  t.equal(job.status, 'completed', 'the job completes')
  t.equal(job.attempts, 1, 'in its first attempt')
  t.same(job.attempt_history.map((h: any) => h.outcome), ['completed'])
  t.same(job.result.unread, nested.map((url) => ({ url, reason: 'the page is nested too deeply to read (more than 256 levels)' })), 'the nested pages are unread, each with why')
  t.ok(job.result.sources.some((s: any) => s.path_or_url === `${site.url}/jitter.html`), 'the readable page is read and cited')

  const slowest = Math.max(...healthMs)
  const p99 = delay.percentile(99) / 1e6
  t.comment(`/health: ${healthMs.length} answers, slowest ${slowest.toFixed(1)} ms; event-loop delay p99 ${p99.toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`)
  t.same([...healthStatuses], [200], '/health always answered 200')
  t.ok(healthMs.length >= 3, `/health was polled throughout (${healthMs.length} answers)`)
  t.ok(slowest < 250, `every /health answer came within 250 ms (slowest ${slowest.toFixed(1)} ms)`)
  t.ok(p99 < 100, `the event-loop delay stays under 100 ms p99 (${p99.toFixed(1)} ms)`)
})

t.test('READER_TIMEOUT_MS: a page within the depth limit that parses too long is stopped and listed unread; the job goes on', { timeout: 120_000 }, async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const site = await startTestSite(t)
  // Depth allowed up to 5,000: a page 2,000 deep passes the count and takes minutes to parse.
  const app = await startApp(t, { REDIS_URL: redis.url, ALLOW_PRIVATE_URLS: true, READER_THREADS: 1, READER_MAX_DEPTH: 5000, READER_TIMEOUT_MS: 300 })
  await waitFor('Redis ready', () => app.store.mode === 'redis')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const slow = `${site.url}/nested?depth=2000`
  const started = performance.now()
  const job = await research(base, [slow, `${site.url}/jitter.html`])
  t.match(job, { status: 'completed', attempts: 1 })
  t.same(job.result.unread, [{ url: slow, reason: 'the page took too long to read (more than 300 ms)' }])
  t.ok(job.result.sources.some((s: any) => s.path_or_url === `${site.url}/jitter.html`), 'the next page was read, on a new thread')
  t.ok(performance.now() - started < 20_000, 'in seconds, not the minutes the parse would take')
})
