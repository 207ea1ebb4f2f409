// A job created on one replica (ROLE=api) and run on others (ROLE=worker), real server processes
// on one Redis, all exporting to an OTLP/HTTP receiver this test runs: the first worker is
// stopped (SIGTERM) mid-run and hands the job back, a second one finishes it. One trace: both
// runs under the api's create and linked to it, through the trace context kept in the job
// record, with their step, page read, LLM and Redis spans carrying the job id.
import type { ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { waitFor } from '../helpers/app.js'
import { startFakeLlm } from '../helpers/fake-llm.js'
import { startLocalServer } from '../helpers/local-server.js'
import { type ReceivedSpan, startOtlpReceiver, traceTree } from '../helpers/otlp-receiver.js'
import { RedisServer } from '../helpers/redis-server.js'
import { startReplica } from '../helpers/replicas.js'

const PAGES = ['p1', 'p2', 'p3', 'p4']
/** The page the first worker is waiting for when it is stopped. */
const HELD = '/p3.html'

const page = (name: string): string => `<!doctype html><html><head><title>Retries ${name}</title></head><body><main><h1>Retry backoff ${name}</h1>` +
  `<p>Retries with exponential backoff and jitter spread the load after an outage (note ${name}).</p></main></body></html>`

t.test('a job created on one replica, handed back by another at SIGTERM and finished by a third is one trace: each run under the create, linked to it, its spans carrying job.id', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const receiver = await startOtlpReceiver(t)
  const held: ServerResponse[] = []
  let holding = true
  const site = await startLocalServer(t, (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path === HELD && holding) {
      held.push(res)
      return
    }
    const name = /^\/(p\d)\.html$/.exec(path)?.[1]
    if (name === undefined) res.writeHead(404).end()
    else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(name))
  })
  t.teardown(() => { for (const res of held) res.destroy() })
  const llm = await startFakeLlm(t)
  const env = {
    REDIS_URL: redis.url,
    ALLOW_PRIVATE_URLS: 'true',
    LLM_BASE_URL: llm.baseUrl,
    LLM_MODEL: 'fake-model',
    CACHE_ENABLED: 'false',
    SHUTDOWN_TIMEOUT_MS: '2000',
    LOG_LEVEL: 'warn',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100'
  }
  const api = await startReplica(t, 'api', { ...env, ROLE: 'api', OTEL_RESOURCE_ATTRIBUTES: 'replica=api' })
  const first = await startReplica(t, 'first-worker', { ...env, ROLE: 'worker', OTEL_RESOURCE_ATTRIBUTES: 'replica=first' })

  const traceId = randomBytes(16).toString('hex')
  const created = await fetch(`${api.url}/v1/research`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    body: JSON.stringify({ query: 'How should retries use backoff and jitter?', depth: 'standard', sources: ['urls'], urls: PAGES.map((p) => `${site.url}/${p}.html`), max_sources: 4 })
  })
  t.equal(created.status, 202)
  const { job_id: id } = await created.json() as { job_id: string }
  await waitFor('the first worker waiting for the third page', () => held.length === 1, 30_000)
  first.process.kill('SIGTERM')
  await first.exited
  holding = false
  for (const res of held.splice(0)) res.destroy()
  const second = await startReplica(t, 'second-worker', { ...env, ROLE: 'worker', OTEL_RESOURCE_ATTRIBUTES: 'replica=second' })
  await waitFor('the job completed', async () => ((await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as { status: string }).status === 'completed', 60_000)
  // SIGTERM flushes what each replica still holds (the SDK's shutdown), as a redeploy would.
  api.process.kill('SIGTERM')
  second.process.kill('SIGTERM')
  await Promise.all([api.exited, second.exited])

  const spans = receiver.spans.filter((s) => s.traceId === traceId)
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  const ancestors = (span: ReceivedSpan): ReceivedSpan[] => {
    const chain: ReceivedSpan[] = []
    for (let at = byId.get(span.parentSpanId); at !== undefined; at = byId.get(at.parentSpanId)) chain.push(at)
    return chain
  }
  const request = spans.find((s) => s.name === 'request' && s.attributes['http.route'] === '/v1/research')
  const runs = spans.filter((s) => s.name === 'research job')
  if (request === undefined) throw new Error(`the create is not in the client's trace: ${spans.map((s) => `${s.name}@${String(s.resource.replica)}`).join(', ')}`)
  t.equal(request.resource.replica, 'api', 'the create was traced on the api replica')
  t.equal(request.resource['service.name'], 'deep-research-api', 'the service\'s name, with no OTEL_SERVICE_NAME')
  t.equal(request.attributes['job.id'], id)
  t.same(runs.map((r) => [r.resource.replica, r.attributes['job.outcome']]), [['first', 'handed_back'], ['second', 'completed']], 'both runs are in the create\'s trace: the one handed back and the one that finished')
  for (const run of runs) {
    t.ok(ancestors(run).includes(request), `the ${String(run.resource.replica)} worker's run is under the create`)
    t.equal(run.links[0]?.spanId, run.parentSpanId, 'and linked to it')
    t.equal(run.attributes['job.id'], id)
  }

  const [handedBack, finished] = runs as [ReceivedSpan, ReceivedSpan]
  const under = (run: ReceivedSpan, prefix: string): ReceivedSpan[] => spans.filter((s) => s.name.startsWith(prefix) && ancestors(s).includes(run))
  const firstReads = under(handedBack, 'read page')
  t.same(firstReads.map((s) => s.attributes['url.full']), ['p1', 'p2', 'p3'].map((p) => `${site.url}/${p}.html`), 'the first worker read two pages and began the third')
  t.same(firstReads.map((s) => s.status.code ?? 0), [0, 0, 2], 'the one cut off by the shutdown is an error span')
  t.same(under(finished, 'read page').map((s) => s.attributes['url.full']), ['p3', 'p4'].map((p) => `${site.url}/${p}.html`), 'the second read only the two it had not')
  t.equal(under(finished, 'step page').filter((s) => s.attributes['research.step.outcome'] === 'reused').length, 2, 'and reused the first one\'s two kept pages, each a step span')
  t.ok(under(finished, 'chat fake-model').every((s) => Number(s.attributes['gen_ai.usage.output_tokens']) > 0), 'LLM spans with token counts')
  t.ok(under(finished, 'FCALL put').length > 0, 'Redis spans')
  const inRuns = spans.filter((s) => runs.some((run) => ancestors(s).includes(run)))
  t.same(inRuns.filter((s) => s.attributes['job.id'] !== id).map((s) => s.name), [], 'every span of both runs carries job.id')

  t.comment(`trace ${traceId}\n${traceTree(spans, traceId, (s) => `${s.name} [${String(s.resource.replica)}]${s.attributes['job.outcome'] === undefined ? '' : ` outcome=${String(s.attributes['job.outcome'])}`}${s.attributes['research.step.outcome'] === undefined ? '' : ` ${String(s.attributes['research.step.outcome'])}`}${s.attributes['job.id'] === undefined ? '' : ` job.id=${String(s.attributes['job.id']).slice(0, 8)}`}`)}`)
})
