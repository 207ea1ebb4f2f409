import t from 'tap'
import { ON_CLUSTER, createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { FailingEngine, PacedEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'

/** The value of one sample in Prometheus text, e.g. value(text, 'research_jobs_created_total'). */
function value (text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `))
  return line === undefined ? NaN : Number(line.slice(sample.length + 1))
}

t.test('GET /metrics: Prometheus text with HTTP histograms by route and job counters that move with the work', async (t) => {
  const app = await startApp(t)
  const before = await app.inject({ url: '/metrics' })
  t.equal(before.statusCode, 200)
  t.match(before.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(value(before.body, 'research_jobs_created_total'), 0)
  t.match(before.body, /^process_cpu_seconds_total /m, 'process metrics too')

  const job = await createJob(app, { query: 'what to alert on', depth: 'quick' })
  await pollJob(app, job.job_id)
  await app.inject({ url: '/v1/jobs/6f1c1a52-4a37-4e6b-9f3e-1d7a0c2b9e55' })
  const text = (await app.inject({ url: '/metrics' })).body
  t.equal(value(text, 'research_jobs_created_total'), 1)
  t.equal(value(text, 'research_jobs_finished_total{status="completed"}'), 1)
  t.equal(value(text, 'research_job_attempts_total{outcome="completed"}'), 1)
  t.equal(value(text, 'research_job_duration_seconds_count{outcome="completed"}'), 1)
  t.equal(value(text, 'http_request_duration_seconds_count{method="POST",route="/v1/research",status_code="202"}'), 1)
  t.ok(value(text, 'http_request_duration_seconds_count{method="GET",route="/v1/jobs/:job_id",status_code="200"}') >= 1, 'polls are grouped by route pattern, not by id')
  t.equal(value(text, 'http_request_duration_seconds_count{method="GET",route="/v1/jobs/:job_id",status_code="404"}'), 1)
  t.equal(value(text, 'research_store_mode{mode="memory"}'), ON_CLUSTER ? 0 : 1)
  t.equal(value(text, 'research_store_mode{mode="redis"}'), ON_CLUSTER ? 1 : 0)
  t.equal(value(text, 'research_queue_depth'), 0)
  t.equal(value(text, 'research_active_jobs'), 0)
})

t.test('failed and cancelled jobs, retries, queue depth and active jobs are counted', async (t) => {
  const failing = await startApp(t, { JOB_MAX_ATTEMPTS: 2, JOB_RETRY_BASE_MS: 0 }, { engine: new FailingEngine(new Error('boom')) })
  const job = await createJob(failing)
  await pollJob(failing, job.job_id)
  const text = (await failing.inject({ url: '/metrics' })).body
  t.equal(value(text, 'research_jobs_finished_total{status="failed"}'), 1)
  t.equal(value(text, 'research_job_attempts_total{outcome="retrying"}'), 1)
  t.equal(value(text, 'research_job_attempts_total{outcome="failed"}'), 1)

  const slow = await startApp(t, { RUNNER_CONCURRENCY: 1 }, { engine: new PacedEngine(200) })
  const jobs = [await createJob(slow, { query: 'a', depth: 'deep' }), await createJob(slow, { query: 'b', depth: 'deep' })]
  // Either may run first: on a sharded store (npm run test:cluster) claims go round the shards.
  let running: any
  await waitFor('one job running', async () => {
    for (const { job_id: id } of jobs) if (json(await slow.inject({ url: `/v1/jobs/${id as string}` })).status === 'processing') running = { job_id: id }
    return running !== undefined
  })
  const busy = (await slow.inject({ url: '/metrics' })).body
  t.equal(value(busy, 'research_active_jobs'), 1)
  t.equal(value(busy, 'research_queue_depth'), 1)
  await slow.inject({ method: 'POST', url: `/v1/jobs/${running.job_id}/cancel` })
  t.equal(value((await slow.inject({ url: '/metrics' })).body, 'research_jobs_finished_total{status="cancelled"}'), 1)
})

t.test('Redis command latency by command, and fallback reads and writes while Redis is down', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const app = await startApp(t, { REDIS_URL: redis.url, REDIS_TIMEOUT_MS: 200, REDIS_BREAKER_MS: 100, REDIS_READ_WAIT_MS: 0 })
  await waitFor('Redis ready', () => app.store.mode === 'redis')
  const job = await createJob(app, { query: 'latency', depth: 'quick' })
  await pollJob(app, job.job_id)
  // The runner's final write goes over its own connection, whose reply may be read after the
  // poll's read saw the job completed.
  const metrics = async (): Promise<string> => (await app.inject({ url: '/metrics' })).body
  await waitFor('the final write\'s round trip counted', async () => value(await metrics(), 'redis_command_duration_seconds_count{command="put",ok="true"}') >= 2)
  const up = await metrics()
  t.ok(value(up, 'redis_command_duration_seconds_count{command="put",ok="true"}') >= 2, 'put script round trips (the create, the final write), named by script')
  t.ok(value(up, 'redis_command_duration_seconds_count{command="progress",ok="true"}') >= 1, 'and the progress script\'s')
  t.ok(value(up, 'redis_command_duration_seconds_count{command="MGET",ok="true"}') >= 1, 'a poll is one MGET (the record and the epoch)')
  t.equal(value(up, 'research_store_mode{mode="redis"}'), 1)
  t.ok(Number.isNaN(value(up, 'store_fallback_operations_total{operation="read"}')), 'no fallback while Redis is up')

  await redis.kill()
  await createJob(app, { query: 'during the outage', depth: 'quick' })
  // Until the notice subscriber sees its connection drop, a finished job is still answered from
  // this replica's trusted copy without asking Redis at all; after that, the read is a fallback.
  await waitFor('the notice subscriber saw Redis go', () => !app.store.notices.live)
  await app.inject({ url: `/v1/jobs/${job.job_id}` })
  const down = (await app.inject({ url: '/metrics' })).body
  t.ok(value(down, 'store_fallback_operations_total{operation="write"}') >= 1)
  t.ok(value(down, 'store_fallback_operations_total{operation="read"}') >= 1)
  t.equal(value(down, 'research_store_mode{mode="memory"}'), 1)
})

t.test('one log line per job state change (and one when the engine stops), with job id, status, attempt and duration', async (t) => {
  const lines: any[] = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const app = await startApp(t, {}, { logger: { level: 'info', stream } })
  const job = await createJob(app, { query: 'structured logs', depth: 'quick' })
  await pollJob(app, job.job_id)
  const trail = lines.filter((l) => l.job_id === job.job_id).map((l) => [l.msg, l.status, l.attempt])
  t.same(trail, [['job created', 'pending', 0], ['job started', 'processing', 1], ['job run ended', undefined, 1], ['job finished', 'completed', 1]])
  t.type(lines.find((l) => l.job_id === job.job_id && l.msg === 'job run ended')?.run_ms, 'number', 'the engine\'s span, for telling runs apart')
  t.type(lines.find((l) => l.job_id === job.job_id && l.msg === 'job finished')?.duration_ms, 'number')
})
