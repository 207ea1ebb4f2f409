import { Type } from 'typebox'
import { ERROR_CATALOGUE, codesWithStatus } from '../errors.js'
import { JobSummary } from './job.js'
import { Nullable } from './nullable.js'

/** RFC 9457 problem details, with this API's `{ error, message }` beside them. */
export const Problem = Type.Object({
  type: Type.String({ description: '`urn:deep-research:problem:<code>`' }),
  title: Type.String({ description: 'The title of the code (the same for every problem of that code)' }),
  status: Type.Integer({ description: 'The HTTP status code' }),
  detail: Type.String({ description: 'What went wrong, for a person' }),
  code: Type.String({ description: 'Machine-readable code from the error catalogue (docs/api.md, Errors); each error answer lists the codes of its status' }),
  error: Type.String({ description: 'The same code (the API\'s original field)' }),
  message: Type.String({ description: 'The same text as `detail` (the API\'s original field)' })
}, { title: 'Problem', additionalProperties: true })

/** What an error status means on this API: its codes from the catalogue, each with its meaning. */
function problemMeaning (status: number): string {
  return codesWithStatus(status).map((code) => `\`${code}\`: ${ERROR_CATALOGUE[code].meaning}`).join(' ')
}

const RETRY_AFTER = { 'retry-after': { type: 'integer', description: 'Seconds to wait before trying again' } }

/** Error answers of a route: each status as a problem document, with what it means here. */
export function problems (...statuses: number[]): Record<number, object> {
  return Object.fromEntries(statuses.map((status) => [status, {
    description: problemMeaning(status),
    ...(status === 429 || status === 503 ? { headers: RETRY_AFTER } : {}),
    content: { 'application/problem+json': { schema: Problem } }
  }]))
}

/** An answer with what it means. */
export function described (description: string, schema: object, media = 'application/json'): object {
  return { description, content: { [media]: { schema } } }
}

/** A success answer with response headers to document. */
export function withHeaders (description: string, schema: object, headers: Record<string, { type: string, description: string }>, media = 'application/json'): object {
  return { description, headers, content: { [media]: { schema } } }
}

/** The original FastAPI service's error shape, kept exactly for its clients. */
export const LegacyErrorBody = Type.Object({
  detail: Type.String({ description: 'What went wrong' })
}, { title: 'LegacyErrorBody' })

/** FastAPI's request validation error: what is wrong with the body, field by field. */
export const LegacyValidationError = Type.Object({
  detail: Type.Array(Type.Object({
    loc: Type.Array(Type.Union([Type.String(), Type.Integer()]), { description: 'Where: `body`, then the field' }),
    msg: Type.String(),
    type: Type.String({ description: 'e.g. `missing`, `extra_forbidden`, `enum`, `json_invalid`' })
  }))
}, { title: 'LegacyValidationError' })

export const JobList = Type.Object({
  jobs: Type.Array(JobSummary),
  next_cursor: Nullable(Type.String(), { description: 'Pass as `cursor` for the next page; null on the last page' })
}, { title: 'JobList' })

const HealthStatus = Type.Enum(['ok', 'degraded'], { description: '`degraded`: Redis is configured but unreachable, refuses writes, is being re-seeded after losing its data, or has Cluster nodes failing' })
const HealthRole = Type.Enum(['all', 'api', 'worker'], { description: 'What this process does (ROLE): `api` runs no jobs (`runner.concurrency` is 0); `worker` serves no API' })

/** What anyone may know: that the process serves, and whether it is ready (status). */
export const HealthSummary = Type.Object({
  status: HealthStatus,
  role: HealthRole
}, { title: 'HealthSummary', additionalProperties: false, description: 'Without an admin key when keys are configured (HEALTH_DETAILS=admin, the default)' })

