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
    error: Type.Union([Type.String(), Type.Null()])
  }),
  runner: Type.Object({
    running: Type.Integer(),
    queued: Type.Integer(),
    concurrency: Type.Integer()
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
