import { randomBytes } from 'node:crypto'
import {
  type Claim, type JobStore, type LeaseRenewal, type PatchResult, type ProgressPatch, type Lookup, type PutOptions, type WebhookOutbox, type ListPage, type ListQuery, type PutResult, type QueueStats, type StoredJob,
  PATCH_STALE, StoreFullError, addTenantLoad, compareNewestFirst, createdMs, emptyCounts, isAfterCursor, matchesQuery, stampWrite, webhookDue, withProgress
} from './job-store.js'
import { isFinal } from '../schemas/job.js'
import { type RunningLimits, TenantQueues, runningLimitOf, tenantOf } from './tenant-queues.js'
import { withSharedOptions } from '../schemas/options.js'
import { dropOldest } from './bounded.js'

export interface MemoryJobStoreOptions {
  ttlSeconds: number
  /** Most records held; past it, expired then the oldest finished records are evicted. */
  maxJobs: number
  now?: () => number
  /** Per-tenant limits on jobs running at once (see RunningLimits); none without. */
  runningLimits?: RunningLimits
}

/**
 * Deleted ids remembered (up to this many; the oldest tenth goes when it is passed), so that a
 * reply read after the delete (its write ran before it) brings no copy of the job back; ids are
 * never reused, so an id past this bound is forgotten safely.
 */
const DELETED_KEPT = 10_000

/** `cached`: a copy of a record another store owns (the fallback's copy of Redis), evictable first. */
interface Entry { job: StoredJob, expiresAtMs: number, cached: boolean }

/** A claim held here: its fencing token and when its lease runs out (this process's clock). */
interface Lease { fence: string, untilMs: number }

/**
 * Jobs in a Map, with the same TTL, queue, claim, lease and retry rules as Redis and a hard
 * bound on size. The Map's insertion order is kept as "least recently written first" (every
 * write re-inserts, except a progress patch of a copy, which keeps its expiry and so its
 * place), which makes "evict the oldest finished record" a scan from the front.
 * One process owns it, so its own clock decides leases and retries.
 */
export class MemoryJobStore implements JobStore, WebhookOutbox {
  readonly #entries = new Map<string, Entry>()
  /** Recently deleted ids (see DELETED_KEPT), oldest first. */
  readonly #deleted = new Map<string, true>()
  /** Ids whose entry may be evicted (finished, or a cached copy), oldest write first (a progress patch is not one). */
  readonly #evictable = new Set<string>()
  readonly #queue = new TenantQueues()
  readonly #runningLimits: RunningLimits | undefined
  readonly #delayed = new Map<string, number>()
  readonly #leases = new Map<string, Lease>()
  /** Webhook deliveries due (ms), for jobs written here. */
  readonly #webhooksDue = new Map<string, number>()
  /** Each tenant's job ids: a tenant's list looks at its own jobs only. */
  readonly #byOwner = new Map<string, Set<string>>()
  readonly #ttlSeconds: number
  readonly #maxJobs: number
  readonly #evictBatch: number
  readonly #now: () => number
  /** Fences from here never equal Redis's (`r<n>`) or another process's. */
  readonly #fencePrefix = `m${randomBytes(4).toString('hex')}-`
  #fences = 0

  constructor (options: MemoryJobStoreOptions) {
    this.#ttlSeconds = options.ttlSeconds
    this.#maxJobs = options.maxJobs
    this.#evictBatch = Math.max(1, Math.floor(options.maxJobs / 100))
    this.#now = options.now ?? Date.now
    this.#runningLimits = options.runningLimits
  }

  get size (): number {
    return this.#entries.size
  }

  async get (id: string): Promise<StoredJob | null> {
    return this.peek(id)
  }

  /** One process owns every job here: what it does not hold does not exist. */
  async lookup (id: string): Promise<Lookup> {
    return { job: this.peek(id), absenceConfirmed: true }
  }

  /** Synchronous read, for the fallback store's "newest of both" merge. */
  peek (id: string): StoredJob | null {
    const entry = this.#entries.get(id)
    if (entry === undefined) return null
    if (entry.expiresAtMs <= this.#now()) {
      this.#drop(id)
      return null
    }
    return entry.job
  }

