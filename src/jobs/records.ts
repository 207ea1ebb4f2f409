import { randomUUID } from 'node:crypto'
import type { DepthName, StoredJob } from '../schemas/job.js'

export function newJob (query: string, depth: DepthName, now = new Date(), owner: string | null = null): StoredJob {
  const iso = now.toISOString()
  return {
    job_id: randomUUID(),
    status: 'pending',
    progress: 0,
    current_step: 'Queued',
    query,
    depth,
    created_at: iso,
    updated_at: iso,
    started_at: null,
    completed_at: null,
    expires_at: iso,
    attempts: 0,
    worker: null,
    next_attempt_at: null,
    attempt_history: [],
    result: null,
    error: null,
    version: 0,
    lease_expires_at: null,
    owner
  }
}

/** The public record: what the API returns (the store's version and lease stay inside). */
export function toPublic (job: StoredJob): Omit<StoredJob, 'version' | 'lease_expires_at' | 'owner'> {
  const { version: _version, lease_expires_at: _lease, owner: _owner, ...record } = job
  return record
}
