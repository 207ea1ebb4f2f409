// A small page can be costly to parse: nested a few thousand deep, Readability on linkedom takes
// seconds to minutes. Parsing must never stall the process that serves /health and renews leases.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startApp, waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'
import { startTestSite } from '../helpers/test-site.js'

const FINAL = ['completed', 'failed', 'cancelled']

// A per-test timeout: on a build that parses on the main thread, the run stalls for minutes.
t.test('a job listing pages nested 3,000 and 150,000 deep: /health keeps answering, the loop keeps turning, the job completes in its first attempt with those pages unread', { timeout: 120_000 }, async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const site = await startTestSite(t)
  // A short lease: a stall longer than it would let the reaper hand the job to a second attempt.
  const app = await startApp(t, { REDIS_URL: redis.url, ALLOW_PRIVATE_URLS: true, JOB_LEASE_MS: 1500 })
  await waitFor('Redis ready', () => app.store.mode === 'redis')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })

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
      await sleep(25)
    }
  })()

  const nested = [3000, 150_000].map((depth) => `${site.url}/nested?depth=${depth}`)
  const created = await fetch(`${base}/v1/research`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'How should failed background jobs be retried with backoff and jitter?', depth: 'quick', sources: ['urls'], urls: [...nested, `${site.url}/jitter.html`] })
  })
  t.equal(created.status, 202)
  const { job_id: id } = await created.json() as { job_id: string }
  let job: any
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(50)) {
    job = await (await fetch(`${base}/v1/jobs/${id}`)).json()
    if (FINAL.includes(job.status)) break
  }
  stopPolling.abort()
  await healthPoller
  delay.disable()

  t.equal(job.status, 'completed', 'the job completes')
  t.equal(job.attempts, 1, 'in its first attempt')
  t.same(job.attempt_history.map((h: any) => h.outcome), ['completed'])
  t.match(job.result.unread, nested.map((url) => ({ url, reason: /^the page is nested too deeply to read \(depth \d+, limit \d+\)$/ })), 'the nested pages are unread, each with why')
  t.equal(job.result.unread.length, 2)
  t.ok(job.result.sources.some((s: any) => s.path_or_url === `${site.url}/jitter.html`), 'the readable page is read and cited')

  const maxHealth = Math.max(...healthMs)
  const p99 = delay.percentile(99) / 1e6
  t.comment(`/health: ${healthMs.length} answers, slowest ${maxHealth.toFixed(1)} ms; event-loop delay p99 ${p99.toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`)
  t.same([...healthStatuses], [200], '/health always answered 200')
  t.ok(healthMs.length >= 3, `/health was polled throughout (${healthMs.length} answers)`)
  t.ok(maxHealth < 250, `every /health answer came within 250 ms (slowest ${maxHealth.toFixed(1)} ms)`)
  t.ok(p99 < 100, `the event-loop delay stays under 100 ms p99 (${p99.toFixed(1)} ms)`)
})
