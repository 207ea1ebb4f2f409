import { type Attributes, type Context, type Link, ROOT_CONTEXT, type Span, type SpanContext, SpanKind, SpanStatusCode, context, createContextKey, createTraceState, isSpanContextValid, trace } from '@opentelemetry/api'

/**
 * The spans the core makes: one per job attempt, research step, page fetch, LLM call and web
 * search. Only `@opentelemetry/api` here, which does nothing until an SDK registers itself; and
 * while tracing is off (the default) every helper calls straight through, so a service without
 * OTEL_EXPORTER_OTLP_ENDPOINT pays one boolean test per step, not a span.
 */

let enabled = false

/** Called by the SDK's start (src/telemetry/sdk.ts) and by tests that register their own provider. */
export function enableSpans (on: boolean): void {
  enabled = on
}

export function spansEnabled (): boolean {
  return enabled
}

const TRACER = 'deep-research-api'
const JOB_ATTRIBUTES = createContextKey('deep-research-api job attributes')

/** What every span inside a job's run carries, so a backend can find all of one job's spans. */
export function jobAttributes (ctx: Context = context.active()): Attributes | undefined {
  return ctx.getValue(JOB_ATTRIBUTES) as Attributes | undefined
}

export interface SpanOptions {
  kind?: SpanKind
  attributes?: Attributes
  links?: Link[]
}

/**
 * Runs `work` inside a span that is a child of whatever is running (a job's run, a request).
 * A throw marks the span failed; what the work learns on the way (status codes, token counts)
 * it sets on the span it is given, which is null while tracing is off.
 */
export async function inSpan<T> (name: string, options: SpanOptions, work: (span: Span | null) => Promise<T>): Promise<T> {
  if (!enabled) return await work(null)
  const attributes = { ...jobAttributes(), ...options.attributes }
  return await trace.getTracer(TRACER).startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes, links: options.links }, async (span) => {
    try {
      return await work(span)
    } catch (err) {
      failed(span, err)
      throw err
    } finally {
      span.end()
    }
  })
}

/** W3C Trace Context, version 00: `00-<trace id>-<span id>-<flags>`. */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
/** The longest tracestate kept (W3C asks vendors to pass on at least 512 characters). */
const MAX_TRACESTATE = 512

/**
 * The running span's W3C trace context, kept in a job record so its runs join the trace. Only
 * `traceparent` and a short `tracestate`, whatever propagators HTTP uses: a client's baggage
 * (anything, of any size) is not written into the record.
 */
export function traceCarrier (): Record<string, string> | undefined {
  if (!enabled) return undefined
  const span = trace.getSpanContext(context.active())
  if (span === undefined || !isSpanContextValid(span)) return undefined
  const carrier: Record<string, string> = { traceparent: `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}` }
  const state = span.traceState?.serialize() ?? ''
  if (state !== '' && state.length <= MAX_TRACESTATE) carrier.tracestate = state
  return carrier
}

/** The span a job was created in, from its record's carrier; undefined when there is none or it is not valid. */
function createdIn (carrier: Record<string, string> | undefined): SpanContext | undefined {
  const parts = TRACEPARENT.exec(carrier?.traceparent ?? '')
  if (parts === null) return undefined
  const [, traceId, spanId, flags] = parts as unknown as [string, string, string, string]
  const state = carrier?.tracestate
  const created: SpanContext = { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true, ...(state === undefined ? {} : { traceState: createTraceState(state) }) }
  return isSpanContextValid(created) ? created : undefined
}

export interface JobSpanInput {
  jobId: string
  tenant: string
  /** The trace context kept when the job was created (on whichever replica that was). */
  carrier?: Record<string, string>
  attributes?: Attributes
}

/**
 * One attempt at a job, as a child of the request that created it and linked to it, so the
 * run shows in the create's trace even on another replica, days of retries later. Every span
 * started inside carries the job's id and tenant. Nothing of the context it is called in is
 * kept (a job begun by another job's final write is not that job's child).
 */
export async function inJobSpan<T> (input: JobSpanInput, work: () => Promise<T>): Promise<T> {
  if (!enabled) return await work()
  const created = createdIn(input.carrier)
  const links: Link[] = created === undefined ? [] : [{ context: created, attributes: { 'job.link': 'created_by' } }]
  // A fresh root when the create left no context (tracing was off then).
  const parent = (created === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, created)).setValue(JOB_ATTRIBUTES, ids(input.jobId, input.tenant))
  return await context.with(parent, async () => await inSpan('research job', { kind: SpanKind.CONSUMER, attributes: input.attributes, links }, work))
}

/**
 * Runs `work` as about one job (a create, before any run): the running span and every span
 * started inside carry the job's id and tenant.
 */
export async function asJob<T> (jobId: string, tenant: string, work: () => Promise<T>): Promise<T> {
  if (!enabled) return await work()
  trace.getActiveSpan()?.setAttributes(ids(jobId, tenant))
  return await context.with(context.active().setValue(JOB_ATTRIBUTES, ids(jobId, tenant)), work)
}

function ids (jobId: string, tenant: string): Attributes {
  return { 'job.id': jobId, 'tenant.id': tenant }
}

/**
 * A URL fit for a span: no user or password, and the query values that sign or authorize a
 * request (presigned S3 and GCS links) replaced, as OpenTelemetry's HTTP conventions ask.
 */
export function urlForSpan (address: string): string {
  let url: URL
  try {
    url = new URL(address)
  } catch {
    return '(not a URL)'
  }
  if (url.username !== '' || url.password !== '') {
    url.username = 'REDACTED'
    url.password = url.password === '' ? '' : 'REDACTED'
  }
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_QUERY.test(key)) url.searchParams.set(key, 'REDACTED')
  }
  return url.href
}

const SECRET_QUERY = /^(awsaccesskeyid|signature|sig|x-goog-signature|x-goog-credential|x-amz-signature|x-amz-credential|x-amz-security-token|token|access_token|api_key|apikey|key)$/i

/**
 * Runs `work` in no trace. For loops woken from inside a request (a create wakes the runner):
 * without it, the claim loop, and every timer it sets, would go on in that request's trace.
 */
export function outsideTraces<T> (work: () => T): T {
  return enabled ? context.with(ROOT_CONTEXT, work) : work()
}

/** Notes how the running job's attempt ended on its span (failed and lost attempts as errors). */
export function noteJobOutcome (outcome: string, error?: unknown): void {
  if (!enabled) return
  const span = trace.getActiveSpan()
  if (span === undefined || jobAttributes() === undefined) return
  span.setAttribute('job.outcome', outcome)
  if (error !== undefined) failed(span, error)
}

function failed (span: Span, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err))
  span.setAttribute('error.type', err instanceof Error ? error.name : typeof err)
  span.recordException(error)
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
}
