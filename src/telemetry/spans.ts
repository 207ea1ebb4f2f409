import { type Attributes, type Context, type Link, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, context, createContextKey, propagation, trace } from '@opentelemetry/api'

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

/** The W3C trace context of the running span, kept in a job record so its run joins the trace. */
export function traceCarrier (): Record<string, string> | undefined {
  if (!enabled) return undefined
  const carrier: Record<string, string> = {}
  propagation.inject(context.active(), carrier)
  return Object.keys(carrier).length === 0 ? undefined : carrier
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
 * started inside carries the job's id and tenant.
 */
export async function inJobSpan<T> (input: JobSpanInput, work: () => Promise<T>): Promise<T> {
  if (!enabled) return await work()
  const created = input.carrier === undefined ? undefined : propagation.extract(context.active(), input.carrier)
  const createdSpan = created === undefined ? undefined : trace.getSpanContext(created)
  const links: Link[] = createdSpan === undefined ? [] : [{ context: createdSpan, attributes: { 'job.link': 'created_by' } }]
  const ids: Attributes = { 'job.id': input.jobId, 'tenant.id': input.tenant }
  // A fresh root when the create left no context (tracing was off then), not the claim loop's.
  const parent = (created ?? trace.deleteSpan(context.active())).setValue(JOB_ATTRIBUTES, ids)
  return await context.with(parent, async () => await inSpan('research job', { kind: SpanKind.CONSUMER, attributes: input.attributes, links }, work))
}

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
  span.recordException(error)
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
}
