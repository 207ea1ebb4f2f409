import { type JobStatusName, type StoredJob, isFinal } from '../schemas/job.js'
import { ServiceError } from '../errors.js'
import { isoTime } from '../iso-time.js'

export type { StoredJob }

/**
 * Where a written job goes: appended to the queue, first in line (handed back), or held for a
 * while (a retry after backoff) and then queued. Delays are durations: the store's own clock
 * (Redis's, for Redis) decides when they are due, never the writer's.
 */
export type Enqueue = 'tail' | 'head' | { retryInMs: number }

export interface PutOptions {
  enqueue?: Enqueue
  /**
   * Lets a write change a final record whose status it keeps (the webhook's delivery state);
   * without it, final records are never written again.
   */
  amendFinal?: boolean
  /**
   * The write belongs to the attempt that holds this claim (its fencing token): refused once the
   * claim moved on (taken over, cancelled, re-seeded). A write that leaves `processing` ends it.
   */
  fence?: string
  /** With `fence`, on a processing write: the lease now runs until the store's now + `leaseMs`. */
  leaseMs?: number
  /** A reaper's takeover: refused while the job's lease is alive by the store's clock; ends the claim. */
  takeover?: boolean
  /**
   * A write that ends a processing attempt may also claim the worker's next jobs in the same
   * step (`claimed` in the result), as `claim` would, except that due retries are left to
   * `claim`. A store may claim none (the runner then claims as usual).
   */
  claimNext?: { leaseMs: number, limit: number, start?: ClaimStart }
  /** A client's create: a store with an admission limit (Redis's memory) may refuse it as `full`. */
  admit?: boolean
  /** A client's create: refused as `quota` when its tenant already has this many jobs queued. */
  quota?: { maxQueued: number }
}

export type PutResult =
  /**
   * `authoritative`: the write reached the store other processes read (false: only this
   * process's fallback). `claimed`: the next jobs claimed with it (`claimNext`).
   */
  | { ok: true, job: StoredJob, authoritative: boolean, claimed?: Claim[] }
  /** The stored version moved on, the record is final, or it is gone (`current` null). */
  | { ok: false, reason: 'conflict', current: StoredJob | null }
  /** The claim named by `fence` is not the job's any more, or a takeover found the lease alive. */
  | { ok: false, reason: 'fenced', current: StoredJob | null }
  /**
   * The store that owns the job could not be reached or refused to write. `applied`: 'no' when
   * the write surely did not run, 'unknown' when it was sent and may have run (a timeout).
   */
  | {
    ok: false
    reason: 'unavailable'
    applied: 'no' | 'unknown'
    cause: string
    /**
     * Redis answered and refuses every writer alike (MISCONF: it cannot persist; OOM): nobody
     * else can write the job either, so a holder keeps its result and tries again.
     */
    refused?: boolean
    /** A create refused because Redis is too full for the jobs already accepted to finish. */
    full?: boolean
    /** A create refused because its tenant is at a quota (`quota` in PutOptions): which one, and its value. */
    quota?: { name: 'queued', limit: number }
  }

/**
 * A claimed job and the claim's fencing token. `job` is the record as stored when claimed:
 * pending, or (`started`) already processing, its attempt begun by the claim itself.
 */
export interface Claim {
  job: StoredJob
  fence: string
  started?: boolean
}

/**
 * Asks a claim to also begin each job's attempt in the same step, as the runner would: a store
 * may do it (Redis does, saving a round trip per job) or leave the job pending for the runner.
 */
export interface ClaimStart {
  worker: string
  /** A job past its last attempt is left pending: the runner fails it. */
  maxAttempts: number
  /** The attempt's first step (`current_step`). */
  step: string
}

/** A running job's progress, as its holder writes it (see JobStore.patchProgress). */
export interface ProgressPatch {
  progress: number
  step: string
  /** The write's time (the record's `updated_at`, and its event's). */
  now: number
}

/**
 * `written`: the record now holds the patch at `version` (unchanged when it held it already).
 * `stale`: the store holds something else than the claim's running record at the version
 * named (or cannot patch); the holder writes the whole record instead, and that write decides.
 * `unavailable`: as a whole write's `unavailable` (see PutResult).
 */
export type PatchResult = { outcome: 'written', version: number } | { outcome: 'stale' } | {
  /** Not written: the store could not be reached, went back in time, or (`refused`) refuses every writer alike. */
  outcome: 'unavailable'
  refused?: boolean
}

/** `job` with `patch` written over it at `version`. */
export function withProgress (job: StoredJob, patch: ProgressPatch, version: number): StoredJob {
  return { ...job, progress: patch.progress, current_step: patch.step, updated_at: isoTime(patch.now), version }
}

