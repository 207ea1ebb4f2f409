import { setTimeout as sleep } from 'node:timers/promises'
import { dropOldest } from './bounded.js'
import {
  type Claim, type ClaimStart, type JobStore, type LeaseRenewal, type Lookup, type PutOptions, type WebhookOutbox, type ListPage, type ListQuery, type PutResult, type QueueStats, type StoredJob,
  StoreUnavailableError, compareNewestFirst, matchesQuery
} from './job-store.js'
import type { JobEvent } from '../schemas/events.js'
import { isFinal } from '../schemas/job.js'
import { type JobEventLog, LocalEventLog } from './job-events.js'
import { issuedWithin } from './job-ids.js'
import type { MemoryJobStore } from './memory.js'
import type { RedisStore } from './redis.js'
import { type CallKind, type Failure, RedisGate, type StoreLogger } from './redis-gate.js'
import { ClusterClient } from './redis-client.js'
import { Reconciler } from './reconciler.js'
import { JobNotices } from './notices.js'

export type { StoreLogger }

export interface RedisTopology {
  kind: 'single' | 'cluster'
  shards: number
  failing_nodes: string[]
}
export { StoreUnavailableError }

export interface FallbackJobStoreOptions {
  memory: MemoryJobStore
  /** Absent when REDIS_URL is not set: the store is the Map alone. */
  redis?: RedisStore
  breakerMs: number
  /**
   * While Redis is unreachable, how long a read of a job this process has no copy of waits for
   * Redis to come back before giving up (a Redis restart then costs a poll latency, not an error).
   */
  readWaitMs?: number
  /**
   * With Redis: for this long after a job id was issued (ids carry their creation time), a job
   * no store holds is answered "not visible yet" instead of "not found": the replica that
   * created it may be cut off from Redis (default 300000 ms).
   */
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
}

const LOCAL_WINDOWS_MAX = 10_000
const TRUSTED_MAX = 100_000

/**
 * The store every route and the runner use; its rules, each in one place:
 * - Redis is the one authority for every job it has seen: such a job is run, taken over,
 *   retried, cancelled and deleted only through Redis. While Redis cannot be reached, this
 *   process answers reads from its copies and refuses to change those jobs.
 * - Jobs created while Redis cannot be reached live here (the reconciler's ledger): those whose
 *   create never reached Redis may run here; all are handed to Redis when it answers again.
 * - Reads never go back: a copy newer than Redis's record (Redis lost or rolled back data) is
 *   answered and put back into Redis; a final copy wins over an unfinished record.
 * - Redis that answers but refuses writes (full, read-only, CROSSSLOT) makes creates fail with
 *   503 instead of accepting jobs no other replica could see.
 */
export class FallbackJobStore implements JobStore, JobEventLog, WebhookOutbox {
  readonly #memory: MemoryJobStore
  readonly #localEvents: LocalEventLog
  readonly #gate: RedisGate | undefined
  readonly #reconciler: Reconciler | undefined
  readonly #readWaitMs: number
  readonly #shuttingDown = new AbortController()
  readonly #visibilityGraceMs: number
  readonly #onFallback: FallbackJobStoreOptions['onFallback']
  /** Rate-limit windows counted here while Redis cannot be (bounded, oldest dropped first). */
  readonly #localWindows = new Map<string, { count: number, endsAt: number }>()
  /** Idempotency claims made here while Redis cannot hold them (bounded, oldest dropped first). */
  readonly #localClaims = new Map<string, { value: string, expiresAt: number }>()
  /**
   * Jobs whose final copy here is known to be current: a final record changes only by a
   * webhook amendment or a delete, and either publishes a notice that drops the id from here.
   * Reads of them need no Redis round trip while notices arrive.
   */
  readonly #trusted = new Map<string, true>()
  /** Changes of records, for readers that wait for them (event streams, long polls). */
  readonly notices: JobNotices

