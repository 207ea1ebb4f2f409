import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import type { ResearchEngine } from '../research/engine.js'
import { ResearchRunner } from '../runner/runner.js'
import { AnswerCache } from '../runner/answer-cache.js'

declare module 'fastify' {
  interface FastifyInstance {
    runner: ResearchRunner
    engine: ResearchEngine
  }
}

/**
 * The background runner. On close it stops first
 * (preClose: while the store is still open) so running jobs are handed back to the queue.
 * With ROLE=api it is never started.
 */
const runnerPlugin: FastifyPluginAsync<{ config: Config, engine: ResearchEngine }> = async (app, { config, engine }) => {
  const runner = new ResearchRunner({
    store: app.store,
    engine,
    concurrency: config.RUNNER_CONCURRENCY,
    jobTimeoutMs: config.JOB_TIMEOUT_MS,
    progressMinIntervalMs: config.PROGRESS_MIN_INTERVAL_MS,
    leaseMs: config.JOB_LEASE_MS,
    maxAttempts: config.JOB_MAX_ATTEMPTS,
    retryBaseMs: config.JOB_RETRY_BASE_MS,
    retryMaxMs: config.JOB_RETRY_MAX_MS,
    workerId: config.WORKER_ID === '' ? undefined : config.WORKER_ID,
    logger: app.log.child({ component: 'runner' }),
    // ROLE=api runs nothing: the runner stays stopped and needs no wake-ups.
    notices: config.ROLE === 'api' ? undefined : app.store.notices,
    onAttemptEnd: (outcome, ms) => app.metrics.attemptEnded(outcome, ms),
    steps: { log: app.store.steps, maxBytes: config.STEP_MAX_BYTES, onStep: (outcome) => app.metrics.step(outcome) },
    cache: config.CACHE_ENABLED
      ? new AnswerCache({
        store: app.store.cache,
        scope: config.CACHE_SCOPE,
        ttlSeconds: { page: config.CACHE_PAGE_TTL_S, llm: config.CACHE_LLM_TTL_S },
        maxEntryBytes: config.CACHE_MAX_ENTRY_BYTES,
        onLookup: (kind, outcome) => app.metrics.cacheLookup(kind, outcome)
      })
      : undefined
  })
  app.decorate('runner', runner)
  app.decorate('engine', engine)
  app.metrics.readFrom({
    queueDepth: async () => await app.store.queueDepth(),
    activeJobs: () => runner.stats().running,
    storeMode: () => app.store.mode,
    redisMemory: async () => await app.store.health.memory(),
    unwrittenResults: () => runner.stats().unwritten
  })
  app.addHook('onClose', async () => engine.close?.())
  // ROLE=api runs nothing: the runner stays stopped (notify is a no-op, cancel finds nothing).
  if (config.ROLE === 'api') return
  app.addHook('onReady', async () => runner.start())
  app.addHook('preClose', async () => runner.stop(config.SHUTDOWN_TIMEOUT_MS))
}

export default fp(runnerPlugin, { name: 'runner', dependencies: ['store', 'metrics'] })
