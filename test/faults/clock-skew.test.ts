// A replica whose wall clock runs 10 s ahead (a spawned server with a preload that shifts Date,
// as `faketime -f +10s` would) next to one whose clock is right, on one Redis. Leases are
// decided by Redis's clock, so the fast one must never take over the other's healthy leases.
import { type ChildProcess, spawn } from 'node:child_process'
import t from 'tap'
import { SPAWNED_SERVER_ENV, createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { SpanEngine, type RunSpan } from '../helpers/engines.js'
import { RedisServer, freePort } from '../helpers/redis-server.js'

const root = new URL('../../', import.meta.url).pathname

t.test('a replica whose clock is 10 s fast takes over no healthy lease: no job fails, none runs twice', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  // A lease 5 times shorter than the skew: a replica that judged leases by its own clock would
  // take every one over. Not shorter: a replica stalled (a loaded machine, a cold tsx start) for
  // two thirds of a lease loses its jobs rightly, and that is not what this test is about.
  const config = { JOB_LEASE_MS: 2000, JOB_MAX_ATTEMPTS: 3, REDIS_TIMEOUT_MS: 500, RUNNER_CONCURRENCY: 4 }
  const port = await freePort()
  const fast: ChildProcess = spawn('node', ['--import', 'tsx', '--import', './test/helpers/skewed-clock.mjs', 'src/server.ts'], {
    cwd: root,
    stdio: 'ignore',
    env: {
      ...SPAWNED_SERVER_ENV,
      PATH: process.env.PATH,
      CLOCK_SKEW_MS: '10000',
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: redis.url,
      WORKER_ID: 'ten-seconds-fast',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_ENABLED: 'false',
      RESEARCH_STEP_DELAY_MS: '150',
      ...Object.fromEntries(Object.entries(config).map(([k, v]) => [k, String(v)]))
    }
  })
  t.teardown(() => { fast.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  await waitFor('the fast replica is up on Redis', async () => {
    try { return (await (await fetch(`${url}/health`)).json() as { store: string }).store === 'redis' } catch { return false }
  }, 30_000)
  const spans: RunSpan[] = []
  const onTime = await startApp(t, { ...config, REDIS_URL: redis.url, WORKER_ID: 'on-time' }, { engine: new SpanEngine('on-time', spans, 150, 8) })
  await waitFor('ready', () => onTime.store.mode === 'redis')

  const ids: string[] = []
  for (let i = 0; i < 16; i++) {
    if (i % 2 === 0) {
      ids.push((await createJob(onTime, { query: `skew ${i}: created on time`, depth: 'quick' })).job_id)
    } else {
      const res = await fetch(`${url}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `skew ${i}: created fast`, depth: 'quick' }) })
      ids.push((await res.json() as { job_id: string }).job_id)
    }
  }
  const done = []
  for (const id of ids) done.push(await pollJob(onTime, id, undefined, 60_000))
  t.same(done.filter((job) => job.status !== 'completed').map((job) => `${job.job_id as string}: ${job.error as string}`), [], 'every job completed')
  t.same(done.flatMap((job) => job.attempt_history.filter((h: any) => h.outcome === 'lease_expired').map((h: any) => `${job.job_id as string} taken from ${h.worker as string}`)), [], 'no lease was taken over')
  t.ok(done.every((job) => job.attempts === 1), 'each job ran once')
  t.ok(new Set(done.map((job) => job.attempt_history[0].worker)).size === 2, 'both replicas ran jobs')
  t.match(json(await onTime.inject({ url: '/health' })), { status: 'ok' })
})