  constructor (options: FallbackJobStoreOptions) {
    this.#memory = options.memory
    this.#localEvents = options.events ?? new LocalEventLog({ maxEvents: 500, maxJobs: 10_000, ttlSeconds: 86_400 })
    this.#readWaitMs = options.readWaitMs ?? 0
    this.#visibilityGraceMs = options.visibilityGraceMs ?? 300_000
    this.#onFallback = options.onFallback
    const redis = options.redis
    this.notices = new JobNotices(redis === undefined)
    this.notices.onNotice((notice) => {
      const copy = this.#memory.peek(notice.id)
      if (copy !== null && copy.version >= notice.version && notice.status !== 'deleted') return
      this.#trusted.delete(notice.id)
      if (notice.status === 'deleted') void this.#memory.delete(notice.id)
    })
    this.notices.onResync(() => this.#trusted.clear())
    if (redis === undefined) return
    this.#gate = new RedisGate(redis, { breakerMs: options.breakerMs, logger: options.logger, onRecovered: () => { void this.#reconciler?.syncAll() } })
    const reconciler = new Reconciler({ gate: this.#gate, memory: this.#memory, logger: options.logger, checkEveryMs: options.reconcileEveryMs, holdMs: options.reseedHoldMs })
    this.#reconciler = reconciler
    redis.client.on('ready', () => {
      this.#gate?.connected()
      void reconciler.reconnected()
    })
    reconciler.start()
  }

  get redisConfigured (): boolean {
    return this.#gate !== undefined
  }

  /** Where calls go right now. */
  get mode (): 'redis' | 'memory' {
    return this.#gate?.reachable === true ? 'redis' : 'memory'
  }

  get lastRedisError (): string | null {
    return this.#gate?.lastError ?? null
  }

  /** Why Redis refuses writes right now, or null. */
  get writesRefused (): string | null {
    return this.#gate?.writesRefused ?? null
  }

  get memoryPolicy (): string | null {
    return this.#reconciler?.memoryPolicy ?? null
  }

  get recovering (): boolean {
    return this.#reconciler?.recovering ?? false
  }

  /** What Redis is: one server or a Cluster, the shards jobs are spread over, the nodes failing now. */
  get topology (): RedisTopology {
    const redis = this.#gate?.redis
    const shards = redis?.shardCount ?? 1
    if (redis?.client instanceof ClusterClient) return { kind: 'cluster', shards, failing_nodes: redis.client.failingNodes }
    return { kind: 'single', shards, failing_nodes: [] }
  }

  /** Connection errors reported by the client (not by a call) also show in /health. */
  noteRedisError (err: Error): void {
    this.#gate?.noteError(err)
  }

  /** Jobs created here that Redis does not hold yet. */
  get unsyncedCount (): number {
    return this.#reconciler?.ledger.size ?? 0
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
  }

  /** Hands every job created here during an outage to Redis (also done on its own when Redis answers). */
  async syncToRedis (): Promise<void> {
    await this.#reconciler?.syncAll()
  }

  /** One reconciler pass now: the epoch check and the hand-over (tests; a timer runs it every second). */
  async reconcile (): Promise<void> {
    await this.#reconciler?.tick()
  }

  /**
   * Counts a request for rate limiting: in Redis, so replicas share the budget; in this process
   * when Redis is not configured or down (each replica then enforces the limit on its own).
   */
  async countInWindow (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    const remote = await this.#call((redis) => redis.countInWindow(key, windowMs))
    if (remote.ok) return remote.value
    const now = Date.now()
    let window = this.#localWindows.get(key)
    if (window === undefined || window.endsAt <= now) {
      if (this.#localWindows.size >= LOCAL_WINDOWS_MAX) dropOldest(this.#localWindows, 1)
      window = { count: 0, endsAt: now + windowMs }
      this.#localWindows.delete(key)
      this.#localWindows.set(key, window)
    }
    window.count++
    return { count: window.count, ttlMs: window.endsAt - now }
  }

  /**
   * Claims `key` for one request (idempotency keys): returns null when this call claimed it, or
   * the value the first claimer stored. In Redis (SET NX), so replicas agree; in this process when
   * Redis is not configured or down.
   */
  async claimOnce (key: string, value: string, ttlSeconds: number): Promise<string | null> {
    const remote = await this.#call((redis) => redis.claimOnce(key, value, ttlSeconds), 'write')
    if (remote.ok) return remote.value
    if (remote.failure === 'refused') throw new StoreUnavailableError(`Redis refuses writes (${remote.cause})`)
    const now = Date.now()
    const held = this.#localClaims.get(key)
    if (held !== undefined && held.expiresAt > now) return held.value
    if (this.#localClaims.size >= LOCAL_WINDOWS_MAX) dropOldest(this.#localClaims, 1)
    this.#localClaims.set(key, { value, expiresAt: now + ttlSeconds * 1000 })
    return null
  }

  async releaseClaim (key: string): Promise<void> {
    this.#localClaims.delete(key)
    await this.#call((redis) => redis.releaseClaim(key), 'write')
  }

  /** Round-trip time to Redis in ms; throws when it is not configured or not answering. */
  async pingRedis (): Promise<number> {
    const gate = this.#gate
    if (gate === undefined) throw new Error('Redis is not configured')
    if (!gate.redis.client.isReady) throw new Error(gate.lastError ?? 'Redis is not connected')
    return await gate.redis.ping()
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
    const local = this.#memory.peek(id)
    const gate = this.#gate
    const reconciler = this.#reconciler
    if (gate === undefined || reconciler === undefined) return { job: local, absenceConfirmed: true }
    if (local !== null && this.#trusted.has(id) && this.notices.live && !reconciler.recovering) {
      return { job: local, absenceConfirmed: !issuedWithin(id, this.#visibilityGraceMs) }
    }
    // Without Redis, a copy answers only what nothing can contradict: a final state, or a job
    // this process owns. An unfinished job's copy may be behind what a client saw elsewhere.
    const answerable = local !== null && (isFinal(local.status) || reconciler.ledger.has(id))
    let remote = await gate.call((redis) => redis.read(id))
    if (!remote.ok && !answerable) {
      // Give a restarting Redis a moment rather than fail the read.
      const deadline = Date.now() + this.#readWaitMs
      const shuttingDown = this.#shuttingDown.signal
      while (!remote.ok && Date.now() < deadline && !shuttingDown.aborted) {
        await gate.backWithin(deadline - Date.now(), shuttingDown)
        await sleep(Math.max(0, Math.min(50, deadline - Date.now())))
        if (shuttingDown.aborted) break
        remote = await gate.call((redis) => redis.read(id))
      }
    }
    if (!remote.ok) {
      if (!answerable) {
        if (this.#shuttingDown.signal.aborted) throw new StoreUnavailableError('This replica is shutting down and cannot reach the job store (Redis) for this job')
        throw new StoreUnavailableError(local === null
          ? 'The job store (Redis) is unreachable and this process has no copy of the job'
          : 'The job store (Redis) is unreachable and this process\'s copy of the running job may be behind')
      }
      this.#onFallback?.('read')
      return { job: local, absenceConfirmed: false }
    }
    const { job, deleted, epoch } = remote.value
    reconciler.observeEpoch(epoch)
    const certain = !reconciler.recovering && !issuedWithin(id, this.#visibilityGraceMs)
    if (deleted) {
      await this.#forget(id)
      return { job: null, absenceConfirmed: true }
    }
    const localOnly = reconciler.ledger.get(id)
    if (job === null) {
      if (local === null) return { job: null, absenceConfirmed: certain }
      // Redis lost a record this process holds (it never answers a confident 404 for it): put it back.
      if (localOnly === undefined) reconciler.repair(local)
      return { job: local, absenceConfirmed: false }
    }
    if (localOnly?.kind === 'unknown') reconciler.ledger.delete(id)
    else if (localOnly !== undefined) return { job: newest(local, job), absenceConfirmed: false }
    if (local !== null && (local.version > job.version || (isFinal(local.status) && !isFinal(job.status)))) {
      // Redis went back (lost or rolled-back data): answer what was answered before, and repair.
      reconciler.repair(local)
      return { job: local, absenceConfirmed: false }
    }
    this.#adopt(job)
    return { job, absenceConfirmed: certain }
  }

  async put (job: StoredJob, expectedVersion: number, options: PutOptions = {}): Promise<PutResult> {
    const gate = this.#gate
    if (gate === undefined) return await this.#putHere(job, expectedVersion, options)
    const id = job.job_id
    const reconciler = this.#reconciler as Reconciler
    const localOnly = reconciler.ledger.get(id)
    if (localOnly !== undefined && !(gate.reachable && await reconciler.syncOne(id))) {
      if (localOnly.kind === 'unseen') return await this.#putHere(job, expectedVersion, options)
      return unavailable('no', 'the job was created while Redis was out of reach and is not in Redis yet')
    }
    // Jobs created here during an outage are claimed first (see claim): a write claims no next
    // jobs from Redis while any wait here.
    if (options.claimNext !== undefined && await this.#memory.queueDepth() > 0) options = { ...options, claimNext: undefined }
    const remote = await gate.call((redis) => redis.put(job, expectedVersion, options), 'record')
    if (remote.ok) {
      const result = remote.value
      if (result.ok) this.#adopt(result.job)
      else if (result.reason !== 'unavailable' && result.current !== null) this.#adopt(result.current)
      return result
    }
    if (expectedVersion !== 0) return unavailable(remote.failure === 'unknown' ? 'unknown' : 'no', remote.cause)
    if (remote.failure === 'refused') throw new StoreUnavailableError(`Redis refuses writes (${remote.cause}), so the job cannot be stored`)
    // A create Redis could not take: held here. One that surely never reached Redis is queued
    // here; one that may have (no answer came) waits for Redis, so it can never run twice.
    const created = await this.#putHere(job, 0, remote.failure === 'unsent' ? options : { ...options, enqueue: undefined })
    if (!created.ok) return created
    reconciler.ledger.set(id, remote.failure === 'unsent' ? { kind: 'unseen', base: 0 } : { kind: 'unknown' })
    this.#onFallback?.('write')
    return created
  }

  /** Redis's due deliveries, and those of jobs held here. */
  async claimWebhooks (leaseMs: number, limit: number): Promise<string[]> {
    const local = await this.#memory.claimWebhooks(leaseMs, limit)
    if (local.length >= limit) return local
    const remote = await this.#call((redis) => redis.claimWebhooks(leaseMs, limit - local.length), 'write')
    return remote.ok ? [...local, ...remote.value] : local
  }

  async scheduleWebhook (id: string, delayMs: number | null): Promise<void> {
    if (this.#isLocal(id)) await this.#memory.scheduleWebhook(id, delayMs)
    else await this.#call((redis) => redis.scheduleWebhook(id, delayMs), 'write')
  }

  /** From Redis's stream when Redis answers for the job; from this process's log otherwise. */
  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    if (this.#isLocal(id)) return await this.#localEvents.events(id, afterId, limit)
    const remote = await this.#call((redis) => redis.events(id, afterId, limit))
    return remote.ok ? remote.value : await this.#localEvents.events(id, afterId, limit)
  }

  async delete (id: string): Promise<boolean> {
    const gate = this.#gate
    if (gate === undefined || this.#reconciler?.ledger.get(id)?.kind === 'unseen') return await this.#forget(id)
    const remote = await gate.call((redis) => redis.delete(id), 'record')
    if (!remote.ok) throw new StoreUnavailableError(`The job cannot be deleted while Redis cannot store the change (${remote.cause})`)
    return await this.#forget(id) || remote.value
  }

  async list (query: ListQuery): Promise<ListPage> {
    const remote = await this.#call((redis) => redis.list(query))
    if (!remote.ok) {
      if (this.#gate !== undefined) this.#onFallback?.('read')
      return await this.#memory.list(query)
    }
    const ledger = this.#reconciler?.ledger
    if (ledger === undefined || ledger.size === 0) return remote.value
    // Merge in what only this process holds; for jobs on both sides keep the newer record.
    const local = await this.#memory.list(query, (id) => ledger.has(id))
    const byId = new Map<string, StoredJob>()
    for (const job of [...remote.value.jobs, ...local.jobs]) byId.set(job.job_id, newest(byId.get(job.job_id) ?? null, job))
    const merged = [...byId.values()].filter((job) => matchesQuery(job, query)).sort(compareNewestFirst)
    return {
      jobs: merged.slice(0, query.limit),
      hasMore: remote.value.hasMore || local.hasMore || merged.length > query.limit
    }
  }

  /** Jobs created here during an outage first, then Redis's queue. */
  async claim (leaseMs: number, limit: number, start?: ClaimStart): Promise<Claim[]> {
    const local = await this.#memory.claim(leaseMs, limit)
    if (local.length === limit && limit > 0) return local
    const remote = await this.#call((redis) => redis.claim(leaseMs, limit - local.length, start), 'write')
    return remote.ok ? [...local, ...remote.value] : local
  }

  async renewLease (id: string, fence: string, leaseMs: number): Promise<LeaseRenewal> {
    if (this.#isLocal(id)) return await this.#memory.renewLease(id, fence, leaseMs)
    const remote = await this.#call((redis) => redis.renewLease(id, fence, leaseMs), 'write')
    return remote.ok ? remote.value : 'unavailable'
  }

  async expiredLeases (limit: number): Promise<string[]> {
    const local = await this.#memory.expiredLeases(limit)
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

  /** A copy of what Redis holds; a final one is answered without Redis until a notice says otherwise. */
  #adopt (job: StoredJob): void {
    this.#memory.adopt(job)
    if (!isFinal(job.status) || !this.notices.live) return
    if (this.#trusted.size >= TRUSTED_MAX) dropOldest(this.#trusted, TRUSTED_MAX / 100)
    this.#trusted.set(job.job_id, true)
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

  async #forget (id: string): Promise<boolean> {
    this.#localEvents.delete(id)
    this.#reconciler?.ledger.delete(id)
    this.#trusted.delete(id)
    const held = await this.#memory.delete(id)
    if (held) this.notices.emit({ id, version: 0, status: 'deleted' })
    return held
  }

  async #call<T> (call: (redis: RedisStore) => Promise<T>, kind: CallKind = 'read'): Promise<{ ok: true, value: T } | { ok: false, failure: Failure | 'none', cause: string }> {
    if (this.#gate === undefined) return { ok: false, failure: 'none', cause: 'Redis is not configured' }
    return await this.#gate.call(call, kind)
  }
}

function unavailable (applied: 'no' | 'unknown', cause: string): PutResult {
  return { ok: false, reason: 'unavailable', applied, cause }
}

function newest (a: StoredJob | null, b: StoredJob): StoredJob {
  return a === null || b.version > a.version ? b : a
}
