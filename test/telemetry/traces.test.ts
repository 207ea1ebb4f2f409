// Traces over OpenTelemetry, in one process: the SDK started as the server starts it, exporting
// over OTLP/HTTP to a receiver this test runs, with a real Redis, a local site and the fake LLM.
// One job, created through a real socket with a client's traceparent, is one trace: the
// request, the job's run under it (and linked to it), each step, page fetch, LLM call and
// Redis call, every one with the job's id and tenant. (test/telemetry/replicas.test.ts shows
// the same trace across two processes; test/telemetry/off.test.ts that it costs nothing off.)
import { createHash, randomBytes } from 'node:crypto'
import { context } from '@opentelemetry/api'
import { createClient } from 'redis'
import t from 'tap'
import { type ReceivedSpan, startOtlpReceiver, traceTree } from '../helpers/otlp-receiver.js'
import { startApp, waitFor } from '../helpers/app.js'
import { startFakeLlm } from '../helpers/fake-llm.js'
import { RedisServer } from '../helpers/redis-server.js'
import { startTestSite } from '../helpers/test-site.js'
import { defaultConfig } from '../../src/config.js'
import { startTracing } from '../../src/telemetry/sdk.js'
import { inJobSpan, inSpan, noteJobOutcome, traceCarrier } from '../../src/telemetry/spans.js'

const KEY = 'alice-key-0123456789'
const API_KEYS = `alice:${createHash('sha256').update(KEY).digest('hex')}`
const PAGES = ['/', '/about.html', '/jitter.html', '/retry-backoff.html', '/missing']
const QUESTION = 'How should retries use backoff and jitter?'