  /** Every live record held, oldest write first (the fallback store re-seeds Redis from them). */
  * records (): IterableIterator<StoredJob> {
    const now = this.#now()
    for (const entry of this.#entries.values()) if (entry.expiresAtMs > now) yield entry.job
  }

  async put (job: StoredJob, expectedVersion: number, options: PutOptions = {}): Promise<PutResult> {
    const id = job.job_id
    const current = this.peek(id)
    const frozen = current !== null && isFinal(current.status) && !(options.amendFinal === true && current.status === job.status)
    if (current === null ? expectedVersion !== 0 : current.version !== expectedVersion || frozen) {
      return { ok: false, reason: 'conflict', current }
    }
    const lease = this.#leases.get(id)
    if (options.fence !== undefined && lease?.fence !== options.fence) return { ok: false, reason: 'fenced', current }
    if (options.takeover === true && lease !== undefined && lease.untilMs > this.#now()) return { ok: false, reason: 'fenced', current }
    const quota = current === null ? this.#quotaReached(job, options) : null
    if (quota !== null) return quota
    const written = stampWrite(job, expectedVersion, this.#ttlSeconds, this.#now())
    this.#store(written, false)
    this.#index(written, options, lease)
    if (webhookDue(written) && !this.#webhooksDue.has(id)) this.#webhooksDue.set(id, this.#now())
    return { ok: true, job: written, authoritative: true }
  }

  /**
   * Keeps a copy of `job` as it is (version and expiry included) when it is newer than what
   * is held: the fallback store's copy of what Redis holds. A full store skips it, and so does
   * a job deleted here (a reply read after the delete, of a write that ran before it). Returns
   * whether a copy at least this new is held.
   */
  adopt (job: StoredJob): boolean {
    if (this.#deleted.has(job.job_id)) return false
    const current = this.peek(job.job_id)
    if (current !== null && current.version >= job.version) return true
    try {
      this.#store(job, true)
      return true
    } catch (err) {
      if (!(err instanceof StoreFullError)) throw err
      return false
    }
  }

  /**
   * Keeps the copy of a running job current after a progress write Redis took (`written`, the
   * version it wrote over `version`). A progress write keeps the record's expiry and status, so
   * the entry keeps its place in the expiry order and its indexes: only the record is replaced.
   */
  patchCopy (id: string, version: number, patch: ProgressPatch, written: number): void {
    const entry = this.#entries.get(id)
    if (entry === undefined || entry.job.version !== version || written === version) return
    entry.job = withProgress(entry.job, patch, written)
  }

  /** A create refused when its tenant already has `quota.maxQueued` jobs queued here. */
  #quotaReached (job: StoredJob, { quota }: PutOptions): PutResult | null {
    if (quota === undefined || this.#queue.queuedOf(tenantOf(job.owner)) < quota.maxQueued) return null
    return { ok: false, reason: 'unavailable', applied: 'no', cause: `the tenant has ${quota.maxQueued} jobs queued, its quota`, quota: { name: 'queued', limit: quota.maxQueued } }
  }

  /** Replaces the held record whatever its version (the fallback store's copy after Redis refused it). */
  replace (job: StoredJob): void {
    this.#drop(job.job_id)
    this.adopt(job)
  }

  /** Hands a job over to another store: drops its queue, retry, lease and webhook entries here, keeping the record as a copy. */
  release (id: string): void {
    this.unqueue(id)
    this.#delayed.delete(id)
    this.#leases.delete(id)
    this.#webhooksDue.delete(id)
    const entry = this.#entries.get(id)
    if (entry !== undefined) {
      entry.cached = true
      this.#evictable.add(id)
    }
  }

  /** The claim this store holds on a job (a job running here), with the time its lease has left. */
  claimOf (id: string): { fence: string, remainingMs: number } | null {
    const lease = this.#leases.get(id)
    return lease === undefined ? null : { fence: lease.fence, remainingMs: Math.max(0, lease.untilMs - this.#now()) }
  }

  /** Queues an id without writing its record (used to undo a failed hand-over to Redis). */
  enqueue (id: string, where: 'tail' | 'head'): void {
    this.#queue.add(id, tenantOf(this.peek(id)?.owner), where)
  }

  /** Takes an id out of the local queue; true when it was there. */
  unqueue (id: string): boolean {
    return this.#queue.remove(id)
  }

  async claimWebhooks (leaseMs: number, limit: number): Promise<string[]> {
    const now = this.#now()
    const due: string[] = []
    for (const [id, at] of this.#webhooksDue) {
      if (due.length === limit) break
      if (at > now) continue
      this.#webhooksDue.set(id, now + leaseMs)
      due.push(id)
    }
    return due
  }

  async scheduleWebhook (id: string, delayMs: number | null): Promise<void> {
    if (delayMs === null) this.#webhooksDue.delete(id)
    else this.#webhooksDue.set(id, this.#now() + delayMs)
  }

  async delete (id: string): Promise<boolean> {
    this.#deleted.set(id, true)
    if (this.#deleted.size > DELETED_KEPT) dropOldest(this.#deleted, DELETED_KEPT / 10)
    this.#webhooksDue.delete(id)
    this.unqueue(id)
    this.#delayed.delete(id)
    this.#leases.delete(id)
    const held = this.#entries.has(id)
    this.#drop(id)
    return held
  }

  /** `include` narrows the list to some ids (the fallback store lists only records Redis lacks). */
  async list (query: ListQuery, include?: (id: string) => boolean): Promise<ListPage> {
    const now = this.#now()
    const matches: StoredJob[] = []
    const candidates = query.owner === undefined
      ? this.#entries.values()
      : [...this.#byOwner.get(query.owner) ?? []].map((id) => this.#entries.get(id) as Entry)
    for (const { job, expiresAtMs } of candidates) {
      if (expiresAtMs <= now) continue
      if (include !== undefined && !include(job.job_id)) continue
      if (!matchesQuery(job, query)) continue
      if (!isAfterCursor(createdMs(job), job.job_id, query.after)) continue
      matches.push(job)
    }
    matches.sort(compareNewestFirst)
    return { jobs: matches.slice(0, query.limit), hasMore: matches.length > query.limit }
  }

  async claim (leaseMs: number, limit: number): Promise<Claim[]> {
    const now = this.#now()
    for (const [id, at] of this.#delayed) {
      if (at <= now) {
        this.#delayed.delete(id)
        this.enqueue(id, 'tail')
      }
    }
    const claims: Claim[] = []
    const running = this.#runningLimits === undefined ? null : this.#runningByTenant(now)
    const mayRun = (tenant: string): boolean => {
      const max = runningLimitOf(this.#runningLimits, tenant)
      return max === null || (running?.get(tenant) ?? 0) < max
    }
    while (claims.length < limit && this.#queue.size > 0) {
      const id = this.#queue.shift(mayRun)
      if (id === undefined) break
      const job = this.peek(id)
      if (job === null || job.status !== 'pending') continue
      const fence = `${this.#fencePrefix}${++this.#fences}`
      this.#leases.set(id, { fence, untilMs: now + leaseMs })
      claims.push({ job, fence })
      const tenant = tenantOf(job.owner)
      running?.set(tenant, (running.get(tenant) ?? 0) + 1)
    }
    return claims
  }

  /** Jobs with a live lease, per tenant. */
  #runningByTenant (now: number): Map<string, number> {
    const running = new Map<string, number>()
    for (const [id, lease] of this.#leases) {
      if (lease.untilMs <= now) continue
      const tenant = tenantOf(this.peek(id)?.owner)
      running.set(tenant, (running.get(tenant) ?? 0) + 1)
    }
    return running
  }

  /** A record in this process costs nothing to write whole: the holder does. */
  async patchProgress (): Promise<PatchResult> {
    return PATCH_STALE
  }

  async renewLease (id: string, fence: string, leaseMs: number): Promise<LeaseRenewal> {
    const lease = this.#leases.get(id)
    if (lease?.fence !== fence) return 'lost'
    lease.untilMs = this.#now() + leaseMs
    return 'renewed'
  }

  async expiredLeases (limit: number): Promise<string[]> {
    const now = this.#now()
    const expired: string[] = []
    for (const [id, lease] of this.#leases) {
      if (lease.untilMs <= now && expired.push(id) === limit) break
    }
    return expired
  }

  async dropLease (id: string): Promise<void> {
    const lease = this.#leases.get(id)
    if (lease !== undefined && lease.untilMs <= this.#now()) this.#leases.delete(id)
  }

  /** Nothing here can lose an index entry without losing the record: there is nothing to repair. */
  async sweepOrphans (): Promise<number> {
    return 0
  }

  async queueDepth (): Promise<number> {
    return this.#queue.size
  }

  async stats (): Promise<QueueStats> {
    const now = this.#now()
    const stats: QueueStats = { counts: emptyCounts(), queued: this.#queue.size, delayed: this.#delayed.size, oldestQueuedAt: null, leasesByWorker: {}, byTenant: {} }
    for (const { job, expiresAtMs } of this.#entries.values()) {
      if (expiresAtMs > now) stats.counts[job.status]++
    }
    for (const [tenant, queued] of this.#queue.byTenant()) addTenantLoad(stats, tenant, { queued })
    for (const head of this.#queue.heads()) {
      const queuedAt = this.peek(head)?.updated_at ?? null
      if (queuedAt !== null && (stats.oldestQueuedAt === null || queuedAt < stats.oldestQueuedAt)) stats.oldestQueuedAt = queuedAt
    }
    for (const [id, lease] of this.#leases) {
      const worker = this.peek(id)?.worker ?? null
      if (lease.untilMs > now && worker !== null) stats.leasesByWorker[worker] = (stats.leasesByWorker[worker] ?? 0) + 1
      if (lease.untilMs > now) addTenantLoad(stats, tenantOf(this.peek(id)?.owner), { running: 1 })
    }
    return stats
  }

  /** Drops expired records; called periodically so memory is returned even without writes. */
  sweep (): number {
    const now = this.#now()
    let dropped = 0
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAtMs <= now) {
        this.#drop(id)
        dropped++
      }
    }
    return dropped
  }

  #drop (id: string): void {
    const owner = this.#entries.get(id)?.job.owner
    this.#entries.delete(id)
    this.#evictable.delete(id)
    if (owner == null) return
    const ids = this.#byOwner.get(owner)
    ids?.delete(id)
    if (ids?.size === 0) this.#byOwner.delete(owner)
  }

  /** Keeps the queue, retry and lease entries in step with the record, as put.lua does in Redis. */
  #index (job: StoredJob, options: PutOptions, lease: Lease | undefined): void {
    const id = job.job_id
    if (job.status !== 'processing') this.#leases.delete(id)
    else if (lease !== undefined && options.fence !== undefined && options.leaseMs !== undefined) lease.untilMs = this.#now() + options.leaseMs
    const { enqueue } = options
    // Only pending jobs wait: a job that leaves pending (cancelled, claimed and started) leaves the queue.
    if (job.status !== 'pending') this.unqueue(id)
    if (typeof enqueue === 'object') this.#delayed.set(id, this.#now() + enqueue.retryInMs)
    else this.#delayed.delete(id)
    if (enqueue === 'tail' || enqueue === 'head') this.enqueue(id, enqueue)
  }

  #store (stored: StoredJob, cached: boolean): void {
    const job = withSharedOptions(stored)
    const id = job.job_id
    const expiresAtMs = Date.parse(job.expires_at)
    if (!this.#entries.delete(id) && this.#entries.size >= this.#maxJobs) this.#makeRoom()
    this.#entries.set(id, { job, expiresAtMs, cached })
    if (job.owner != null) {
      let ids = this.#byOwner.get(job.owner)
      if (ids === undefined) this.#byOwner.set(job.owner, ids = new Set())
      ids.add(id)
    }
    this.#evictable.delete(id)
    if (cached || isFinal(job.status)) this.#evictable.add(id)
  }

  /**
   * Evicts expired records, else the oldest records that are finished or cached copies. Every write
   * re-inserts its entry with a full TTL (a progress patch keeps both its expiry and its place), so
   * expired records are a prefix of the Map, and the evictable ids are kept in their own
   * insertion-ordered set: both steps are O(1) per write, amortized over a batch.
   */
  #makeRoom (): void {
    const now = this.#now()
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAtMs > now) break
      this.#drop(id)
    }
    if (this.#entries.size < this.#maxJobs) return
    // Evicted in batches of 1%: a Map or Set iterated from the front after many deletions first
    // skips their holes (measured at ~6 us per eviction at 10k records), so pay that once per
    // batch, not once per write.
    let evicted = 0
    for (const id of this.#evictable) {
      this.#drop(id)
      if (++evicted >= this.#evictBatch) break
    }
    if (evicted > 0) return
    throw new StoreFullError(`In-memory store is full: ${this.#maxJobs} jobs are pending or running`)
  }
}