/** What a store without a cheaper way answers a progress patch: the holder writes the whole record. */
export const PATCH_STALE: PatchResult = Object.freeze({ outcome: 'stale' })

/** `refused`: Redis answered and refuses every writer alike (see PutResult's `refused`). */
export type LeaseRenewal = 'renewed' | 'lost' | 'unavailable' | 'refused'

/** Webhook deliveries due, shared by replicas: each due entry is claimed for a while, then settled. */
export interface WebhookOutbox {
  /** Ids whose delivery is due now, each held for `leaseMs` (then due again unless settled). */
  claimWebhooks (leaseMs: number, limit: number): Promise<string[]>
  /** Next attempt `delayMs` from now, or null: nothing more to deliver. */
  scheduleWebhook (id: string, delayMs: number | null): Promise<void>
}

/** A final record whose webhook is still to be delivered: the store queues it with the write. */
export function webhookDue (job: StoredJob): boolean {
  return isFinal(job.status) && job.webhook?.status === 'pending'
}

export interface ListCursor { createdMs: number, id: string }

export interface ListQuery {
  status?: JobStatusName
  /** Only jobs of this tenant. */
  owner?: string
  limit: number
  after?: ListCursor
}

export interface ListPage { jobs: StoredJob[], hasMore: boolean }

export interface QueueStats {
  /** Live records by status. */
  counts: Record<JobStatusName, number>
  /** Jobs waiting in the queue. */
  queued: number
  /** Failed attempts waiting for their retry time. */
  delayed: number
  /** When the job at the head of the queue was queued. */
  oldestQueuedAt: string | null
  /** Jobs with a live lease, by the worker holding it. */
  leasesByWorker: Record<string, number>
  /** Jobs queued and running (live lease) per tenant with any ('' is the open API's tenant). */
  byTenant: Record<string, TenantLoad>
}

export interface TenantLoad { queued: number, running: number }

/** A create refused because its tenant is at a quota. */
export function refusedByQuota (result: PutResult): result is Extract<PutResult, { reason: 'unavailable' }> & { quota: { name: 'queued', limit: number } } {
  // `in` narrows under scripts/tsconfig.json too, which checks the bench scripts without strict mode.
  return 'reason' in result && result.reason === 'unavailable' && 'quota' in result && result.quota !== undefined
}

/** Adds one tenant's load to a stats' `byTenant`. */
export function addTenantLoad (stats: QueueStats, tenant: string, load: Partial<TenantLoad>): void {
  const total = stats.byTenant[tenant] ?? { queued: 0, running: 0 }
  stats.byTenant[tenant] = { queued: total.queued + (load.queued ?? 0), running: total.running + (load.running ?? 0) }
}

/**
 * The storage contract shared by the Redis, in-memory and fallback stores.
 *
 * Every write is a compare-and-set: `put(job, expectedVersion)` succeeds only when the stored
 * version equals `expectedVersion` (0: the job must not exist yet) and the stored job is not in
 * a final state. The store sets `version`, `updated_at` and `expires_at` of what it writes.
 *
 * Claims, leases and retry times are decided by the store's own clock (Redis's `TIME` for
 * Redis), so hosts whose clocks disagree never disagree about who holds a job. A claim hands
 * out a fencing token; every write of that attempt carries it and is refused once the claim
 * moved on.
 */
export interface JobStore {
  get (id: string): Promise<StoredJob | null>
  put (job: StoredJob, expectedVersion: number, options?: PutOptions): Promise<PutResult>
  delete (id: string): Promise<boolean>
  /** Newest first (created_at, then id, descending). */
  list (query: ListQuery): Promise<ListPage>
  /**
   * Takes up to `limit` jobs to run in one step (retries that are due join the queue first; with
   * `limit` 0 that is all it does),
   * oldest first, each leased for `leaseMs` under a new fencing token. Ids popped whose record
   * is no longer pending (cancelled, deleted) are dropped: there is nothing to run.
   */
  claim (leaseMs: number, limit: number, start?: ClaimStart): Promise<Claim[]>
  /**
   * Writes a running job's progress and step for the claim `fence` over the record at
   * `version` (the holder's last write), without sending the record; the lease is left as it
   * is. A store without a cheaper way answers `stale`.
   */
  patchProgress (id: string, fence: string, version: number, patch: ProgressPatch): Promise<PatchResult>
  /** Extends the lease of the claim `fence` by `leaseMs` from the store's now. */
  renewLease (id: string, fence: string, leaseMs: number): Promise<LeaseRenewal>
  /** Ids whose lease ran out by the store's clock (their worker died or lost the store). */
  expiredLeases (limit: number): Promise<string[]>
  /** Forgets an expired lease whose job is gone or final. */
  dropLease (id: string): Promise<void>
  /**
   * Queues pending jobs found in no queue, retry set or lease (left so by lost index data), and
   * leases lost processing jobs as already expired so the reaper takes them over. Sweeps `limit`
   * records per call, resuming where the last call stopped; returns how many were repaired.
   */
  sweepOrphans (limit: number): Promise<number>
  queueDepth (): Promise<number>
  stats (): Promise<QueueStats>
}

