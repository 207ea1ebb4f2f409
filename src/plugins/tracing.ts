import { FastifyOtelInstrumentation } from '@fastify/otel'
import type { Span } from '@opentelemetry/api'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

/**
 * A span for each request, from Fastify's own OpenTelemetry instrumentation (a `traceparent`
 * header makes it a child of the caller's span), carrying the tenant and the job it is about:
 * the one in the path, or the one the answer is (a create's). Its handler's span carries them
 * too, and so the Redis calls made under it. Registered first, so every route and hook
 * registered after it is covered; probes and scrapes are left out.
 */
export default fp(async function tracingPlugin (app: FastifyInstance) {
  const instrumentation = new FastifyOtelInstrumentation({
    // The request and its handler, not each of the dozen hooks every request passes (the
    // Redis calls a hook makes, a rate limit's, are still spans under the request).
    instrumentHooks: false,
    ignorePaths: ({ url }: { url: string }) => UNTRACED.has(url.split('?')[0] ?? url),
    lifecycleHook: (span, { request }) => { describe(span, request) }
  })
  await app.register(instrumentation.plugin())
  // Both before onSend, where @fastify/otel ends the request's span. The tenant is known once
  // the auth hook ran; a create's job once its handler answered.
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    const span = request.opentelemetry().span
    if (span == null) return
    describe(span, request)
    // An event stream is hijacked (no onSend): its span ends when the client goes.
    reply.raw.once('close', () => { if (span.isRecording()) span.end() })
  })
  app.addHook('preSerialization', async (request: FastifyRequest, _reply: FastifyReply, payload: unknown) => {
    const answered = (payload as { job_id?: unknown } | null)?.job_id
    if (typeof answered === 'string') request.opentelemetry().span?.setAttribute('job.id', answered)
    return payload
  })
}, { name: 'tracing' })

const UNTRACED = new Set(['/health', '/metrics'])

function describe (span: Span, request: FastifyRequest): void {
  span.setAttribute('tenant.id', request.principal?.tenant ?? '')
  const jobId = (request.params as { job_id?: string } | undefined)?.job_id
  if (jobId !== undefined) span.setAttribute('job.id', jobId)
}
