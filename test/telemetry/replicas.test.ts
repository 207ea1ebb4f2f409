// A job created on one replica (ROLE=api) and run on another (ROLE=worker), real server
// processes on one Redis, both exporting to an OTLP/HTTP receiver this test runs: one trace,
// the worker's run under the api's create and linked to it through the trace context kept in
// the job record, with its step, page fetch, LLM and Redis spans carrying the job id.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { SPAWNED_SERVER_ENV, type TestContext, waitFor } from '../helpers/app.js'
import { startFakeLlm } from '../helpers/fake-llm.js'
import { type ReceivedSpan, startOtlpReceiver, traceTree } from '../helpers/otlp-receiver.js'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { startTestSite } from '../helpers/test-site.js'

const root = new URL('../../', import.meta.url).pathname
const PAGES = ['/', '/about.html', '/jitter.html', '/retry-backoff.html']

interface Replica { process: ChildProcess, url: string, exited: Promise<unknown> }

async function startReplica (t: TestContext, name: string, env: Record<string, string>): Promise<Replica> {
  const port = await freePort()
  const child = spawn('node', ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...SPAWNED_SERVER_ENV, PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', WORKER_ID: name, LOG_LEVEL: 'warn', RATE_LIMIT_ENABLED: 'false', ...env }
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  t.teardown(() => { child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  await waitFor(`${name} answering`, async () => await fetch(`${url}/health`).then((res) => res.ok, () => false), 60_000)
  return { process: child, url, exited }
}

t.test('a job created on one replica and run on another is one trace: the run under the create, linked to it, with step, fetch and LLM spans carrying job.id', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const receiver = await startOtlpReceiver(t)
  const site = await startTestSite(t)
  const llm = await startFakeLlm(t)
  const env = {
    REDIS_URL: redis.url,
    ALLOW_PRIVATE_URLS: 'true',
    LLM_BASE_URL: llm.baseUrl,
    LLM_MODEL: 'fake-model',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100'
  }
  const api = await startReplica(t, 'api-replica', { ...env, ROLE: 'api', OTEL_RESOURCE_ATTRIBUTES: 'replica=api' })
  const worker = await startReplica(t, 'worker-replica', { ...env, ROLE: 'worker', OTEL_RESOURCE_ATTRIBUTES: 'replica=worker' })

  const traceId = randomBytes(16).toString('hex')
  const created = await fetch(`${api.url}/v1/research`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    body: JSON.stringify({ query: 'How should retries use backoff and jitter?', depth: 'standard', sources: ['urls'], urls: PAGES.map((p) => `${site.url}${p}`), max_sources: 4 })
  })
  t.equal(created.status, 202)
  const { job_id: id } = await created.json() as { job_id: string }
  await waitFor('the job completed', async () => ((await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as { status: string }).status === 'completed', 60_000)
  // SIGTERM flushes what each replica still holds (the SDK's shutdown), as a redeploy would.
  api.process.kill('SIGTERM')
  worker.process.kill('SIGTERM')
  await Promise.all([api.exited, worker.exited])

  const spans = receiver.spans.filter((s) => s.traceId === traceId)
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  const ancestors = (span: ReceivedSpan): ReceivedSpan[] => {
    const chain: ReceivedSpan[] = []
    for (let at = byId.get(span.parentSpanId); at !== undefined; at = byId.get(at.parentSpanId)) chain.push(at)
    return chain
  }
  const request = spans.find((s) => s.name === 'request' && s.attributes['http.route'] === '/v1/research')
  const run = spans.find((s) => s.name === 'research job')
  if (request === undefined || run === undefined) throw new Error(`the create and its run are not one trace: ${spans.map((s) => `${s.name}@${String(s.resource.replica)}`).join(', ')}`)
  t.equal(request.resource.replica, 'api', 'the create was traced on the api replica')
  t.equal(run.resource.replica, 'worker', 'the run on the worker')
  t.not(request.resource['service.instance.id'], run.resource['service.instance.id'], 'two processes')
  t.ok(ancestors(run).includes(request), 'the run is under the create')
  t.equal(run.links[0]?.spanId, run.parentSpanId, 'and linked to it')
  t.equal(request.attributes['job.id'], id)
  t.equal(run.attributes['job.id'], id)

  const underRun = spans.filter((s) => ancestors(s).includes(run))
  const named = (prefix: string): ReceivedSpan[] => underRun.filter((s) => s.name.startsWith(prefix))
  t.equal(named('step page').length, PAGES.length, 'a step span for each page')
  t.equal(named('read page').length, PAGES.length, 'a fetch span for each page')
  t.ok(named('chat fake-model').length >= 2, 'LLM spans')
  t.ok(named('chat fake-model').every((s) => Number(s.attributes['gen_ai.usage.output_tokens']) > 0), 'with token counts')
  t.ok(named('EVALSHA put').length > 0, 'Redis spans')
  t.ok(underRun.every((s) => s.attributes['job.id'] === id && s.resource.replica === 'worker'), 'every span of the run carries job.id, all from the worker')

  t.comment(`trace ${traceId}\n${traceTree(spans, traceId, (s) => `${s.name} [${String(s.resource.replica)}]${s.attributes['job.id'] === undefined ? '' : ` job.id=${String(s.attributes['job.id'])}`}`)}`)
})
