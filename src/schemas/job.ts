import { Type, type Static } from 'typebox'
import { Nullable } from './nullable.js'

export const JOB_STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled'])

/** Completed, failed or cancelled: nothing changes the job any more but a delete. */
export function isFinal (status: string): boolean {
  return FINAL_STATUSES.has(status)
}
export const DEPTHS = ['quick', 'standard', 'deep'] as const

export const JobStatus = Type.Enum([...JOB_STATUSES], {
  title: 'JobStatus',
  description: 'pending -> processing -> completed | failed | cancelled. The last three are final.'
})
export const Depth = Type.Enum([...DEPTHS], {
  title: 'Depth',
  description: 'How hard to dig. quick: one round of search (the question, in the sources\' words too, and its rarer words alone); standard: up to 2 rounds (each part searched, then follow-ups for what is lacking); deep: up to 4 rounds (follow-ups, the words the sources use, reading on) and longer reports.'
})

const IsoTime = Type.String({ format: 'date-time', description: 'ISO-8601 UTC time' })
const NullableIsoTime = Nullable(IsoTime)

export const SOURCE_NAMES = ['corpus', 'urls', 'web'] as const
export const SourceName = Type.Enum([...SOURCE_NAMES], {
  description: '`corpus`: the local document collection; `urls`: the pages listed in `urls`; `web`: a web search (needs a configured provider).'
})
export const ReportFormat = Type.Enum(['markdown', 'json'], {
  description: '`markdown`: the report as one Markdown document plus its parts; `json`: the parts only (`markdown` is null).'
})

export const ResearchOptions = Type.Object({
  sources: Type.Array(SourceName),
  urls: Type.Array(Type.String()),
  max_sources: Type.Integer({ minimum: 1, maximum: 50, description: 'Most pages fetched, and most sources cited' }),
  max_duration_s: Nullable(Type.Integer({ minimum: 1 }), { description: 'Time budget of a run; null: JOB_TIMEOUT_MS alone' }),
  report_format: ReportFormat,
  cache: Type.Optional(Type.Boolean({ description: 'Present and false when the job was asked not to use cached pages and LLM answers' }))
}, { title: 'ResearchOptions', description: 'What the job was asked to do, defaults filled in.' })

export const Usage = Type.Object({
  llm_calls: Type.Integer({ minimum: 0 }),
  input_tokens: Type.Integer({ minimum: 0 }),
  output_tokens: Type.Integer({ minimum: 0 }),
  pages_fetched: Type.Integer({ minimum: 0 }),
  bytes_fetched: Type.Integer({ minimum: 0 }),
  search_queries: Type.Integer({ minimum: 0 }),
  duration_ms: Type.Integer({ minimum: 0 }),
  cost_usd: Nullable(Type.Number({ minimum: 0 }), { description: 'From the configured prices; null when a paid call\'s price is not configured' }),
  cached_pages: Type.Optional(Type.Integer({ minimum: 0, description: 'Pages read from the shared cache instead of fetched (not counted in pages_fetched)' })),
  cached_llm_calls: Type.Optional(Type.Integer({ minimum: 0, description: 'LLM answers taken from the shared cache: no request sent and no tokens spent (not counted in llm_calls)' })),
  steps_reused: Type.Optional(Type.Integer({ minimum: 0, description: 'Steps (page reads, searches, LLM calls) an earlier attempt of this job did, whose results the attempt that finished it used instead of doing them again; what they spent is counted above' }))
}, { title: 'Usage', description: 'What the run spent.' })

export const ReportSource = Type.Object({
  id: Type.Integer({ minimum: 1, description: 'Citation number used as [n] in the report' }),
  title: Type.String(),
  path_or_url: Type.String(),
  kind: Type.Optional(Type.Enum(['corpus', 'url', 'web'], { description: 'Found in the corpus, given in `urls` (or linked from one), or found by web search' })),
  snippet: Type.String({ description: 'The first passage of it the report quotes' }),
  score: Type.Number(),
  link: Type.Optional(Type.String({ description: 'Where a person opens it: a page\'s URL, or for a corpus document the route that serves it (`/v1/corpus/{path}`, same keys as the jobs)' })),
  quotes: Type.Optional(Type.Array(Type.Object({ heading: Type.String(), text: Type.String() }), { description: 'The sentences of this source the report states, each under its heading in the source' }))
})

