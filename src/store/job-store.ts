import type { JobStatusName, StoredJob } from '../schemas/job.js'
import { FINAL_STATUSES } from '../schemas/job.js'

export type { StoredJob }

/**
 * Where a written job goes: appended to the queue, first in line (handed back), or held
 * until a time (a retry after backoff) and then queued.
 */
export type Enqueue = 'tail' | 'head' | { retryAtMs: number }

export type PutResult =
  /** `authoritative`: the write reached the store other processes read (false: only this process's fallback). */
  | { ok: true, job: StoredJob, authoritative: boolean }
  /** `current` is what the store holds instead (null: the record is gone, e.g. expired). */
  | { ok: false, current: StoredJob | null }

export interface PutOptions {
  /**
   * Lets a write change a final record whose status it keeps (the webhook's delivery state);
   * without it, final records are never written again.
   */
  amendFinal?: boolean
}

/** Webhook deliveries due, shared by replicas: each due entry is claimed for a while, then settled. */
export interface WebhookOutbox {
  /** Ids whose delivery is due at `nowMs`, each held until `leaseUntilMs` (then due again unless settled). */
  claimWebhooks (nowMs: number, leaseUntilMs: number, limit: number): Promise<string[]>
  /** Next attempt at `atMs`, or null: nothing more to deliver. */
  scheduleWebhook (id: string, atMs: number | null): Promise<void>
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
}

/**
 * The storage contract shared by the Redis, in-memory and fallback stores.
 *
 * Every write is a compare-and-set: `put(job, expectedVersion)` succeeds only when the stored
 * version equals `expectedVersion` (0: the job must not exist yet) and the stored job is not in
 * a final state. The store sets `version`, `updated_at` and `expires_at` of what it writes.
 */
export interface JobStore {
  get (id: string): Promise<StoredJob | null>
  /**
   * A version of the job to start a compare-and-set write from: may be a copy this process holds
   * rather than the stored record. A stale copy costs nothing but a retry, since the write is
   * refused and answers with the current record.
   */
  readForUpdate (id: string): Promise<StoredJob | null>
  put (job: StoredJob, expectedVersion: number, enqueue?: Enqueue, options?: PutOptions): Promise<PutResult>
  delete (id: string): Promise<boolean>
  /** Newest first (created_at, then id, descending). */
  list (query: ListQuery): Promise<ListPage>
  /**
   * Takes the next job to run (retries that are due first join the queue), oldest first, and
   * registers a lease for it until `leaseUntilMs`; null when there is nothing to run.
   */
  claim (leaseUntilMs: number): Promise<string | null>
  /** `claim` for up to `limit` jobs in one step (one round trip): a runner fills all its free slots at once. */
  claimMany (leaseUntilMs: number, limit: number): Promise<string[]>
  /** Ids whose lease ran out before `nowMs` (their worker died or lost them). */
  expiredLeases (nowMs: number, limit: number): Promise<string[]>
  /** Forgets a lease entry (its job is gone, finished, or was never taken). */
  dropLease (id: string): Promise<void>
  queueDepth (): Promise<number>
  stats (nowMs: number): Promise<QueueStats>
}

export class StoreFullError extends Error {
  override name = 'StoreFullError'
}

export function isFinal (status: string): boolean {
  return FINAL_STATUSES.has(status)
}

/** Stamps what every write stamps; the stored job lives `ttlSeconds` after this write. */
export function stampWrite (job: StoredJob, expectedVersion: number, ttlSeconds: number, now = Date.now()): StoredJob {
  return {
    ...job,
    version: expectedVersion + 1,
    updated_at: new Date(now).toISOString(),
    expires_at: new Date(now + ttlSeconds * 1000).toISOString()
  }
}

/**
 * JSON with `version` and `status` first, so the Redis scripts can read both with one
 * anchored pattern instead of decoding the whole record (reports can be large).
 */
export function serializeJob (job: StoredJob): string {
  const { version, status, ...rest } = job
  return JSON.stringify({ version, status, ...rest })
}

/** The lease expiry to index for a job: only a processing job holds a lease. */
export function leaseExpiryMs (job: StoredJob): number | null {
  return job.status === 'processing' && job.lease_expires_at !== null ? Date.parse(job.lease_expires_at) : null
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
