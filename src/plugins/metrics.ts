import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { ServiceMetrics } from '../metrics/service-metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics
  }
}

/** Prometheus metrics: HTTP request durations by route here; the store and runner plugins report theirs. */
const metricsPlugin: FastifyPluginAsync = async (app) => {
  const metrics = new ServiceMetrics()
  app.decorate('metrics', metrics)
  app.addHook('onResponse', (request, reply, done) => {
    metrics.request(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
    done()
  })
}

export default fp(metricsPlugin, { name: 'metrics' })
