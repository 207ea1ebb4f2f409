import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { AttemptEnd } from '../runner/runner.js'

/** What the gauges read at scrape time. */
export interface MetricsSources {
  queueDepth (): Promise<number>
  activeJobs (): number
  storeMode (): 'redis' | 'memory'
  /** Redis's memory against the create admission limit (null: no Redis, or not answering). */
  redisMemory (): Promise<{ used_bytes: number, max_bytes: number, admit_limit_bytes: number | null } | null>
  /** Finished attempts whose final write Redis refuses, kept in this process. */
  unwrittenResults (): number
}

/**
 * The service's Prometheus metrics, in a registry of its own (one per app, so tests and several
 * apps in a process never collide). Store, runner and routes report through the methods below.
 */
export class ServiceMetrics {
  readonly registry = new Registry()
  #sources: MetricsSources | null = null

  readonly #http = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by route pattern, method and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry]
  })

  readonly #created = new Counter({ name: 'research_jobs_created_total', help: 'Jobs created', registers: [this.registry] })
  readonly #finished = new Counter({ name: 'research_jobs_finished_total', help: 'Jobs that reached a final state, by status (completed, failed, cancelled)', labelNames: ['status'], registers: [this.registry] })
  readonly #attempts = new Counter({ name: 'research_job_attempts_total', help: 'Attempts run by this process, by how they ended', labelNames: ['outcome'], registers: [this.registry] })
  readonly #duration = new Histogram({
    name: 'research_job_duration_seconds',
    help: 'Time one attempt ran, by how it ended',
    labelNames: ['outcome'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600],
    registers: [this.registry]
  })

  readonly #redis = new Histogram({
    name: 'redis_command_duration_seconds',
    help: 'Redis round trips by command (scripts by name) and outcome',
    labelNames: ['command', 'ok'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry]
  })

  readonly #webhooks = new Counter({ name: 'webhook_delivery_attempts_total', help: 'Webhook delivery attempts by this process, by how they ended (delivered, retrying, failed)', labelNames: ['outcome'], registers: [this.registry] })
  readonly #steps = new Counter({ name: 'research_steps_total', help: 'Checkpointed research steps (page reads, searches, LLM calls) by outcome: ran (and kept), reused (kept by an earlier attempt, not done again), too_large (ran, not kept: over STEP_MAX_BYTES)', labelNames: ['outcome'], registers: [this.registry] })
  readonly #cache = new Counter({ name: 'research_cache_lookups_total', help: 'Lookups in the shared cache by kind (page, llm) and outcome: hit, miss, skipped (the job asked for cache: false)', labelNames: ['kind', 'outcome'], registers: [this.registry] })
  readonly #fallback = new Counter({ name: 'store_fallback_operations_total', help: 'Reads and writes served by the in-memory store because Redis could not', labelNames: ['operation'], registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry })
    const metrics = this
    // eslint-disable-next-line no-new -- a prom-client gauge registers itself (registers: [...]); nothing else needs to hold it
    new Gauge({
      name: 'research_queue_depth',
      help: 'Jobs waiting to start',
      registers: [this.registry],
      async collect () { this.set(await metrics.#sources?.queueDepth().catch(() => 0) ?? 0) }
    })
    // eslint-disable-next-line no-new -- a prom-client gauge registers itself (registers: [...]); nothing else needs to hold it
    new Gauge({
      name: 'research_active_jobs',
      help: 'Jobs this process is running',
      registers: [this.registry],
      collect () { this.set(metrics.#sources?.activeJobs() ?? 0) }
    })
    // eslint-disable-next-line no-new -- a prom-client gauge registers itself (registers: [...]); nothing else needs to hold it
    new Gauge({
      name: 'research_store_mode',
      help: '1 for the store answering now (redis or memory), 0 for the other',
      labelNames: ['mode'],
      registers: [this.registry],
      collect () {
        const mode = metrics.#sources?.storeMode() ?? 'memory'
        this.set({ mode: 'redis' }, mode === 'redis' ? 1 : 0)
        this.set({ mode: 'memory' }, mode === 'memory' ? 1 : 0)
      }
    })
    // eslint-disable-next-line no-new -- a prom-client gauge registers itself (registers: [...]); nothing else needs to hold it
    new Gauge({
      name: 'redis_memory_bytes',
      help: 'Redis memory: used (used_memory), max (maxmemory, 0: none) and admit_limit (creates answer 503 store_full past it, counting the room kept for unfinished jobs)',
      labelNames: ['kind'],
      registers: [this.registry],
      async collect () {
        const memory = await metrics.#sources?.redisMemory().catch(() => null) ?? null
        this.reset()
        if (memory === null) return
        this.set({ kind: 'used' }, memory.used_bytes)
        this.set({ kind: 'max' }, memory.max_bytes)
        if (memory.admit_limit_bytes !== null) this.set({ kind: 'admit_limit' }, memory.admit_limit_bytes)
      }
    })
    // eslint-disable-next-line no-new -- a prom-client gauge registers itself (registers: [...]); nothing else needs to hold it
    new Gauge({
      name: 'research_unwritten_results',
      help: 'Attempts this process finished whose final write Redis refuses (MISCONF, OOM): kept here and written when it accepts writes again',
      registers: [this.registry],
      collect () { this.set(metrics.#sources?.unwrittenResults() ?? 0) }
    })
  }

  readFrom (sources: MetricsSources): void {
    this.#sources = sources
  }

  request (method: string, route: string, statusCode: number, seconds: number): void {
    this.#http.observe({ method, route, status_code: String(statusCode) }, seconds)
  }

  jobCreated (): void {
    this.#created.inc()
  }

  jobCancelled (): void {
    this.#finished.inc({ status: 'cancelled' })
  }

  attemptEnded (outcome: AttemptEnd, ms: number): void {
    this.#attempts.inc({ outcome })
    this.#duration.observe({ outcome }, ms / 1000)
    if (outcome === 'completed' || outcome === 'failed') this.#finished.inc({ status: outcome })
  }

  redisCommand (command: string, ms: number, ok: boolean): void {
    this.#redis.observe({ command, ok: String(ok) }, ms / 1000)
  }

  webhookAttempt (outcome: 'delivered' | 'retrying' | 'failed'): void {
    this.#webhooks.inc({ outcome })
  }

  step (outcome: 'ran' | 'reused' | 'too_large'): void {
    this.#steps.inc({ outcome })
  }

  cacheLookup (kind: 'page' | 'llm', outcome: 'hit' | 'miss' | 'skipped'): void {
    this.#cache.inc({ kind, outcome })
  }

  fallback (operation: 'read' | 'write'): void {
    this.#fallback.inc({ operation })
  }
}