t.test('one job is one trace: the request, the run under it, each step, page fetch, LLM call and Redis call, all carrying the job id and tenant', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  // What an operator sets; the SDK reads its own variables from the environment.
  Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_SERVICE_NAME: 'research-under-test' })
  const tracing = await startTracing(defaultConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint }))
  t.ok(tracing, 'an OTLP endpoint turns tracing on')
  t.teardown(async () => await tracing?.shutdown(1000))

  const site = await startTestSite(t)
  const llm = await startFakeLlm(t)
  const app = await startApp(t, { REDIS_URL: redis.url, API_KEYS, ALLOW_PRIVATE_URLS: true, LLM_BASE_URL: llm.baseUrl, LLM_MODEL: 'fake-model', CACHE_ENABLED: false, SEARXNG_URL: site.url })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })

  const clientTrace = randomBytes(16).toString('hex')
  const clientSpan = randomBytes(8).toString('hex')
  const created = await fetch(`${base}/v1/research`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, traceparent: `00-${clientTrace}-${clientSpan}-01`, baggage: `user.email=someone%40example.com,padding=${'x'.repeat(2000)}` },
    body: JSON.stringify({ query: QUESTION, depth: 'standard', sources: ['urls', 'web'], urls: PAGES.map((p) => `${site.url}${p}`), max_sources: 5 })
  })
  t.equal(created.status, 202)
  const accepted = await created.json() as { job_id: string }
  const id = accepted.job_id
  t.notOk('trace_context' in accepted, 'the trace context stays inside the record')
  const kept = (await app.store.get(id))?.trace_context
  t.same(Object.keys(kept ?? {}), ['traceparent'], 'the record keeps the traceparent, not the client\'s baggage')
  t.match(kept?.traceparent, new RegExp(`^00-${clientTrace}-[0-9a-f]{16}-01$`))
  await waitFor('the job completed', async () => {
    const job = await (await fetch(`${base}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${KEY}` } })).json() as { status: string }
    return job.status === 'completed'
  }, 30_000)
  await waitFor('the run\'s span exported', () => receiver.spans.some((s) => s.name === 'research job' && s.attributes['job.id'] === id), 10_000)

  // Other requests: a job's id from the path, none for a list, a route that does not exist, a
  // create on the original API (no Location), an event stream the client leaves.
  const auth = { authorization: `Bearer ${KEY}` }
  await fetch(`${base}/v1/jobs?limit=1`, { headers: auth })
  await fetch(`${base}/v1/nowhere`)
  const legacy = await (await fetch(`${base}/api/v4/deep-research`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ query: 'What is a lease?', depth: 'quick' }) })).json() as { job_id: string }
  const leaving = new AbortController()
  const stream = await fetch(`${base}/v1/jobs/${id}/events`, { headers: auth, signal: leaving.signal })
  await stream.body?.getReader().read()
  leaving.abort()
  await waitFor('the list request exported', () => receiver.spans.some((s) => s.name === 'request' && s.attributes['http.route'] === '/v1/jobs'), 10_000)
  await waitFor('the left event stream\'s request exported', () => receiver.spans.some((s) => s.name === 'request' && s.attributes['http.route'] === '/v1/jobs/:job_id/events'), 10_000)
  t.pass('an event stream the client left ends its span')
  t.ok(receiver.spans.some((s) => s.name === 'request' && s.attributes['http.route'] === '/api/v4/deep-research' && s.attributes['job.id'] === legacy.job_id), 'a create on the original API names its job too')
  const polls = receiver.spans.filter((s) => s.name === 'request' && s.attributes['http.route'] === '/v1/jobs/:job_id')
  t.ok(polls.length > 0 && polls.every((s) => s.attributes['job.id'] === id && s.attributes['tenant.id'] === 'alice'), 'a poll\'s span names the job in its path')
  const list = receiver.spans.find((s) => s.name === 'request' && s.attributes['http.route'] === '/v1/jobs')
  t.notOk(list?.attributes['job.id'], 'a list names no job')
  t.equal(list?.attributes['tenant.id'], 'alice')

  const spans = receiver.spans.filter((s) => s.traceId === clientTrace)
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  const under = (span: ReceivedSpan, ancestor: ReceivedSpan): boolean => {
    for (let at = byId.get(span.parentSpanId); at !== undefined; at = byId.get(at.parentSpanId)) if (at === ancestor) return true
    return false
  }

  const request = spans.find((s) => s.name === 'request' && s.attributes['http.route'] === '/v1/research')
  if (request === undefined) throw new Error(`no request span in the client's trace: ${spans.map((s) => s.name).join(', ')}`)
  t.equal(request.kind, 2, 'the request is a server span')
  t.equal(request.parentSpanId, clientSpan, 'a child of the client\'s span (traceparent)')
  t.match(request.attributes, { 'job.id': id, 'tenant.id': 'alice', 'http.response.status_code': 202 })
  t.equal(request.resource['service.name'], 'research-under-test', 'OTEL_SERVICE_NAME names the service')

  const run = spans.find((s) => s.name === 'research job')
  if (run === undefined) throw new Error('the run is not in the create\'s trace')
  t.ok(under(run, request), 'the run is under the request that created it')
  t.same(run.links.map((l) => [l.traceId, l.spanId]), [[clientTrace, run.parentSpanId]], 'and linked to it')
  t.match(run.attributes, { 'job.id': id, 'tenant.id': 'alice', 'job.attempt': 1, 'job.outcome': 'completed' })
  t.equal(run.kind, 5, 'a consumer span, as a queue\'s job is')

  const steps = spans.filter((s) => s.name.startsWith('step '))
  t.same([...new Set(steps.map((s) => s.name))].sort(), ['step llm', 'step page', 'step search'])
  t.equal(steps.filter((s) => s.name === 'step page').length, PAGES.length, 'a step for each page')
  t.ok(steps.every((s) => s.parentSpanId === run.spanId), 'each step a child of the run')
  const unread = steps.filter((s) => s.status.code === 2)
  t.same(unread.map((s) => s.attributes['research.step.kind']), ['page'], 'the page that could not be read is the one failed step')
  t.ok(steps.filter((s) => s.status.code !== 2).every((s) => s.attributes['research.step.outcome'] === 'ran'), 'the others ran once and were kept')

  const fetches = spans.filter((s) => s.name === 'read page')
  t.same(fetches.map((s) => s.attributes['url.full']).sort(), PAGES.map((p) => `${site.url}${p}`).sort(), 'a span for each page fetch')
  t.ok(fetches.every((s) => s.kind === 3 && byId.get(s.parentSpanId)?.name === 'step page'), 'client spans, each in its step')
  const missing = fetches.find((s) => s.attributes['url.full'] === `${site.url}/missing`)
  t.match(missing?.status, { code: 2, message: 'HTTP 404' }, 'a page that could not be read is an error span saying why')
  t.equal(missing?.attributes['error.type'], 'PageReadError')
  t.ok(fetches.filter((s) => s !== missing).every((s) => Number(s.attributes['research.page.bytes']) > 0))

  const chats = spans.filter((s) => s.name === 'chat fake-model')
  t.ok(chats.length >= 2, `a span for each LLM call (${chats.length})`)
  t.ok(chats.every((s) => s.attributes['gen_ai.request.model'] === 'fake-model' && Number(s.attributes['gen_ai.usage.input_tokens']) > 0 && Number(s.attributes['gen_ai.usage.output_tokens']) > 0), 'with the tokens each used')

  const redisCalls = spans.filter((s) => s.attributes['db.system.name'] === 'redis')
  const finalWrite = redisCalls.find((s) => s.name === 'FCALL put' && under(s, run))
  t.ok(finalWrite, 'the run\'s writes are Redis spans named by their script, called as a Redis Function')
  const createWrite = redisCalls.find((s) => s.name.endsWith(' put') && under(s, request) && !under(s, run))
  t.match(createWrite?.attributes, { 'job.id': id, 'tenant.id': 'alice' }, 'and so is the create\'s, with the job\'s id and tenant')
  t.match(spans.find((s) => s.name.startsWith('handler - ') && under(s, request))?.attributes, { 'job.id': id, 'tenant.id': 'alice' }, 'as its handler\'s span')
  t.equal(redisCalls.filter((s) => s.name === 'EVALSHA step-save' && byId.get(s.parentSpanId)?.name.startsWith('step ')).length, steps.length - 1, 'and each kept step, in its step')
  t.same(redisCalls.filter((s) => s.status.code === 2).map((s) => s.name), [], 'a NOSCRIPT (answered with EVAL), or functions not found (loaded), is no error')
  t.ok(redisCalls.some((s) => s.name === 'EVAL step-save'), 'the EVAL after it names its script too')
  t.same(spans.filter((s) => s.name.endsWith(' claim')).map((s) => s.name), [], 'the runner\'s claim loop, woken by the create, is not in its trace')
  t.ok(redisCalls.every((s) => s.kind === 3 && s.attributes['server.address'] === '127.0.0.1' && s.attributes['server.port'] === redis.port))

  const inRun = spans.filter((s) => under(s, run))
  t.ok(inRun.length > 20, `${inRun.length} spans under the run`)
  t.same(inRun.filter((s) => s.attributes['job.id'] !== id || s.attributes['tenant.id'] !== 'alice').map((s) => s.name), [], 'every one carries the job id and the tenant')
  t.same(receiver.otherPaths, [], 'traces only: no metrics or logs exported')
  const questionIn = receiver.spans.filter((s) => Object.values(s.attributes).some((v) => String(v).includes('backoff and jitter')) || s.name.includes('backoff and jitter'))
  t.same(questionIn.map((s) => s.name), [], 'the question is in no span')
  t.same([...new Set(steps.map((s) => s.attributes['research.step.kind']))].sort(), ['llm', 'page', 'search'], 'steps are named by their kind')
  t.ok(spans.some((s) => s.name === 'search SearXNG' && s.kind === 3 && s.attributes['research.search.hits'] === 0), 'a web search is a client span')

  t.comment(traceTree(spans, clientTrace, (s) => `${s.name}${s.attributes['job.id'] === undefined ? '' : ` job.id=${String(s.attributes['job.id']).slice(0, 8)}`}${s.status.code === 2 ? ` ERROR ${s.status.message ?? ''}` : ''}`))

  // A Redis call that fails is an error span; one made outside any span is none.
  const client = createClient({ url: redis.url })
  await client.connect()
  t.teardown(() => client.destroy())
  const before = receiver.spans.length
  await client.ping()
  // A loop that began inside a span and outlived it (its context kept by a timer) makes none either.
  let ended = context.active()
  await inSpan('short-lived', {}, async () => { ended = context.active() })
  await context.with(ended, async () => await client.ping())
  await t.rejects(inSpan('probe', {}, async () => await client.sendCommand(['NO-SUCH-COMMAND'])))
  await inSpan('batch', {}, async () => await client.multi().ping().ping().exec())
  await waitFor('the probe exported', () => receiver.spans.some((s) => s.name === 'probe'), 5000)
  const fresh = receiver.spans.slice(before)
  t.notOk(fresh.some((s) => s.name === 'PING'), 'no span for a call outside any live span')
  t.match(fresh.find((s) => s.name === 'NO-SUCH-COMMAND')?.status, { code: 2, message: /unknown command/ })
  await waitFor('the batch exported', () => receiver.spans.some((s) => s.name === 'batch'), 5000)
  t.match(receiver.spans.find((s) => s.name === 'MULTI')?.attributes, { 'db.operation.name': 'MULTI', 'db.operation.batch.size': 2 }, 'a MULTI is one span')
})