/** The in-memory store is at MEMORY_MAX_JOBS with nothing it may evict, or Redis is past its admission limit. */
export class StoreFullError extends ServiceError {
  override name = 'StoreFullError'
  constructor (message: string) { super('store_full', message, { retryAfter: 5 }) }
}

/** Redis is configured but cannot answer for this job now: unreachable, or refusing writes. */
export class StoreUnavailableError extends ServiceError {
  override name = 'StoreUnavailableError'
  constructor (why: string) { super('store_unavailable', `${why}; retry shortly`, { retryAfter: 1 }) }
}

/** What a read knows: the record, or whether its absence is certain. */
export interface Lookup {
  job: StoredJob | null
  /**
   * Whether "no such job" would be certain for this id. false: a job no store holds may still
   * exist (created moments ago on a replica cut off from Redis, or Redis is being re-seeded).
   * Given for found jobs too, so another tenant's job can be answered exactly as a missing one.
   */
  absenceConfirmed: boolean
}

/** Stamps what every write stamps; the stored job lives `ttlSeconds` after this write. */
export function stampWrite (job: StoredJob, expectedVersion: number, ttlSeconds: number, now = Date.now()): StoredJob {
  return {
    ...job,
    version: expectedVersion + 1,
    updated_at: isoTime(now),
    expires_at: isoTime(now + ttlSeconds * 1000)
  }
}

/**
 * JSON with `version`, `status` and `attempts` first, so the Redis scripts read them with one
 * anchored pattern instead of decoding the whole record (reports can be large); then the fields
 * a start changes, then `owner` (before any nested object, so the scripts find the record's
 * own: `tenant_of`), and `attempt_history` last, so the claim script begins an attempt by
 * rewriting the head and appending to the tail (see `start_record` in lua/lib/job.lua). A
 * running record carries its claim's `fence` right after the head, where the progress script
 * checks it (lua/progress.lua); a record of any other status leaves it out. `last_event_id` is
 * left out: the scripts that write a job's events put it there themselves.
 */
export function serializeJob (job: StoredJob): string {
  const {
    version, status, attempts, updated_at: updatedAt, expires_at: expiresAt, worker, started_at: startedAt,
    next_attempt_at: nextAttemptAt, progress, error, current_step: currentStep, attempt_history: history, owner, fence, last_event_id: _lastEventId, ...rest
  } = job
  return JSON.stringify({
    version,
    status,
    attempts,
    updated_at: updatedAt,
    expires_at: expiresAt,
    worker,
    started_at: startedAt,
    next_attempt_at: nextAttemptAt,
    progress,
    error,
    current_step: currentStep,
    fence: status === 'processing' ? fence : undefined,
    owner,
    ...rest,
    attempt_history: history
  })
}

export function emptyCounts (): Record<JobStatusName, number> {
  return { pending: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 }
}

export function createdMs (job: StoredJob): number {
  return Date.parse(job.created_at)
}

/** Order of lists: newest created first; ties broken by id, descending. */
export function compareNewestFirst (a: StoredJob, b: StoredJob): number {
  return createdMs(b) - createdMs(a) || (a.job_id < b.job_id ? 1 : a.job_id > b.job_id ? -1 : 0)
}

/** Whether a listed job passes the query's status and owner filters. */
export function matchesQuery (job: StoredJob, query: ListQuery): boolean {
  return (query.status === undefined || job.status === query.status) && (query.owner === undefined || job.owner === query.owner)
}

export function isAfterCursor (ms: number, id: string, cursor: ListCursor | undefined): boolean {
  if (cursor === undefined) return true
  return ms < cursor.createdMs || (ms === cursor.createdMs && id < cursor.id)
}

export function encodeCursor (job: StoredJob): string {
  return Buffer.from(`${createdMs(job)}:${job.job_id}`).toString('base64url')
}

/** Returns null for anything that is not a cursor this service produced. */
export function decodeCursor (text: string): ListCursor | null {
  const match = /^(\d{1,16}):([0-9a-f-]{36})$/.exec(Buffer.from(text, 'base64url').toString('utf8'))
  if (match === null) return null
  return { createdMs: Number(match[1]), id: match[2] as string }
}
