import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { HealthAnswer, described } from '../schemas/responses.js'

const startedAt = Date.now()

export interface HealthOptions {
  version: string
  role: Config['ROLE']
  /** HEALTH_DETAILS: who sees more than status and role once keys are configured. */
  details: Config['HEALTH_DETAILS']
}

const healthRoutes: FastifyPluginAsyncTypebox<HealthOptions> = async (app, { version, role, details }) => {
  app.get('/health', {
    config: { access: 'public' },
    schema: {
      security: [],
      operationId: 'getHealth',
      tags: ['ops'],
      summary: 'Liveness, readiness and (for admins) dependencies',
      description: 'Always 200 while the process serves requests, with or without a key (platform health checks send none); `degraded` when Redis is configured but unreachable (jobs are then kept in memory), refuses writes (creates answer 503), is being re-seeded after losing its data, or has Cluster nodes failing. Once API keys are configured, only an admin key gets the detail (Redis, queue and runner, providers, version); any other caller gets `status` and `role` alone, unless the server sets HEALTH_DETAILS=public. With no keys configured the API is open and the detail is shown to anyone.',
      response: { 200: described('Always, while the process serves requests: `ok`, or `degraded`; the full detail (`Health`) or `status` and `role` only (`HealthSummary`)', HealthAnswer) }
    }
  }, async (request) => {
    const { store, runner } = app
    const { degraded, ...redis } = await store.health.report()
    const status = degraded ? 'degraded' as const : 'ok' as const
    // Redis's errors and address, the queue across tenants and the model are for operators.
    if (details !== 'public' && !request.principal.admin) return { status, role }
    const { running, concurrency, unwritten } = runner.stats()
    return {
      status,
      role,
      store: store.mode,
      redis,
      runner: { running, queued: await store.queueDepth(), concurrency: role === 'api' ? 0 : concurrency, unwritten },
      auth: app.authOpen ? 'open' as const : 'keys' as const,
      research: { engine: app.engine.name, ...(app.engine.providers?.() ?? { web_search: null, llm: null }) },
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      version
    }
  })
}

export default healthRoutes
