import { FastifyOtelInstrumentation } from '@fastify/otel'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

/**
 * A span for each request, from Fastify's own OpenTelemetry instrumentation (a `traceparent`
 * header makes it a child of the caller's span), carrying the tenant and the job it is about:
 * the one in the path, or the one a create made (its Location). Registered first, so every
 * route and hook registered after it is covered; probes and scrapes are left out.
 */
export default fp(async function tracingPlugin (app: FastifyInstance) {
  const instrumentation = new FastifyOtelInstrumentation({
    // The request and its handler, not each of the dozen hooks every request passes (the
    // Redis calls a hook makes, a rate limit's, are still spans under the request).
    instrumentHooks: false,
    ignorePaths: (route: { url: string }) => route.url === '/health' || route.url.startsWith('/health/') || route.url === '/metrics'
  })
  await app.register(instrumentation.plugin())
  // Both before onSend, where @fastify/otel ends the request's span. The tenant is known once
  // the auth hook ran; a create's job only once its handler set the Location.
  app.addHook('preHandler', async (request: FastifyRequest) => {
    const span = request.opentelemetry().span
    if (span == null) return
    span.setAttribute('tenant.id', request.principal?.tenant ?? '')
    const jobId = (request.params as { job_id?: string }).job_id
    if (jobId !== undefined) span.setAttribute('job.id', jobId)
  })
  app.addHook('preSerialization', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const created = JOB_IN_LOCATION.exec(String(reply.getHeader('location') ?? ''))?.[1]
    if (created !== undefined) request.opentelemetry().span?.setAttribute('job.id', created)
    return payload
  })
}, { name: 'tracing' })

const JOB_IN_LOCATION = /^\/v1\/jobs\/([^/?]+)/
