import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { Health, described } from '../schemas/responses.js'

const startedAt = Date.now()

const healthRoutes: FastifyPluginAsyncTypebox<{ version: string, role: Config['ROLE'] }> = async (app, { version, role }) => {
  app.get('/health', {
    config: { access: 'public' },
    schema: {
      security: [],
      operationId: 'getHealth',
      tags: ['ops'],
      summary: 'Liveness and dependencies',
      description: 'Always 200 while the process serves requests; `degraded` when Redis is configured but unreachable (jobs are then kept in memory), refuses writes (creates answer 503), is being re-seeded after losing its data, or has Cluster nodes failing.',
      response: { 200: described('Always, while the process serves requests: `ok`, or `degraded` naming why', Health) }
    }
  }, async () => {
    const { store, runner } = app
    const policy = store.memoryPolicy
    const redis = {
      configured: store.redisConfigured,
      connected: false,
      latency_ms: null as number | null,
      error: null as string | null,
      writes_refused: store.writesRefused,
      maxmemory_policy: policy,
      recovering: store.recovering,
      unsynced: store.unsyncedCount,
      topology: store.topology,
      warnings: policy !== null && policy !== 'noeviction' ? [`maxmemory-policy is ${policy}: Redis may evict jobs when it fills up; use noeviction`] : []
    }
    if (store.redisConfigured) {
      try {
        redis.latency_ms = Math.round((await store.pingRedis()) * 100) / 100
        redis.connected = true
      } catch (err) {
        redis.error = (err as Error).message
      }
      if (redis.writes_refused !== null) redis.error ??= redis.writes_refused
    }
    const { running, concurrency } = runner.stats()
    return {
      status: redis.configured && (!redis.connected || redis.writes_refused !== null || redis.recovering || redis.topology.failing_nodes.length > 0) ? 'degraded' as const : 'ok' as const,
      role,
      store: store.mode,
      redis,
      runner: { running, queued: await store.queueDepth(), concurrency: role === 'api' ? 0 : concurrency },
      auth: app.authOpen ? 'open' as const : 'keys' as const,
      research: { engine: app.engine.name, ...(app.engine.providers?.() ?? { web_search: null, llm: null }) },
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      version
    }
  })
}

export default healthRoutes
