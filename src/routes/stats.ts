import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { QueueStatsBody, described, problems } from '../schemas/responses.js'

/** The open API's tenant ('' in the store) as /v1/stats names it: no API key name has parentheses. */
const OPEN_TENANT_NAME = '(open)'

const statsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/v1/stats', {
    config: { access: 'admin' },
    schema: {
      operationId: 'getStats',
      tags: ['ops'],
      summary: 'Queue statistics for operators',
      description: 'Counts by status, queue depth, the age of the oldest queued job, active leases per worker and jobs queued and running per tenant, across every replica sharing the Redis.',
      response: { 200: described('The queue across every replica sharing the Redis', QueueStatsBody), ...problems(401, 403, 503) }
    }
  }, async () => {
    const now = Date.now()
    const stats = await app.store.stats()
    return {
      store: app.store.mode,
      counts: stats.counts,
      queue_depth: stats.queued,
      delayed: stats.delayed,
      oldest_pending_age_s: stats.oldestQueuedAt === null ? null : Math.max(0, (now - Date.parse(stats.oldestQueuedAt)) / 1000),
      active_leases: stats.leasesByWorker,
      tenants: Object.fromEntries(Object.entries(stats.byTenant).map(([tenant, load]) => [tenant === '' ? OPEN_TENANT_NAME : tenant, load])),
      worker: app.runner.worker
    }
  })
}

export default statsRoutes
