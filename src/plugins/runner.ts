import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import type { ResearchEngine } from '../research/engine.js'
import { ResearchRunner, type StopSummary } from '../runner/runner.js'
import { AnswerCache } from '../runner/answer-cache.js'

declare module 'fastify' {
  interface FastifyInstance {
    runner: ResearchRunner
    engine: ResearchEngine
    /** What became of the jobs this process held when it stopped: filled on close (see `stopped` in server.ts). */
    stopSummary: StopCounts
  }
}

export interface StopCounts { finished: number, handed_back: number, lost: number, left_to_lease_expiry: number }

/** Jobs named one by one in the log at a shutdown that loses them; past this, a count. */
const LOST_NAMED = 100

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
  app.decorate('stopSummary', { finished: 0, handed_back: 0, lost: 0, left_to_lease_expiry: 0 })
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
  // Without Redis the records die with the process: running jobs get MEMORY_SHUTDOWN_GRACE_MS to
  // finish, and every job still unfinished after it is named as lost (nothing can run it later).
  const memoryOnly = config.REDIS_URL === ''
  app.addHook('preClose', async () => {
    const summary = await runner.stop(config.SHUTDOWN_TIMEOUT_MS, memoryOnly ? config.MEMORY_SHUTDOWN_GRACE_MS : 0)
    await account(app, summary, memoryOnly)
  })
}

/** Fills `app.stopSummary` and, without Redis, names every job the shutdown loses. */
async function account (app: FastifyInstance, summary: StopSummary, memoryOnly: boolean): Promise<void> {
  const counts = app.stopSummary
  counts.finished = summary.finished.length
  if (!memoryOnly) {
    counts.handed_back = summary.handedBack.length
    counts.left_to_lease_expiry = summary.other.length
    return
  }
  // Every unfinished record dies with the process: the jobs that ran out of time (handed back
  // to a queue no one will read) and those that never started.
  const log = app.log.child({ component: 'runner' })
  const { counts: held } = await app.store.memory.stats()
  counts.lost = held.pending + held.processing
  const named = await Promise.all((['processing', 'pending'] as const).map(async (status) => (await app.store.memory.list({ status, limit: LOST_NAMED })).jobs))
  for (const job of named.flat().slice(0, LOST_NAMED)) log.warn({ job_id: job.job_id, status: job.status }, 'job lost at shutdown: REDIS_URL is not set, so it lived only in this process')
  if (counts.lost > LOST_NAMED) log.warn({ more: counts.lost - LOST_NAMED }, 'more jobs lost at shutdown')
}

export default fp(runnerPlugin, { name: 'runner', dependencies: ['store', 'metrics'] })
