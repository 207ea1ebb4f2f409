import type { Claim, ClaimStart, LeaseRenewal, ListPage, ListQuery, PatchResult, ProgressPatch, PutOptions, PutResult, QueueStats, StoredJob } from './job-store.js'
import { addTenantLoad, compareNewestFirst, emptyCounts, refusedByQuota } from './job-store.js'
import type { JobEvent } from '../schemas/events.js'
import { RedisKeys } from './keys.js'
import type { Roster } from './roster.js'
import { tenantOf } from './tenant-queues.js'
import type { RedisClient } from './redis-client.js'
import { RunnerConnections } from './runner-connections.js'
import { SilenceDeadline } from './silence-deadline.js'
import { type CacheBound, type EpochCheck, type NoticeChannels, RedisJobStore, type RedisJobStoreOptions, type RedisMemory, type RedisRead, type RedisStore, type SyncOptions, type WentBack } from './redis.js'

/**
 * The key prefix of shard `shard`: the prefix's hash tag holds the shard number (`dr:{0}:`,
 * `dr:{1}:`...), so each shard's keys share one Cluster slot and shards spread over the masters.
 */
export function shardPrefix (prefix: string, shard: number): string {
  return prefix.replace(/\{[^}]*\}/, `{${shard}}`)
}

/** FNV-1a: a job id (or a rate-limit key) to its shard, the same on every replica. */
export function shardOf (text: string, shards: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash % shards
}

/**
 * Jobs spread over N shards of one Redis (a Cluster: one hash tag per shard, so the shards land
 * on different masters), behind the single store's interface. A job lives on the shard its id
 * hashes to, so a read, a write or a poll goes to one shard. Claims go round the shards,
 * starting one further each time, so no shard's queue starves; lists merge the shards' pages in
 * the one global order (created time, then id), so a cursor needs no per-shard positions. Each
 * shard keeps its own epoch; the epoch this store reports joins them, so losing any shard's data
 * is noticed. Rate-limit and idempotency keys hash to a shard too.
 */
export class ShardedRedisJobStore implements RedisStore {
  readonly shards: RedisJobStore[]
  readonly #client: RedisClient
  /** Each shard's epoch as last read by `epoch()` (null: not read yet). */
  readonly #epochs: Array<string | null>
  #nextClaim = 0

  constructor (client: RedisClient, options: RedisJobStoreOptions & { shards: number }) {
    this.#client = client
    const prefix = (options.keys ?? new RedisKeys()).prefix
    // On one Redis the shards share its deadlines (a reply to any shard's call shows it answering,
    // so a call waiting behind another shard's burst is not failed) and the runner's connections,
    // which exist only there: one turn and one suspect state per connection, whichever shard's
    // call it carries. On a Cluster (sharded notices) the shards are on different masters, and one
    // master's replies say nothing of another's silence: each shard keeps deadlines of its own.
    const sharedDeadline = options.shardedNotices === true ? undefined : new SilenceDeadline(options.timeoutMs)
    const sharedRunners = new RunnerConnections(options.runnerClients ?? [], sharedDeadline ?? new SilenceDeadline(options.timeoutMs), options.runnerProbeMs)
    this.shards = Array.from({ length: options.shards }, (_v, shard) => new RedisJobStore(client, { ...options, keys: new RedisKeys(shardPrefix(prefix, shard)), sharedDeadline, sharedRunners }))
    this.#epochs = this.shards.map(() => null)
  }

  get client (): RedisClient {
    return this.#client
  }

  get shardCount (): number {
    return this.shards.length
  }

  get noticeChannels (): NoticeChannels {
    return { all: this.shards.map((shard) => shard.keys.notices), running: this.shards.map((shard) => shard.keys.runningNotices) }
  }

