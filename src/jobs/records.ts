import { randomUUID } from 'node:crypto'
import type { DepthName, StoredJob } from '../schemas/job.js'

export function newJob (query: string, depth: DepthName, now = new Date()): StoredJob {
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
    result: null,
    error: null,
    version: 0
  }
}

/** The public record: what the API returns (the store's `version` stays inside). */
export function toPublic (job: StoredJob): Omit<StoredJob, 'version'> {
  const { version: _version, ...record } = job
  return record
}
