import { Type, type Static } from 'typebox'
import { DEPTHS, JobStatus, ReportFormat, SourceName } from './job.js'

export const CreateResearchBody = Type.Object({
  query: Type.String({
    minLength: 1,
    maxLength: 2000,
    pattern: '\\S',
    description: 'The research question: 1-2000 characters, not blank. Surrounding whitespace is trimmed.'
  }),
  depth: Type.Optional(Type.Enum([...DEPTHS], {
    default: 'standard',
    description: 'quick = 1 round of search, standard = up to 2, deep = up to 4 (see Depth). Deeper runs also plan more web searches and follow links from the pages they read.'
  })),
  sources: Type.Optional(Type.Array(SourceName, {
    minItems: 1,
    maxItems: 3,
    uniqueItems: true,
    description: 'Where to look. Default: `corpus`, plus `urls` when `urls` is given.'
  })),
  urls: Type.Optional(Type.Array(Type.String({ format: 'uri', pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', maxLength: 2048 }), {
    maxItems: 20,
    uniqueItems: true,
    description: 'Up to 20 http(s) pages to read. Private, loopback and link-local addresses are refused unless ALLOW_PRIVATE_URLS=true.'
  })),
  max_sources: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, description: 'Most pages fetched and most sources cited. Default by depth: 4, 8, 12.' })),
  max_duration_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400, description: 'Time budget in seconds: reading stops at 80% of it to leave time for the report; the run fails past it. JOB_TIMEOUT_MS still applies.' })),
  report_format: Type.Optional(ReportFormat),
  cache: Type.Optional(Type.Boolean({
    default: true,
    description: '`false`: fetch every page and ask the LLM again instead of using answers cached by earlier jobs (of this tenant) within their lifetime; what it fetches still refreshes the cache. Steps of this job are still kept across its own attempts.'
  })),
  webhook_url: Type.Optional(Type.String({
    format: 'uri',
    pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
    maxLength: 2048,
    description: 'Called (POST, signed per Standard Webhooks) when the job reaches a final state, retried with backoff for 24 h. Needs WEBHOOK_SECRET on the server; private addresses are refused unless ALLOW_PRIVATE_URLS=true.'
  }))
}, { additionalProperties: false, title: 'CreateResearchBody', examples: [{ query: 'How does Redis AOF persistence protect queued jobs?', depth: 'quick' }] })
export type CreateResearchInput = Static<typeof CreateResearchBody>

export const JobIdParams = Type.Object({
  job_id: Type.String({ pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$', description: 'The job id returned on creation: a UUID in its canonical form (either case)' })
})

export const GetJobQuery = Type.Object({
  wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 60, description: 'Long poll: answer as soon as the job changes, or after this many seconds' }))
}, { additionalProperties: false })

export const ListJobsQuery = Type.Object({
  status: Type.Optional(JobStatus),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Jobs per page, 1-100' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' }))
}, { additionalProperties: false })