export const ANSWER_STATUSES = ['answered', 'partial', 'not_found'] as const

export const Answer = Type.Object({
  status: Type.Enum([...ANSWER_STATUSES], {
    description: '`answered`: the sources answer every part of the question; `partial`: some parts (see `parts`); `not_found`: none, and the report cites nothing'
  }),
  parts: Type.Array(Type.Object({
    question: Type.String({ description: 'The part of the question, as asked' }),
    answered: Type.Boolean(),
    sources: Type.Array(Type.Integer({ minimum: 1 }), { description: 'The [n] of the sources its answer cites' })
  }), { description: 'Each part of the question (one for a single question), in the order asked' })
}, { title: 'Answer', description: 'Whether the sources answered the question, part by part: a client tells "answered" from "not found" here, not from the text.' })

export const Searched = Type.Object({
  sources: Type.Array(SourceName),
  documents: Type.Integer({ minimum: 0, description: 'Documents and pages searched' }),
  passages: Type.Integer({ minimum: 0 }),
  queries: Type.Array(Type.String(), { description: 'Every search run, in order: the question (in the sources\' words too, and its rarer words alone), its parts, then the follow-ups' }),
  rounds: Type.Integer({ minimum: 0, description: 'Rounds of search, read and reflect (the depth sets the most)' })
}, { title: 'Searched', description: 'What the research searched, for a "not found" as much as for an answer.' })

export const DroppedClaim = Type.Object({
  sentence: Type.String(),
  reason: Type.String({ description: 'Why it was dropped: no citation, a source that was not read, or no support in the cited passages' })
}, { title: 'DroppedClaim' })

export const Report = Type.Object({
  title: Type.String(),
  summary: Type.String(),
  markdown: Nullable(Type.String(), { description: 'The whole report as Markdown; null when report_format is json' }),
  sections: Type.Array(Type.Object({ heading: Type.String(), body: Type.String() })),
  sources: Type.Array(ReportSource, { description: 'Exactly the sources cited; each one was read' }),
  unread: Type.Optional(Type.Array(Type.Object({ url: Type.String(), reason: Type.String() }), { description: 'Pages that could not be read, and why' })),
  writer: Type.Optional(Type.String({ description: '`extractive`, or the LLM model that wrote the report' })),
  answer: Type.Optional(Answer),
  searched: Type.Optional(Searched),
  unsupported_claims: Type.Optional(Type.Integer({ minimum: 0, description: 'Sentences a model wrote that their citations did not support and no other source read did: dropped (0 for extractive reports)' })),
  dropped_claims: Type.Optional(Type.Array(DroppedClaim, { description: 'The sentences counted in `unsupported_claims`, and why' })),
  stats: Type.Object({
    documents_searched: Type.Integer(),
    passages_read: Type.Integer(),
    duration_ms: Type.Integer(),
    rounds: Type.Optional(Type.Integer({ minimum: 0 }))
  }),
  usage: Type.Optional(Usage)
}, { title: 'Report' })

export const ATTEMPT_OUTCOMES = ['running', 'completed', 'failed', 'retrying', 'lease_expired', 'handed_back', 'cancelled'] as const

export const Attempt = Type.Object({
  attempt: Type.Integer({ minimum: 1 }),
  worker: Type.String({ description: 'The process that ran this attempt' }),
  started_at: IsoTime,
  ended_at: NullableIsoTime,
  outcome: Type.Enum([...ATTEMPT_OUTCOMES], {
    description: 'running; completed; failed (final); retrying (failed, retried after a backoff); lease_expired (its process died); handed_back (its process shut down; does not count against JOB_MAX_ATTEMPTS); cancelled'
  }),
  error: Nullable(Type.String())
}, { title: 'Attempt' })

