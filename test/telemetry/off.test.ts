// Tracing is off unless an OTLP endpoint is set, and off it costs nothing: no SDK, no request
// spans, no trace context in job records, the span helpers calling straight through.
import t from 'tap'
import { createJob, startApp } from '../helpers/app.js'
import { ConfigError, defaultConfig, loadConfig, settingMistakes } from '../../src/config.js'
import { startTracing, tracingWanted } from '../../src/telemetry/sdk.js'
import { inJobSpan, inSpan, outsideTraces, spansEnabled, traceCarrier, urlForSpan } from '../../src/telemetry/spans.js'

t.test('an OTLP endpoint (either variable) turns tracing on; none, or OTEL_SDK_DISABLED=true, leaves it off', async (t) => {
  const none = { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', OTEL_SDK_DISABLED: false }
  t.equal(tracingWanted(none), false)
  t.equal(tracingWanted({ ...none, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true)
  t.equal(tracingWanted({ ...none, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true)
  t.equal(tracingWanted({ ...none, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: true }), false)
  t.equal(await startTracing(defaultConfig()), null, 'no SDK started without an endpoint')
  t.equal(spansEnabled(), false)
})

t.test('an endpoint that is not an http(s) URL is refused at start, by name; a misspelt one is named', async (t) => {
  t.throws(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), new ConfigError('Invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT must match pattern "^(https?://.+)?$"'))
  t.same(settingMistakes({ OTEL_EXPORTER_OTLP_ENDPIONT: 'http://collector:4318' }), ['OTEL_EXPORTER_OTLP_ENDPIONT is not a setting; did you mean OTEL_EXPORTER_OTLP_ENDPOINT?'])
  t.same(settingMistakes({ OTEL_SERVICE_NAME: 'research', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), [], 'the SDK\'s own variables are not mistakes')
})

t.test('with tracing off, requests get no span and job records no trace context', async (t) => {
  const app = await startApp(t)
  t.equal(app.hasRequestDecorator('opentelemetry'), false, 'the request instrumentation is not registered')
  const job = await createJob(app)
  t.equal((await app.store.get(job.job_id))?.trace_context, undefined)
})

t.test('with tracing off, the span helpers call straight through', async (t) => {
  t.equal(await inSpan('work', {}, async (span) => span), null, 'no span is made')
  t.equal(await inJobSpan({ jobId: 'j', tenant: '' }, async () => 'ran'), 'ran')
  t.equal(traceCarrier(), undefined)
  t.equal(outsideTraces(() => 'ran'), 'ran')
})

t.test('a URL put in a span keeps no credentials: no user or password, no signing query values', async (t) => {
  t.equal(urlForSpan('https://user:secret@example.com/a?b=1'), 'https://REDACTED:REDACTED@example.com/a?b=1')
  t.equal(urlForSpan('https://token@example.com/'), 'https://REDACTED@example.com/')
  t.equal(urlForSpan('https://bucket.s3.amazonaws.com/k.html?X-Amz-Credential=AKIA&X-Amz-Signature=abc&page=2'), 'https://bucket.s3.amazonaws.com/k.html?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&page=2')
  t.equal(urlForSpan('https://example.com/doc?sig=abc&api_key=k'), 'https://example.com/doc?sig=REDACTED&api_key=REDACTED')
  t.equal(urlForSpan('https://example.com/plain'), 'https://example.com/plain', 'a URL with nothing secret is kept as it is')
  t.equal(urlForSpan('not a url'), '(not a URL)')
})