export const Health = Type.Object({
  status: HealthStatus,
  role: HealthRole,
  store: Type.Enum(['redis', 'memory']),
  redis: Type.Object({
    configured: Type.Boolean(),
    connected: Type.Boolean(),
    latency_ms: Nullable(Type.Number()),
    error: Nullable(Type.String()),
    writes_refused: Nullable(Type.String(), { description: 'Why Redis refuses writes (OOM under noeviction, READONLY, CROSSSLOT...): creates answer 503 meanwhile. null: writes work' }),
    maxmemory_policy: Nullable(Type.String(), { description: 'Redis\'s eviction policy; anything but `noeviction` can silently drop jobs when Redis fills up' }),
    recovering: Type.Boolean({ description: 'Redis lost its data, or went back in time (a failover to a replica that lagged, a restart from an older snapshot), moments ago; replicas are putting their copies back' }),
    data_loss: Nullable(Type.String(), { description: 'While `recovering`: what Redis lost and when. null otherwise' }),
    memory: Nullable(Type.Object({
      used_bytes: Type.Integer({ description: 'Redis\'s used_memory' }),
      max_bytes: Type.Integer({ description: 'Redis\'s maxmemory; 0: no limit' }),
      admit_limit_bytes: Nullable(Type.Integer(), { description: 'Creates answer 503 `store_full` once used memory plus the room kept for unfinished jobs passes this (REDIS_ADMIT_MEMORY_PERCENT of maxmemory); null: no limit' })
    }), { description: 'Redis\'s memory against the create admission limit; null when Redis is not configured or not answering' }),
    unsynced: Type.Integer({ description: 'Jobs created here during an outage that Redis does not hold yet' }),
    topology: Type.Object({
      kind: Type.Enum(['single', 'cluster'], { description: 'One Redis server, or a Redis Cluster (REDIS_CLUSTER)' }),
      shards: Type.Integer({ description: 'Hash tags the jobs are spread over' }),
      failing_nodes: Type.Array(Type.String(), { description: 'Cluster nodes (host:port) whose connection is down now; any makes the status `degraded`' })
    }),
    warnings: Type.Array(Type.String())
  }),
  runner: Type.Object({
    running: Type.Integer(),
    queued: Type.Integer(),
    concurrency: Type.Integer(),
    unwritten: Type.Integer({ description: 'Attempts this process finished whose final write Redis refuses (MISCONF, OOM): their results are kept here and written when Redis accepts writes again' })
  }),
  auth: Type.Enum(['open', 'keys'], { description: '`open`: no API keys are configured, anyone can call the API' }),
  research: Type.Object({
    engine: Type.String(),
    web_search: Nullable(Type.String(), { description: 'The web search provider; null: the `web` source is unavailable' }),
    llm: Nullable(Type.String(), { description: 'The LLM model; null: reports are extractive' })
  }),
  uptime_s: Type.Number(),
  version: Type.String()
}, { title: 'Health', description: 'With an admin key, with no keys configured (the API is open), or with HEALTH_DETAILS=public' })

/** Full detail first: a serializer picking the first shape that fits must not cut it to the summary. */
export const HealthAnswer = Type.Union([Health, HealthSummary])

export const CleanupInfo = Type.Object({
  message: Type.String(),
  store: Type.Enum(['redis', 'memory']),
  redis_connected: Type.Boolean(),
  cleanup_method: Type.String(),
  ttl_seconds: Type.Integer()
}, { title: 'CleanupInfo' })

const StatusCounts = Type.Object({
  pending: Type.Integer(), processing: Type.Integer(), completed: Type.Integer(), failed: Type.Integer(), cancelled: Type.Integer()
})

export const QueueStatsBody = Type.Object({
  store: Type.Enum(['redis', 'memory'], { description: 'Where these numbers come from' }),
  counts: StatusCounts,
  queue_depth: Type.Integer({ description: 'Jobs waiting to start' }),
  delayed: Type.Integer({ description: 'Failed attempts waiting for their retry time' }),
  oldest_pending_age_s: Nullable(Type.Number(), { description: 'How long the job at the head of the queue has waited' }),
  active_leases: Type.Record(Type.String(), Type.Integer(), { description: 'Running jobs by the worker holding their lease' }),
  tenants: Type.Record(Type.String(), Type.Object({ queued: Type.Integer(), running: Type.Integer() }), { description: 'Jobs queued and running per tenant (API key name; `(open)` for the open API\'s clients) with any; up to 1,000 tenants with queued jobs, next to be served first' }),
  worker: Type.String({ description: 'The worker id of the process that answered' })
}, { title: 'QueueStats' })