t.test('the span helpers: a run created without a trace starts its own; failures keep their message; outside a job nothing is noted', async (t) => {
  const receiver = await startOtlpReceiver(t)
  Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attributes' })
  delete process.env.OTEL_SERVICE_NAME
  const tracing = await startTracing(defaultConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint }))
  t.teardown(async () => await tracing?.shutdown(1000))
  t.equal(traceCarrier(), undefined, 'outside any span there is no context to keep')
  noteJobOutcome('completed')
  await inSpan('outer', {}, async () => {
    noteJobOutcome('completed')
    // A carrier with no valid traceparent (what a client's baggage alone would give): no parent.
    await inJobSpan({ jobId: 'job-1', tenant: '', carrier: { baggage: 'a=b', traceparent: '00-zz' } }, async () => {
      // eslint-disable-next-line no-throw-literal -- what an engine of someone else's might throw
      await t.rejects(inSpan('throws a string', {}, async () => { throw 'plain words' }), 'plain words')
      noteJobOutcome('failed', 'it broke')
    })
  })
  await waitFor('exported', () => receiver.spans.some((s) => s.name === 'outer'), 10_000)
  const outer = receiver.spans.find((s) => s.name === 'outer')
  const run = receiver.spans.find((s) => s.name === 'research job')
  t.equal(outer?.attributes['job.outcome'], undefined, 'a span outside a job gets no outcome')
  t.equal(outer?.resource['service.name'], 'from-attributes', 'OTEL_RESOURCE_ATTRIBUTES names the service when OTEL_SERVICE_NAME does not')
  t.not(run?.traceId, outer?.traceId, 'a job created with no trace context runs in a trace of its own, not the caller\'s')
  t.equal(run?.parentSpanId, '')
  t.same(run?.links, [])
  t.match(run, { attributes: { 'job.id': 'job-1', 'tenant.id': '', 'job.outcome': 'failed' }, status: { code: 2, message: 'it broke' } })
  t.match(receiver.spans.find((s) => s.name === 'throws a string')?.status, { code: 2, message: 'plain words' })
})
