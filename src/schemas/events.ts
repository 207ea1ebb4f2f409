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
 * An event's data as Redis keeps it: its values, tab-separated, without the names that every
 * entry would repeat (58 bytes) nor the job id (48): status, progress,
 * attempts, then error and step as JSON texts (which never hold a raw tab). The Lua scripts that
 * append events build the same text (`running_event` in lua/lib/job.lua); withJobId reads it.
 */
export function keptEventData (job: StoredJob): string {
  return `${job.status}\t${job.progress}\t${job.attempts}\t${JSON.stringify(job.error ?? null)}\t${JSON.stringify(job.current_step)}`
}

/**
 * Kept event data as eventData has it: the job id first, then the state. Entries kept as JSON
 * by earlier versions are read as they are (given the job id when they lack it).
 */
export function withJobId (id: string, kept: string): string {
  if (kept.startsWith('{')) return kept.startsWith('{"job_id":') ? kept : `{"job_id":${JSON.stringify(id)},${kept.slice(1)}`
  const [status, progress, attempts, error, step] = kept.split('\t')
  return `{"job_id":${JSON.stringify(id)},"status":"${status as string}","progress":${progress as string},"current_step":${step as string},"attempts":${attempts as string},"error":${error as string}}`
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
