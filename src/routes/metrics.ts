import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { problems } from '../schemas/responses.js'

const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/metrics', {
    config: { access: 'admin' },
    schema: {
      operationId: 'getMetrics',
      tags: ['ops'],
      summary: 'Prometheus metrics',
      description: 'Text exposition format: HTTP request histograms by route, job counters and durations, queue depth, active jobs, store mode, Redis command latency, fallback operations, process metrics.',
      response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: Type.String() } } }, ...problems(401, 403) }
    }
  }, async (_request, reply) => {
    return reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics())
  })
}

export default metricsRoutes
