import type { JobStatusName, StoredJob } from '../schemas/job.js'
import { FINAL_STATUSES } from '../schemas/job.js'

export type { StoredJob }

/** Where a written job goes in the pending queue: appended, or first in line (handed back). */
export type Enqueue = 'tail' | 'head'

export type PutResult =
  | { ok: true, job: StoredJob }
  /** `current` is what the store holds instead (null: the record is gone, e.g. expired). */
  | { ok: false, current: StoredJob | null }

export interface ListCursor { createdMs: number, id: string }

export interface ListQuery {
  status?: JobStatusName
  limit: number
  after?: ListCursor
}

export interface ListPage { jobs: StoredJob[], hasMore: boolean }

/**
 * The storage contract shared by the Redis, in-memory and fallback stores.
 *
 * Every write is a compare-and-set: `put(job, expectedVersion)` succeeds only when the stored
 * version equals `expectedVersion` (0: the job must not exist yet) and the stored job is not in
 * a final state. The store sets `version`, `updated_at` and `expires_at` of what it writes.
 */
export interface JobStore {
  get (id: string): Promise<StoredJob | null>
  put (job: StoredJob, expectedVersion: number, enqueue?: Enqueue): Promise<PutResult>
  delete (id: string): Promise<boolean>
  /** Newest first (created_at, then id, descending). */
  list (query: ListQuery): Promise<ListPage>
  /** Takes the next pending job id off the queue, oldest first; null when empty. */
  dequeue (): Promise<string | null>
  queueDepth (): Promise<number>
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

export function createdMs (job: StoredJob): number {
  return Date.parse(job.created_at)
}

/** Order of lists: newest created first; ties broken by id, descending. */
export function compareNewestFirst (a: StoredJob, b: StoredJob): number {
  return createdMs(b) - createdMs(a) || (a.job_id < b.job_id ? 1 : a.job_id > b.job_id ? -1 : 0)
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
