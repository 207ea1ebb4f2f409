import {
  type Claim, type ClaimStart, type JobStore, type LeaseRenewal, type PatchResult, type ProgressPatch, type Lookup, type PutOptions, type WebhookOutbox, type ListPage, type ListQuery, type PutResult, type QueueStats, type StoredJob,
  PATCH_STALE, StoreUnavailableError
} from './job-store.js'
import type { JobEvent } from '../schemas/events.js'
import { type JobEventLog, LocalEventLog } from './job-events.js'
import type { MemoryJobStore } from './memory.js'
import type { RedisStore } from './redis.js'
import { type CallKind, type Failure, RedisGate, type StoreLogger, refusesEveryWriter } from './redis-gate.js'
import { Reconciler } from './reconciler.js'
import { JobNotices } from './notices.js'
import { FinalCopies } from './final-copies.js'
import { RedisHealth } from './redis-health.js'
import { SharedCounters } from './shared-counters.js'
import { RedisReads } from './redis-reads.js'
import { FallbackOutbox } from './fallback-outbox.js'
import { RedisWrites } from './redis-writes.js'
import { JobSteps } from './job-steps.js'
import { SharedCache, type SharedCacheOptions } from './shared-cache.js'
import { ReplicaRoster } from './replica-roster.js'
import { outsideTraces } from '../telemetry/spans.js'

export type { StoreLogger }
export { StoreUnavailableError }

export interface FallbackJobStoreOptions {
  memory: MemoryJobStore
  /** Absent when REDIS_URL is not set: the store is the Map alone. */
  redis?: RedisStore
  breakerMs: number
  /** See RedisReadsOptions (defaults 0 and 300000 ms). */
  readWaitMs?: number
  visibilityGraceMs?: number
  logger?: StoreLogger
  /** Events of jobs written only here (no Redis, or an outage); default: 500 per job, as many jobs as the Map. */
  events?: LocalEventLog
  /** Told each time the Map serves a read or takes a write because Redis could not (Redis configured). */
  onFallback?: (operation: 'read' | 'write') => void
  /** The reconciler's period (default 1000 ms). */
  reconcileEveryMs?: number
  /** After Redis lost its data, how long unfinished jobs put back wait before they run again (JOB_LEASE_MS; default 30000 ms). */
  reseedHoldMs?: number
  /** Checkpointed steps: how long they live (JOB_TTL_SECONDS) and most bytes kept in this process (defaults 86400 s, 64 MiB). */
  steps?: { ttlSeconds: number, maxLocalBytes: number }
  /** The shared cache of pages and LLM answers (defaults: 5000 entries, 64 MiB here). */
  cache?: Omit<SharedCacheOptions, 'gate'>
  /** With Redis: this replica's name in the roster of replicas, and how often it says it is here (no roster without it). */
  roster?: { replica: string, everyMs: number }
}

const DEFAULT_STEPS = { ttlSeconds: 86_400, maxLocalBytes: 64 * 1024 * 1024 }
const DEFAULT_CACHE = { maxEntries: 5000, maxLocalBytes: 64 * 1024 * 1024 }

/**
 * The store every route and the runner use: it routes each call to Redis or to this process's
 * Map, and each rule of that routing has its own home:
 * - Redis is the one authority for every job it has seen, and a create Redis cannot take is held
 *   here until it can: `RedisWrites`, with the reconciler's ledger (`Reconciler`).
 * - Reads never go back, and a copy answers only what nothing can contradict: `RedisReads`.
 * - Final copies known to be current answer without a Redis read: `FinalCopies`.
 * - Events and webhook deliveries go where the job's record is: `FallbackOutbox`.
 * - Redis's state for /health is `health` (`RedisHealth`); rate windows and idempotency claims
 *   are `counters` (`SharedCounters`).
 */
