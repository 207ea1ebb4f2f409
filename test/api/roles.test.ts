// ROLE=api and ROLE=worker on one real Redis: the API queues and answers, workers run. The same
// split with processes, and a worker killed mid-run, is the chaos suite's `roles-worker-killed`.
import t from 'tap'
import { JobCancelledError } from '../../src/runner/errors.js'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'

t.test('ROLE=worker serves only /health and /metrics', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const worker = await startApp(t, { REDIS_URL: redis.url, ROLE: 'worker' })
  const health = await worker.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200)
  t.match(json(health), { role: 'worker', runner: { concurrency: 4 } })
  t.equal((await worker.inject({ method: 'GET', url: '/metrics' })).statusCode, 200)
  for (const [method, url] of [['POST', '/v1/research'], ['GET', '/v1/jobs'], ['GET', '/api/v4/job/x'], ['GET', '/docs/json'], ['GET', '/v1/stats'], ['GET', '/']] as const) {
    const res = await worker.inject({ method, url, payload: method === 'POST' ? { query: 'q' } : undefined })
    t.equal(res.statusCode, 404, `${method} ${url} is not served by a worker`)
    t.match(json(res), { error: 'not_found' })
  }
})

t.test('ROLE=api queues jobs and answers polls, runs none; a worker on the same Redis runs them', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const apiEngine = new PacedEngine(0)
  const api = await startApp(t, { REDIS_URL: redis.url, ROLE: 'api' }, { engine: apiEngine })
  await waitFor('api on Redis', () => api.store.mode === 'redis')
  t.match(json(await api.inject({ method: 'GET', url: '/health' })), { role: 'api', runner: { running: 0, concurrency: 0 } }, 'the API says it runs nothing')
  const job = await createJob(api, { query: 'How does Redis AOF persistence protect jobs?', depth: 'quick' })
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.match(await pollJob(api, job.job_id, () => true), { status: 'pending', progress: 0 }, 'alone, the API keeps the job queued')
  t.equal(apiEngine.started, 0, 'and never runs it')
  t.equal(await api.store.queueDepth(), 1)

  const workerEngine = new PacedEngine(0)
  await startApp(t, { REDIS_URL: redis.url, ROLE: 'worker', WORKER_ID: 'w1' }, { engine: workerEngine })
  const done = await pollJob(api, job.job_id)
  t.match(done, { status: 'completed', progress: 100 }, 'a worker runs it; the API answers the result')
  t.match(done.result.markdown, /AOF/i, 'a real report')
  t.equal(workerEngine.started, 1)
  t.equal(apiEngine.started, 0)
})

t.test('a cancel on the API stops the run on the worker at once (by notice, not at the next lease renewal)', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const api = await startApp(t, { REDIS_URL: redis.url, ROLE: 'api' })
  // Renewals every 20 s and a step every 8 s: no write of the worker's can find the job
  // cancelled within the wait below; only the cancel notice can stop the run that soon.
  const engine = new PacedEngine(8000)
  await startApp(t, { REDIS_URL: redis.url, ROLE: 'worker', JOB_LEASE_MS: 60_000 }, { engine })
  const job = await createJob(api, { query: 'What does a lease renewal do?', depth: 'standard' })
  await pollJob(api, job.job_id, (j) => j.status === 'processing')
  const cancelled = await api.inject({ method: 'POST', url: `/v1/jobs/${job.job_id}/cancel` })
  t.equal(cancelled.statusCode, 200)
  await waitFor('the worker aborted the run', () => engine.abortReasons.length === 1, 3000)
  t.type(engine.abortReasons[0], JobCancelledError)
  t.match(await pollJob(api, job.job_id, () => true), { status: 'cancelled' })
})