  #of (id: string): RedisJobStore {
    return this.shards[shardOf(id, this.shards.length)] as RedisJobStore
  }

  async get (id: string): Promise<StoredJob | null> {
    return await this.#of(id).get(id)
  }

  /** The record, and the epochs with this shard's as just read (null when this shard has none). */
  async read (id: string): Promise<RedisRead> {
    const shard = shardOf(id, this.shards.length)
    const read = await (this.shards[shard] as RedisJobStore).read(id)
    if (read.epoch === null) return read
    return { ...read, epoch: this.#epochs.map((known, i) => i === shard ? read.epoch : known ?? '?').join(',') }
  }

  /** A write claims no next jobs here (`claimNext`): they would all come from its own shard, and the round-robin claim keeps the shards fair. */
  async put (job: StoredJob, expectedVersion: number, options?: PutOptions): Promise<PutResult> {
    const shard = this.#of(job.job_id)
    const own = options?.claimNext === undefined ? options : { ...options, claimNext: undefined }
    if (own?.quota === undefined) return await shard.put(job, expectedVersion, own)
    // A tenant's jobs spread over the shards: its quota counts the queues of the others too
    // (read just before, so creates racing on other shards may pass it by a few).
    const tenant = tenantOf(job.owner)
    const counts = await Promise.all(this.shards.filter((other) => other !== shard).map(async (other) => await other.queuedOf(tenant)))
    const elsewhere = counts.reduce((a, b) => a + b, 0)
    const limit = own.quota.maxQueued
    const result = await shard.put(job, expectedVersion, { ...own, quota: { maxQueued: Math.max(0, limit - elsewhere) } })
    if (!refusedByQuota(result)) return result
    return { ...result, cause: `the tenant has ${limit} or more jobs queued; its quota is ${limit}`, quota: { name: 'queued', limit } }
  }

  async sync (job: StoredJob, options: SyncOptions): Promise<boolean> {
    return await this.#of(job.job_id).sync(job, options)
  }

  async delete (id: string): Promise<boolean> {
    return await this.#of(id).delete(id)
  }

  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    return await this.#of(id).events(id, afterId, limit)
  }

  async renewLease (id: string, fence: string, leaseMs: number): Promise<LeaseRenewal> {
    return await this.#of(id).renewLease(id, fence, leaseMs)
  }

  async patchProgress (id: string, fence: string, version: number, patch: ProgressPatch): Promise<PatchResult> {
    return await this.#of(id).patchProgress(id, fence, version, patch)
  }

  async dropLease (id: string): Promise<void> {
    await this.#of(id).dropLease(id)
  }

  async scheduleWebhook (id: string, delayMs: number | null): Promise<void> {
    await this.#of(id).scheduleWebhook(id, delayMs)
  }

  /** Round the shards from one further than last time, until `limit` claims are made. */
  async claim (leaseMs: number, limit: number, begin?: ClaimStart): Promise<Claim[]> {
    if (limit === 0) {
      // Only moves due retries into each shard's queue.
      await Promise.all(this.shards.map(async (shard) => await shard.claim(leaseMs, 0)))
      return []
    }
    const start = this.#nextClaim
    this.#nextClaim = (start + 1) % this.shards.length
    return await this.#roundRobin(start, limit, async (shard, left) => await shard.claim(leaseMs, left, begin))
  }

  async claimWebhooks (leaseMs: number, limit: number): Promise<string[]> {
    return await this.#roundRobin(0, limit, async (shard, left) => await shard.claimWebhooks(leaseMs, left))
  }

  async expiredLeases (limit: number): Promise<string[]> {
    return await this.#roundRobin(0, limit, async (shard, left) => await shard.expiredLeases(left))
  }

  async sweepOrphans (limit: number): Promise<number> {
    let repaired = 0
    for (const shard of this.shards) repaired += await shard.sweepOrphans(limit)
    return repaired
  }

  /** Each shard's page after the cursor, merged in the global order. */
  async list (query: ListQuery): Promise<ListPage> {
    const pages = await Promise.all(this.shards.map(async (shard) => await shard.list(query)))
    const merged = pages.flatMap((page) => page.jobs).sort(compareNewestFirst)
    return { jobs: merged.slice(0, query.limit), hasMore: merged.length > query.limit || pages.some((page) => page.hasMore) }
  }

  async queueDepth (): Promise<number> {
    const depths = await Promise.all(this.shards.map(async (shard) => await shard.queueDepth()))
    return depths.reduce((a, b) => a + b, 0)
  }

  async stats (): Promise<QueueStats> {
    const all = await Promise.all(this.shards.map(async (shard) => await shard.stats()))
    const total: QueueStats = { counts: emptyCounts(), queued: 0, delayed: 0, oldestQueuedAt: null, leasesByWorker: {}, byTenant: {} }
    for (const stats of all) {
      for (const [status, count] of Object.entries(stats.counts)) total.counts[status as keyof QueueStats['counts']] += count
      total.queued += stats.queued
      total.delayed += stats.delayed
      if (stats.oldestQueuedAt !== null && (total.oldestQueuedAt === null || stats.oldestQueuedAt < total.oldestQueuedAt)) total.oldestQueuedAt = stats.oldestQueuedAt
      for (const [worker, count] of Object.entries(stats.leasesByWorker)) total.leasesByWorker[worker] = (total.leasesByWorker[worker] ?? 0) + count
      for (const [tenant, load] of Object.entries(stats.byTenant)) addTenantLoad(total, tenant, load)
    }
    return total
  }

  /** Every shard's epoch check, joined: any shard losing its data or going back in time changes it. */
  async epoch (candidate: string, holdMs?: number): Promise<EpochCheck> {
    const read = await Promise.all(this.shards.map(async (shard) => await shard.epoch(candidate, holdMs)))
    read.forEach((one, i) => { this.#epochs[i] = one.epoch })
    return { epoch: read.map((one) => one.epoch).join(','), founded: read.some((one) => one.founded), wentBack: read.find((one) => one.wentBack !== null)?.wentBack ?? null }
  }

  /** Each shard keeps its own write counter; any going back is told. */
  onWentBack (listener: (wentBack: WentBack) => void): void {
    for (const shard of this.shards) shard.onWentBack(listener)
  }

  async memoryPolicy (): Promise<string | null> {
    // Each shard reads again what it trusts of maxmemory (see RedisJobStore.memoryPolicy); they share one Redis's policy.
    const policies = await Promise.all(this.shards.map(async (shard) => await shard.memoryPolicy()))
    return policies[0] ?? null
  }

  async memory (): Promise<RedisMemory> {
    return await (this.shards[0] as RedisJobStore).memory()
  }

  async countInWindow (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    return await this.#of(key).countInWindow(key, windowMs)
  }

  async claimOnce (key: string, value: string, ttlSeconds: number): Promise<string | null> {
    return await this.#of(key).claimOnce(key, value, ttlSeconds)
  }

  async releaseClaim (key: string): Promise<void> {
    await this.#of(key).releaseClaim(key)
  }

  async loadSteps (id: string): Promise<Map<string, string>> {
    return await this.#of(id).loadSteps(id)
  }

  async saveStep (id: string, fence: string, name: string, json: string): Promise<boolean> {
    return await this.#of(id).saveStep(id, fence, name, json)
  }

  async cacheGet (digest: string): Promise<string | null> {
    return await this.#of(digest).cacheGet(digest)
  }

  /** Each shard keeps its share of the bound: the entries spread evenly over the shards by digest. */
  async cacheSet (digest: string, value: string, ttlSeconds: number, bound: CacheBound): Promise<void> {
    const share = { ...bound, maxEntries: Math.max(1, Math.ceil(bound.maxEntries / this.shards.length)) }
    await this.#of(digest).cacheSet(digest, value, ttlSeconds, share)
  }

  /** The roster lives on the first shard: one place every replica writes and reads. */
  async heartbeat (replica: string, held: number, wallMs: number, graceMs: number, skewMs: number): Promise<Roster> {
    return await (this.shards[0] as RedisJobStore).heartbeat(replica, held, wallMs, graceMs, skewMs)
  }

  async leaveRoster (replica: string): Promise<void> {
    await (this.shards[0] as RedisJobStore).leaveRoster(replica)
  }

  async ping (): Promise<number> {
    return await (this.shards[0] as RedisJobStore).ping()
  }

  async #roundRobin<T> (start: number, limit: number, take: (shard: RedisJobStore, left: number) => Promise<T[]>): Promise<T[]> {
    const out: T[] = []
    for (let i = 0; i < this.shards.length && out.length < limit; i++) {
      out.push(...await take(this.shards[(start + i) % this.shards.length] as RedisJobStore, limit - out.length))
    }
    return out
  }
}