export const WebhookDelivery = Type.Object({
  attempt: Type.Integer({ minimum: 1 }),
  at: IsoTime,
  status_code: Nullable(Type.Integer(), { description: 'HTTP status the receiver answered; null when no answer came' }),
  error: Nullable(Type.String()),
  duration_ms: Type.Integer({ minimum: 0 })
}, { title: 'WebhookDelivery' })

export const Webhook = Type.Object({
  url: Type.String(),
  status: Type.Enum(['pending', 'delivered', 'failed'], { description: 'pending until a 2xx answer (delivered), or until retries end (failed)' }),
  message_id: Type.String({ description: 'The webhook-id header: the same on every retry, so receivers can drop duplicates' }),
  deliveries: Type.Array(WebhookDelivery, { description: 'Every delivery attempt (the latest 30)' }),
  next_attempt_at: Nullable(IsoTime),
  delivered_at: Nullable(IsoTime)
}, { title: 'Webhook', description: 'The callback made when the job reaches a final state' })

const recordFields = {
  job_id: Type.String({ format: 'uuid' }),
  status: JobStatus,
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  current_step: Type.String(),
  query: Type.String(),
  depth: Depth,
  created_at: IsoTime,
  updated_at: IsoTime,
  started_at: NullableIsoTime,
  completed_at: NullableIsoTime,
  expires_at: IsoTime,
  attempts: Type.Integer({ minimum: 0, description: 'Attempts started that count against JOB_MAX_ATTEMPTS' }),
  worker: Nullable(Type.String(), { description: 'The process holding the job\'s lease while it is processing' }),
  next_attempt_at: Nullable(IsoTime, { description: 'When a failed attempt will be retried' }),
  attempt_history: Type.Array(Attempt, { description: 'Every attempt: who ran it, when, and how it ended' }),
  options: ResearchOptions,
  webhook: Nullable(Webhook)
}

export const JobRecord = Type.Object({
  ...recordFields,
  result: Nullable(Report),
  error: Nullable(Type.String())
}, { title: 'JobRecord', description: 'A research job. `result` holds the report once `status` is completed.' })

export const JobSummary = Type.Object({
  ...recordFields,
  error: Nullable(Type.String())
}, { title: 'JobSummary', description: 'A job record without its report, as listed.' })

export type JobStatusName = (typeof JOB_STATUSES)[number]
export type DepthName = (typeof DEPTHS)[number]
export type ReportData = Static<typeof Report>
export type AttemptData = Static<typeof Attempt>
export type ResearchOptionsData = Static<typeof ResearchOptions>
export type UsageData = Static<typeof Usage>
export type AnswerData = Static<typeof Answer>
export type SearchedData = Static<typeof Searched>
export type WebhookData = Static<typeof Webhook>

/**
 * What the store keeps: the public record plus `version`, the counter every write
 * compares and bumps so that concurrent writers can never overwrite each other, the tenant
 * that owns it (the name of the API key that created it; absent or null when the API ran open),
 * and the trace it was created in.
 * Leases are not part of the record: the store keeps them, on its own clock.
 */
export type StoredJob = Static<typeof JobRecord> & {
  version: number
  owner?: string | null
  /** The W3C trace context of the request that created it, when tracing was on: its runs join that trace. */
  trace_context?: Record<string, string>
  /**
   * The fencing token of the claim running it, kept while it is processing (see serializeJob):
   * the store checks a progress write against it without reading the claim's index.
   */
  fence?: string
  /**
   * The id of the job's last event, which Redis keeps in the record (after `fence` in a running
   * one) so the claim's start, a progress write and the write that ends an attempt need not read
   * the event log; a finished record keeps its final event's, in place of the log it no longer
   * has. Only the Redis scripts write it (serializeJob leaves it out).
   */
  last_event_id?: string
}

/** The public record: what the API returns (the store's version, tenant, trace context and claim bookkeeping stay inside). */
export function toPublic (job: StoredJob): Omit<StoredJob, 'version' | 'owner' | 'trace_context' | 'fence' | 'last_event_id'> {
  const { version: _version, owner: _owner, trace_context: _traceContext, fence: _fence, last_event_id: _lastEventId, ...record } = job
  return record
}
