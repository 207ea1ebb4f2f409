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
    const { degraded, ...redis } = await store.health.report()
    const { running, concurrency, unwritten } = runner.stats()
    return {
      status: degraded ? 'degraded' as const : 'ok' as const,
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
