import { setTimeout as sleep } from 'node:timers/promises'
import { dropOldest } from './bounded.js'
import { CircuitBreaker } from './breaker.js'
import {
  type Enqueue, type JobStore, type PutOptions, type WebhookOutbox, type ListPage, type ListQuery, type PutResult, type QueueStats, type StoredJob,
  compareNewestFirst, matchesQuery
} from './job-store.js'
import { type JobEvent, type JobEventLog, LocalEventLog } from './job-events.js'
import type { MemoryJobStore } from './memory.js'
import type { RedisJobStore } from './redis.js'

export interface StoreLogger {
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
}

export interface FallbackJobStoreOptions {
  memory: MemoryJobStore
  /** Absent when REDIS_URL is not set: the store is the Map alone. */
  redis?: RedisJobStore
  breakerMs: number
  /**
   * While Redis is unreachable, how long a read of a job this process has no copy of waits for
   * Redis to come back before giving up (a Redis restart then costs a poll latency, not an error).
   */
  readWaitMs?: number
  logger?: StoreLogger
  /** Events of jobs written only here (no Redis, or an outage); default: 500 per job, as many jobs as the Map. */
  events?: LocalEventLog
  /** Told each time the Map serves a read or takes a write because Redis could not (Redis configured). */
  onFallback?: (operation: 'read' | 'write') => void
}

/** Redis is configured but unreachable, and the Map has no copy of the job asked for. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError'
}

const LOCAL_WINDOWS_MAX = 10_000

type Attempt<T> = { ok: true, value: T } | { ok: false }
const SKIPPED: Attempt<never> = { ok: false }

/** A change made only in the Map: an upsert from Redis's `base` version, or a delete. */
interface Unsynced { op: 'upsert' | 'delete', base: number }

/**
 * The store every route and the runner use. Redis first; when Redis is not configured, not
 * ready, failing or past its deadline, the in-memory store answers at once. The Map also keeps
 * copies of the jobs this process writes and reads, so an outage hides none of them. Changes
 * that reach only the Map are remembered with the Redis version they started from, and copied
 * to Redis when it is back unless Redis's record moved on meanwhile (then Redis wins).
 */
export class FallbackJobStore implements JobStore, JobEventLog, WebhookOutbox {
  readonly #memory: MemoryJobStore
  readonly #localEvents: LocalEventLog
  readonly #redis: RedisJobStore | undefined
  readonly #breaker: CircuitBreaker
  readonly #logger: StoreLogger | undefined
  readonly #readWaitMs: number
  readonly #onFallback: FallbackJobStoreOptions['onFallback']
  readonly #unsynced = new Map<string, Unsynced>()
  /** Rate-limit windows counted here while Redis cannot be (bounded, oldest dropped first). */
  readonly #localWindows = new Map<string, { count: number, endsAt: number }>()
  /** Idempotency claims made here while Redis cannot hold them (bounded, oldest dropped first). */
  readonly #localClaims = new Map<string, { value: string, expiresAt: number }>()
  #syncing: Promise<void> | null = null
  #lastError: string | null = null

