import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/metrics', {
    config: { access: 'admin' },
    schema: {
      tags: ['ops'],
      summary: 'Prometheus metrics',
      description: 'Text exposition format: HTTP request histograms by route, job counters and durations, queue depth, active jobs, store mode, Redis command latency, fallback operations, process metrics.',
      response: { 200: Type.String() }
    }
  }, async (_request, reply) => {
    return reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics())
  })
}

export default metricsRoutes
