import type { DepthName, ResearchOptionsData, StoredJob } from '../schemas/job.js'
import { resolveOptions } from '../schemas/options.js'
import { newJobId } from '../store/job-ids.js'
import { isoTime } from '../iso-time.js'

/** What a new job is made of; everything else starts at its initial value. */
export interface NewJobInput {
  query: string
  depth: DepthName
  /** The tenant creating it (null when the API is open). */
  owner?: string | null
  /** The request's options, defaults filled in (the depth's defaults when absent). */
  options?: ResearchOptionsData
  webhookUrl?: string | null
  /** The creating request's trace context (src/telemetry/spans.ts traceCarrier). */
  traceContext?: Record<string, string>
  now?: Date
}

/** A pending job at version 0, ready for its creating write. */
export function newJob ({ query, depth, owner = null, options = resolveOptions({ depth }), webhookUrl = null, traceContext, now = new Date() }: NewJobInput): StoredJob {
  const iso = isoTime(now.getTime())
  const id = newJobId(now.getTime())
  return {
    job_id: id,
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
    options,
    webhook: webhookUrl === null ? null : { url: webhookUrl, status: 'pending', message_id: `msg_${id}`, deliveries: [], next_attempt_at: null, delivered_at: null },
    result: null,
    error: null,
    version: 0,
    owner,
    ...(traceContext === undefined ? {} : { trace_context: traceContext })
  }
}