  constructor (options: FallbackJobStoreOptions) {
    this.#memory = options.memory
    this.#localEvents = options.events ?? new LocalEventLog({ maxEvents: 500, maxJobs: 10_000, ttlSeconds: 86_400 })
    this.#redis = options.redis
    this.#breaker = new CircuitBreaker(options.breakerMs)
    this.#logger = options.logger
    this.#readWaitMs = options.readWaitMs ?? 0
    this.#onFallback = options.onFallback
    this.#redis?.client.on('ready', () => {
      this.#lastError = null
      this.#breaker.succeed()
      void this.syncToRedis()
    })
  }

  get redisConfigured (): boolean {
    return this.#redis !== undefined
  }

  /** Where calls go right now. */
  get mode (): 'redis' | 'memory' {
    return this.#redis !== undefined && this.#redis.client.isReady && !this.#breaker.isOpen ? 'redis' : 'memory'
  }

  get lastRedisError (): string | null {
    return this.#lastError
  }

  /** Connection errors reported by the client (not by a call) also show in /health. */
  noteRedisError (err: Error): void {
    this.#lastError = err.message || err.name
  }

  get unsyncedCount (): number {
    return this.#unsynced.size
  }

  get memory (): MemoryJobStore {
    return this.#memory
  }

  /**
   * Counts a request for rate limiting: in Redis, so replicas share the budget; in this process
   * when Redis is not configured or down (each replica then enforces the limit on its own).
   */
  async countInWindow (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    const remote = await this.#attempt((redis) => redis.countInWindow(key, windowMs))
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
    const remote = await this.#attempt((redis) => redis.claimOnce(key, value, ttlSeconds))
    if (remote.ok) return remote.value
    const now = Date.now()
    const held = this.#localClaims.get(key)
    if (held !== undefined && held.expiresAt > now) return held.value
    if (this.#localClaims.size >= LOCAL_WINDOWS_MAX) dropOldest(this.#localClaims, 1)
    this.#localClaims.set(key, { value, expiresAt: now + ttlSeconds * 1000 })
    return null
  }

  async releaseClaim (key: string): Promise<void> {
    this.#localClaims.delete(key)
    await this.#attempt((redis) => redis.releaseClaim(key))
  }

  /** Round-trip time to Redis in ms; throws when it is not configured or not answering. */
  async pingRedis (): Promise<number> {
    if (this.#redis === undefined) throw new Error('Redis is not configured')
    if (!this.#redis.client.isReady) throw new Error(this.#lastError ?? 'Redis is not connected')
    return await this.#redis.ping()
  }

  async get (id: string): Promise<StoredJob | null> {
    const local = this.#memory.peek(id)
    let remote = await this.#attempt((redis) => redis.get(id))
    if (!remote.ok && local === null && this.#redis !== undefined) {
      // Nothing to answer from: give a restarting Redis a moment rather than fail the read.
      const deadline = Date.now() + this.#readWaitMs
      while (!remote.ok && Date.now() < deadline) {
        await this.#redisBackWithin(deadline - Date.now())
        await sleep(Math.max(0, Math.min(50, deadline - Date.now())))
        remote = await this.#attempt((redis) => redis.get(id))
      }
    }
    if (!remote.ok) {
      if (local === null && this.#redis !== undefined) {
        throw new StoreUnavailableError('The job store (Redis) is unreachable and this process has no copy of the job')
      }
      if (this.#redis !== undefined) this.#onFallback?.('read')
      return local
    }
    // Redis is the authority for jobs it has seen every change of; keep a copy for outages.
    if (!this.#unsynced.has(id)) {
      if (remote.value !== null) this.#memory.adopt(remote.value)
      return remote.value
    }
    return newest(remote.value, local)
  }

  /** The copy this process holds (it wrote or read the job), else a read: saves a runner the GET of every job it created. */
  async readForUpdate (id: string): Promise<StoredJob | null> {
    return this.#memory.peek(id) ?? await this.get(id)
  }

  async put (job: StoredJob, expectedVersion: number, enqueue?: Enqueue, options?: PutOptions): Promise<PutResult> {
    const id = job.job_id
    const remote = await this.#attempt(async (redis) => {
      const result = await redis.put(job, expectedVersion, enqueue, options)
      // Redis is behind the Map for this job: copy the Map's record over, then try again.
      if (!result.ok && this.#unsynced.has(id) && await this.#syncOne(redis, id)) {
        return await redis.put(job, expectedVersion, enqueue, options)
      }
      return result
    })
    if (remote.ok) {
      if (remote.value.ok) this.#memory.adopt(remote.value.job)
      return remote.value
    }
    const held = this.#memory.peek(id)
    const result = held === null && expectedVersion !== 0
      ? this.#memory.putUnseen(job, expectedVersion, enqueue)
      : await this.#memory.put(job, expectedVersion, enqueue, options)
    if (result.ok) this.#localEvents.append(result.job, held?.status ?? null)
    if (!result.ok || this.#redis === undefined) return result
    this.#onFallback?.('write')
    if (!this.#unsynced.has(id)) this.#unsynced.set(id, { op: 'upsert', base: expectedVersion })
    return { ...result, authoritative: false }
  }

  /** Redis's due deliveries while Redis answers; those of jobs written here during an outage otherwise. */
  async claimWebhooks (nowMs: number, leaseUntilMs: number, limit: number): Promise<string[]> {
    const remote = await this.#attempt((redis) => redis.claimWebhooks(nowMs, leaseUntilMs, limit))
    return remote.ok ? remote.value : await this.#memory.claimWebhooks(nowMs, leaseUntilMs, limit)
  }

  async scheduleWebhook (id: string, atMs: number | null): Promise<void> {
    await this.#memory.scheduleWebhook(id, atMs)
    await this.#attempt((redis) => redis.scheduleWebhook(id, atMs))
  }

  /** From Redis's stream when Redis answers; from this process's log without Redis or during an outage. */
  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    const remote = await this.#attempt((redis) => redis.events(id, afterId, limit))
    return remote.ok ? remote.value : await this.#localEvents.events(id, afterId, limit)
  }

  async delete (id: string): Promise<boolean> {
    this.#localEvents.delete(id)
    const remote = await this.#attempt((redis) => redis.delete(id))
    const local = await this.#memory.delete(id)
    if (remote.ok) {
      this.#unsynced.delete(id)
      return remote.value || local
    }
    if (this.#redis !== undefined) this.#unsynced.set(id, { op: 'delete', base: 0 })
    return local
  }

  async list (query: ListQuery): Promise<ListPage> {
    const remote = await this.#attempt((redis) => redis.list(query))
    if (!remote.ok) {
      if (this.#redis !== undefined) this.#onFallback?.('read')
      return await this.#memory.list(query)
    }
    if (this.#unsynced.size === 0) return remote.value
    // Merge in what only the Map has; for jobs on both sides keep the newer record.
    const local = await this.#memory.list(query, (id) => this.#unsynced.get(id)?.op === 'upsert')
    const byId = new Map<string, StoredJob>()
    for (const job of [...remote.value.jobs, ...local.jobs]) {
      if (this.#unsynced.get(job.job_id)?.op === 'delete') continue
      const held = byId.get(job.job_id)
      byId.set(job.job_id, held === undefined ? job : newest(held, job) as StoredJob)
    }
    const merged = [...byId.values()]
      .filter((job) => matchesQuery(job, query))
      .sort(compareNewestFirst)
    return {
      jobs: merged.slice(0, query.limit),
      hasMore: remote.value.hasMore || local.hasMore || merged.length > query.limit
    }
  }

  /** Local work first (jobs created during an outage), then Redis's queue. */
  async claim (leaseUntilMs: number): Promise<string | null> {
    return (await this.claimMany(leaseUntilMs, 1))[0] ?? null
  }

  async claimMany (leaseUntilMs: number, limit: number): Promise<string[]> {
    const local = await this.#memory.claimMany(leaseUntilMs, limit)
    if (local.length === limit) return local
    const remote = await this.#attempt((redis) => redis.claimMany(leaseUntilMs, limit - local.length))
    return remote.ok ? [...local, ...remote.value] : local
  }

  async expiredLeases (nowMs: number, limit: number): Promise<string[]> {
    const local = await this.#memory.expiredLeases(nowMs, limit)
    const remote = await this.#attempt((redis) => redis.expiredLeases(nowMs, limit))
    return [...new Set([...local, ...(remote.ok ? remote.value : [])])].slice(0, limit)
  }

  async dropLease (id: string): Promise<void> {
    await this.#memory.dropLease(id)
    await this.#attempt((redis) => redis.dropLease(id))
  }

  async queueDepth (): Promise<number> {
    const remote = await this.#attempt((redis) => redis.queueDepth())
    return await this.#memory.queueDepth() + (remote.ok ? remote.value : 0)
  }

  async stats (nowMs: number): Promise<QueueStats> {
    const remote = await this.#attempt((redis) => redis.stats(nowMs))
    return remote.ok ? remote.value : await this.#memory.stats(nowMs)
  }

  /**
   * Copies every change made during an outage to Redis (with the remaining TTL) and replays
   * deletes. Pending jobs move to Redis's queue so any replica can run them. Safe to call at
   * any time; concurrent calls share one run.
   */
  async syncToRedis (): Promise<void> {
    const redis = this.#redis
    if (redis === undefined || this.#unsynced.size === 0) return
    this.#syncing ??= (async () => {
      let copied = 0
      try {
        for (const [id] of [...this.#unsynced]) {
          if (await this.#syncOne(redis, id)) copied++
        }
        if (copied > 0) this.#logger?.info({ copied }, 'copied jobs written during the Redis outage back to Redis')
      } catch (err) {
        this.#recordFailure(err)
      } finally {
        this.#syncing = null
      }
    })()
    await this.#syncing
  }

  /** Resolves true as soon as the client is connected again (at once if it is), false after `ms`. */
  async #redisBackWithin (ms: number): Promise<boolean> {
    const client = (this.#redis as RedisJobStore).client
    if (client.isReady) return true
    if (ms <= 0) return false
    return await new Promise((resolve) => {
      const done = (back: boolean): void => {
        clearTimeout(timer)
        client.off('ready', onReady)
        resolve(back)
      }
      const onReady = (): void => done(true)
      const timer = setTimeout(() => done(false), ms)
      client.on('ready', onReady)
    })
  }

  async #syncOne (redis: RedisJobStore, id: string): Promise<boolean> {
    const change = this.#unsynced.get(id)
    if (change?.op === 'delete') {
      await redis.delete(id)
      this.#unsynced.delete(id)
      return true
    }
    const job = this.#memory.peek(id)
    if (change === undefined || job === null) {
      this.#unsynced.delete(id)
      return false
    }
    const moveToRedisQueue = job.status === 'pending' && this.#memory.unqueue(id)
    let copied: boolean
    try {
      copied = await redis.sync(job, change.base, moveToRedisQueue)
    } catch (err) {
      if (moveToRedisQueue) this.#memory.enqueue(id, 'head')
      throw err
    }
    if (!copied) {
      this.#logger?.warn({ job_id: id, base_version: change.base }, 'Redis\'s record changed during the outage; it wins over this process\'s copy')
      this.#unsynced.delete(id)
      await this.#memory.delete(id)
      return false
    }
    // Only forget it if nothing rewrote the Map's copy meanwhile.
    if (this.#memory.peek(id)?.version === job.version) this.#unsynced.delete(id)
    return true
  }

  async #attempt<T> (call: (redis: RedisJobStore) => Promise<T>): Promise<Attempt<T>> {
    const redis = this.#redis
    if (redis === undefined) return SKIPPED
    if (!redis.client.isReady) {
      // The connection dropped: same as a failed call, so mode and logs say so at once.
      if (!this.#breaker.isOpen) this.#recordFailure(new Error(this.#lastError ?? 'Redis is not connected'))
      return SKIPPED
    }
    if (!this.#breaker.allow()) return SKIPPED
    try {
      const value = await call(redis)
      this.#lastError = null
      if (this.#breaker.succeed()) {
        this.#logger?.info({ unsynced: this.#unsynced.size }, 'Redis answers again; leaving fallback mode')
        void this.syncToRedis()
      }
      return { ok: true, value }
    } catch (err) {
      this.#recordFailure(err)
      return SKIPPED
    }
  }

  #recordFailure (err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    const wasOpen = this.#breaker.isOpen
    this.#breaker.fail()
    this.#lastError = message
    if (!wasOpen) this.#logger?.warn({ err: message }, 'Redis call failed; serving from the in-memory store')
  }
}

function newest (a: StoredJob | null, b: StoredJob | null): StoredJob | null {
  if (a === null) return b
  if (b === null) return a
  return b.version > a.version ? b : a
}
