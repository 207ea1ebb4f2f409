import { Type } from 'typebox'
import { JobSummary } from './job.js'

export const ErrorBody = Type.Object({
  error: Type.String({ description: 'Machine-readable code, e.g. validation_error, not_found' }),
  message: Type.String({ description: 'What went wrong, for a person' })
}, { title: 'ErrorBody' })

/** The original service's error shape (`detail`), kept for its clients, plus ours. */
export const LegacyErrorBody = Type.Object({
  detail: Type.String(),
  error: Type.String(),
  message: Type.String()
}, { title: 'LegacyErrorBody' })

export const JobList = Type.Object({
  jobs: Type.Array(JobSummary),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page; null on the last page' })
}, { title: 'JobList' })

export const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  store: Type.Union([Type.Literal('redis'), Type.Literal('memory')]),
  redis: Type.Object({
    configured: Type.Boolean(),
    connected: Type.Boolean(),
    latency_ms: Type.Union([Type.Number(), Type.Null()]),
    error: Type.Union([Type.String(), Type.Null()]),
    writes_refused: Type.Union([Type.String(), Type.Null()], { description: 'Why Redis refuses writes (OOM under noeviction, READONLY, CROSSSLOT...): creates answer 503 meanwhile. null: writes work' }),
    maxmemory_policy: Type.Union([Type.String(), Type.Null()], { description: 'Redis\'s eviction policy; anything but `noeviction` can silently drop jobs when Redis fills up' }),
    recovering: Type.Boolean({ description: 'Redis lost its data moments ago; replicas are putting their copies back' }),
    unsynced: Type.Integer({ description: 'Jobs created here during an outage that Redis does not hold yet' }),
    warnings: Type.Array(Type.String())
  }),
  runner: Type.Object({
    running: Type.Integer(),
    queued: Type.Integer(),
    concurrency: Type.Integer()
  }),
  auth: Type.Union([Type.Literal('open'), Type.Literal('keys')], { description: '`open`: no API keys are configured, anyone can call the API' }),
  research: Type.Object({
    engine: Type.String(),
    web_search: Type.Union([Type.String(), Type.Null()], { description: 'The web search provider; null: the `web` source is unavailable' }),
    llm: Type.Union([Type.String(), Type.Null()], { description: 'The LLM model; null: reports are extractive' })
  }),
  uptime_s: Type.Number(),
  version: Type.String()
}, { title: 'Health' })

export const CleanupInfo = Type.Object({
  message: Type.String(),
  store: Type.Union([Type.Literal('redis'), Type.Literal('memory')]),
  redis_connected: Type.Boolean(),
  cleanup_method: Type.String(),
  ttl_seconds: Type.Integer()
}, { title: 'CleanupInfo' })

const StatusCounts = Type.Object({
  pending: Type.Integer(), processing: Type.Integer(), completed: Type.Integer(), failed: Type.Integer(), cancelled: Type.Integer()
})

export const QueueStatsBody = Type.Object({
  store: Type.Union([Type.Literal('redis'), Type.Literal('memory')], { description: 'Where these numbers come from' }),
  counts: StatusCounts,
  queue_depth: Type.Integer({ description: 'Jobs waiting to start' }),
  delayed: Type.Integer({ description: 'Failed attempts waiting for their retry time' }),
  oldest_pending_age_s: Type.Union([Type.Number(), Type.Null()], { description: 'How long the job at the head of the queue has waited' }),
  active_leases: Type.Record(Type.String(), Type.Integer(), { description: 'Running jobs by the worker holding their lease' }),
  worker: Type.String({ description: 'The worker id of the process that answered' })
}, { title: 'QueueStats' })
