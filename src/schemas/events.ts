import type { StoredJob } from './job.js'

/**
 * A job's events as clients see them (Server-Sent Events, the event log): their types, ids and
 * data. The logs that keep them live in the stores.
 */

/** `status` on a status change (creation included), `progress` on progress or step, then the final status. */
export type JobEventType = 'status' | 'progress' | 'completed' | 'failed' | 'cancelled'

export interface JobEvent {
  /** `<ms>-<seq>`, increasing per job (a Redis stream id, or one made the same way in memory). */
  id: string
  type: JobEventType
  /** JSON: the job's state after the change (see `eventData`). */
  data: string
}

export const FINAL_EVENT_TYPES: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled'])

/**
 * What an event carries: enough for a progress bar and its step line, without the report
 * (fetch the job for that). Writes that change none of it (lease renewals) add no event.
 */
export function eventData (job: StoredJob): string {
  return JSON.stringify({ job_id: job.job_id, status: job.status, progress: job.progress, current_step: job.current_step, attempts: job.attempts, error: job.error })
}

/**
 * An event's data as Redis keeps it: without the job id, which every entry of a job's log
 * would repeat (48 bytes each); withJobId puts it back when the log is read.
 */
export function keptEventData (job: StoredJob): string {
  return JSON.stringify({ status: job.status, progress: job.progress, current_step: job.current_step, attempts: job.attempts, error: job.error })
}

/** Kept event data with the job id first again, as eventData has it; data kept with it (older entries) as it is. */
export function withJobId (id: string, kept: string): string {
  return kept.startsWith('{"job_id":') ? kept : `{"job_id":${JSON.stringify(id)},${kept.slice(1)}`
}

export function eventType (previousStatus: string | null, status: string): JobEventType {
  if (FINAL_EVENT_TYPES.has(status)) return status as JobEventType
  return previousStatus === status ? 'progress' : 'status'
}

export const EVENT_ID = /^\d{1,15}-\d{1,15}$/

export function compareEventIds (a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split('-').map(Number)
  const [bMs = 0, bSeq = 0] = b.split('-').map(Number)
  return aMs - bMs || aSeq - bSeq
}