export class FallbackJobStore implements JobStore, JobEventLog, WebhookOutbox {
  readonly #memory: MemoryJobStore
  readonly #localEvents: LocalEventLog
  readonly #gate: RedisGate | undefined
  readonly #reconciler: Reconciler | undefined
  readonly #shuttingDown = new AbortController()
  readonly #copies: FinalCopies
  readonly #reads: RedisReads | undefined
  readonly #outbox: FallbackOutbox
  readonly #writes: RedisWrites | undefined
  readonly #roster: ReplicaRoster | undefined
  /** One lease (see reseedHoldMs): how long takeovers wait after a refused write. */
  readonly #holdMs: number
  /** Changes of records, for readers that wait for them (event streams, long polls). */
  readonly notices: JobNotices
  /** Redis's state, for /health. */
  readonly health: RedisHealth
  /** Rate-limit windows and idempotency claims, shared by replicas through Redis. */
  readonly counters: SharedCounters
  /** The results of jobs' checkpointed steps, where each job lives. */
  readonly steps: JobSteps
  /** Pages and LLM answers, shared by replicas through Redis. */
  readonly cache: SharedCache

  constructor (options: FallbackJobStoreOptions) {
    this.#memory = options.memory
    this.#localEvents = options.events ?? new LocalEventLog({ maxEvents: 500, maxJobs: 10_000, ttlSeconds: 86_400 })
    this.#holdMs = options.reseedHoldMs ?? 30_000
    const redis = options.redis
    this.notices = new JobNotices(redis === undefined)
    this.#copies = new FinalCopies(this.#memory, this.notices)
    const steps = { memory: this.#memory, isLocal: (id: string) => this.#isLocal(id), ...(options.steps ?? DEFAULT_STEPS) }
    if (redis === undefined) {
      this.#outbox = new FallbackOutbox(this.#memory, this.#localEvents, undefined, () => true)
      this.health = new RedisHealth()
      this.counters = new SharedCounters()
      this.steps = new JobSteps(steps)
      this.cache = new SharedCache(options.cache ?? DEFAULT_CACHE)
      return
    }
    this.#gate = new RedisGate(redis, { breakerMs: options.breakerMs, logger: options.logger, onRecovered: () => { void outsideTraces(async () => await this.#reconciler?.syncAll()) } })
    this.steps = new JobSteps({ ...steps, gate: this.#gate })
    this.cache = new SharedCache({ ...(options.cache ?? DEFAULT_CACHE), gate: this.#gate })
    const reconciler = new Reconciler({ gate: this.#gate, memory: this.#memory, logger: options.logger, checkEveryMs: options.reconcileEveryMs, holdMs: options.reseedHoldMs })
    this.#reconciler = reconciler
    const parts = { memory: this.#memory, gate: this.#gate, reconciler, copies: this.#copies, onFallback: options.onFallback, forget: async (id: string, deleted = false) => await this.#forget(id, deleted) }
    const { readWaitMs = 0, visibilityGraceMs = 300_000 } = options
    if (options.roster !== undefined) {
      this.#roster = new ReplicaRoster({ ...options.roster, gate: this.#gate, graceMs: visibilityGraceMs, held: () => reconciler.ledger.size })
      this.#roster.start()
    }
    this.#reads = new RedisReads({ ...parts, readWaitMs, visibilityGraceMs, shuttingDown: this.#shuttingDown.signal, roster: this.#roster })
    this.#writes = new RedisWrites({ ...parts, mayHoldCreates: () => this.#roster?.mayHoldCreates ?? true, putHere: async (job, version, put) => await this.#putHere(job, version, put), notify: (notice) => this.notices.emit(notice) })
    this.health = new RedisHealth(this.#gate, reconciler)
    this.counters = new SharedCounters(this.#gate)
    this.#outbox = new FallbackOutbox(this.#memory, this.#localEvents, this.#gate, (id) => reconciler.ledger.has(id))
    redis.client.on('ready', () => {
      this.#gate?.connected()
      // On the roster as soon as connected: a replica that takes jobs before its first heartbeat
      // and is then cut off would be unknown to the others, who would deny its jobs.
      void this.#roster?.beat()
      void reconciler.reconnected()
    })
    reconciler.start()
  }

  /** Where calls go right now. */
  get mode (): 'redis' | 'memory' {
    return this.#gate?.reachable === true ? 'redis' : 'memory'
  }

  get memory (): MemoryJobStore {
    return this.#memory
  }

  /**
   * The process is shutting down: reads stop waiting for Redis to come back (they answer 503, and
   * the client retries on another replica), so the server's close is not held up by them.
   */
  stopWaiting (): void {
    this.#shuttingDown.abort()
  }

  /** Stops the reconciler's timer; the last hand-over is `syncToRedis`. */
  close (): void {
    this.stopWaiting()
    this.#reconciler?.stop()
    this.#roster?.stop()
  }

  /** Hands every job created here during an outage to Redis (also done on its own when Redis answers). */
  async syncToRedis (): Promise<void> {
    await this.#reconciler?.syncAll()
  }

  /**
   * Takes this replica off the roster when it holds nothing Redis lacks: left on it, silent, it
   * would keep fresh unknown ids at 503 on every other replica until the grace ends.
   */
  async leaveRoster (): Promise<void> {
    if (this.#reconciler?.ledger.size === 0) await this.#roster?.leave()
  }

  /** One reconciler pass now: the epoch check and the hand-over (tests; a timer runs it every second). */
  async reconcile (): Promise<void> {
    await this.#reconciler?.tick()
  }

  /** The record for this process's own work (runner, reaper, webhooks): what Redis holds now. */
  async get (id: string): Promise<StoredJob | null> {
    return (await this.#lookup(id)).job
  }

  /** The answer for a client: never behind what a client may have seen elsewhere. */
  async lookup (id: string): Promise<Lookup> {
    const found = await this.#lookup(id)
    if (found.job !== null && this.#reconciler?.mayBeBehind(found.job) === true) {
      throw new StoreUnavailableError('Redis lost its data moments ago and replicas are putting their copies back; another replica may hold a newer state of this job')
    }
    return found
  }

  async #lookup (id: string): Promise<Lookup> {
    if (this.#reads === undefined) return { job: this.#memory.peek(id), absenceConfirmed: true }
    return await this.#reads.lookup(id)
  }

  async put (job: StoredJob, expectedVersion: number, options: PutOptions = {}): Promise<PutResult> {
    return await (this.#writes?.put(job, expectedVersion, options) ?? this.#putHere(job, expectedVersion, options))
  }

  async claimWebhooks (leaseMs: number, limit: number): Promise<string[]> {
    return await this.#outbox.claimWebhooks(leaseMs, limit)
  }

  async scheduleWebhook (id: string, delayMs: number | null): Promise<void> {
    await this.#outbox.scheduleWebhook(id, delayMs)
  }

  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    return await this.#outbox.events(id, afterId, limit)
  }

  async delete (id: string): Promise<boolean> {
    return await (this.#writes?.delete(id) ?? this.#forget(id, false))
  }

  async list (query: ListQuery): Promise<ListPage> {
    return await (this.#reads ?? this.#memory).list(query)
  }

  /** Jobs created here during an outage first, then Redis's queue. */
  async claim (leaseMs: number, limit: number, start?: ClaimStart): Promise<Claim[]> {
    const local = await this.#memory.claim(leaseMs, limit)
    if (local.length === limit && limit > 0) return local
    const remote = await this.#call((redis) => redis.claim(leaseMs, limit - local.length, start), 'write')
    if (!remote.ok) return local
    // A claim that began a job wrote its record: the copy kept for a re-seed follows, as after any write.
    for (const claim of remote.value) if (claim.started === true) this.#copies.adopt(claim.job)
    return [...local, ...remote.value]
  }

  async renewLease (id: string, fence: string, leaseMs: number): Promise<LeaseRenewal> {
    if (this.#isLocal(id)) return await this.#memory.renewLease(id, fence, leaseMs)
    const remote = await this.#call((redis) => redis.renewLease(id, fence, leaseMs), 'write')
    if (remote.ok) return remote.value
    return remote.failure === 'refused' && refusesEveryWriter(remote.cause) ? 'refused' : 'unavailable'
  }

  /** Through Redis for the jobs it holds; this process's own jobs are written whole (`stale`). */
  async patchProgress (id: string, fence: string, version: number, patch: ProgressPatch): Promise<PatchResult> {
    if (this.#isLocal(id)) return PATCH_STALE
    const remote = await this.#call((redis) => redis.patchProgress(id, fence, version, patch), 'write')
    if (!remote.ok) return { outcome: 'unavailable', refused: remote.failure === 'refused' && refusesEveryWriter(remote.cause) }
    if (remote.value.outcome !== 'written') return remote.value
    const written = remote.value.version
    // The copy kept here for a re-seed follows the record, as after a whole write.
    this.#memory.patchCopy(id, version, patch, written)
    this.notices.emit({ id, version: written, status: 'processing' })
    return remote.value
  }

  /**
   * No lease in Redis is taken over while replicas may still be putting their copies back after
   * Redis lost data (one of them may hold the job finished), nor within a lease of a refused
   * write (its worker may still be retrying the write that ends it, and Redis's clock ran on).
   */
  async expiredLeases (limit: number): Promise<string[]> {
    const local = await this.#memory.expiredLeases(limit)
    if (this.#reconciler?.recovering === true || this.#gate?.refusedWithin(this.#holdMs) === true) return local
    const remote = await this.#call((redis) => redis.expiredLeases(limit))
    return [...new Set([...local, ...(remote.ok ? remote.value : [])])].slice(0, limit)
  }

  async dropLease (id: string): Promise<void> {
    if (this.#isLocal(id)) await this.#memory.dropLease(id)
    else await this.#call((redis) => redis.dropLease(id), 'write')
  }

  async sweepOrphans (limit: number): Promise<number> {
    const remote = await this.#call((redis) => redis.sweepOrphans(limit), 'write')
    return remote.ok ? remote.value : 0
  }

  async queueDepth (): Promise<number> {
    const remote = await this.#call((redis) => redis.queueDepth())
    return await this.#memory.queueDepth() + (remote.ok ? remote.value : 0)
  }

  async stats (): Promise<QueueStats> {
    const remote = await this.#call((redis) => redis.stats())
    return remote.ok ? remote.value : await this.#memory.stats()
  }

  /** Jobs this process answers for alone: no Redis, or created here and not handed over yet. */
  #isLocal (id: string): boolean {
    return this.#gate === undefined || this.#reconciler?.ledger.has(id) === true
  }

  async #putHere (job: StoredJob, expectedVersion: number, options: PutOptions): Promise<PutResult> {
    const held = this.#memory.peek(job.job_id)
    const result = await this.#memory.put(job, expectedVersion, options)
    if (result.ok) {
      this.#localEvents.append(result.job, held?.status ?? null)
      this.notices.emit({ id: job.job_id, version: result.job.version, status: result.job.status })
    }
    return result
  }

  /** Drops every trace of the job here, and tells readers and the runner when it was deleted (here or, `deleted`, in Redis). */
  async #forget (id: string, deleted: boolean): Promise<boolean> {
    this.#localEvents.delete(id)
    this.#reconciler?.ledger.delete(id)
    this.#copies.forget(id)
    const held = await this.#memory.delete(id)
    if (held || deleted) this.notices.emit({ id, version: 0, status: 'deleted' })
    return held
  }

  #call<T> (call: (redis: RedisStore) => Promise<T>, kind: CallKind = 'read'): Promise<{ ok: true, value: T } | { ok: false, failure: Failure | 'none', cause: string }> {
    if (this.#gate === undefined) return Promise.resolve({ ok: false, failure: 'none', cause: 'Redis is not configured' })
    return this.#gate.call(call, kind)
  }
}
