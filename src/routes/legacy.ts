import type { FastifyError } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { JobNotFoundError } from '../jobs/service.js'
import type { ProblemFormat } from '../errors.js'
import { DEPTHS, JobRecord, toPublic } from '../schemas/job.js'
import { CleanupInfo, LegacyErrorBody, LegacyValidationError, described } from '../schemas/responses.js'

/** The original route's body: a question and a depth, nothing else (FastAPI's model). */
const LegacyCreateBody = Type.Object({
  query: Type.String({ minLength: 1, maxLength: 2000, pattern: '\\S', description: 'The research question' }),
  depth: Type.Optional(Type.Enum([...DEPTHS], { default: 'standard' }))
}, { additionalProperties: false, examples: [{ query: 'How does Redis AOF persistence protect queued jobs?', depth: 'quick' }] })

type FastApiIssue = { loc: Array<string | number>, msg: string, type: string }

/** One request validation error as FastAPI (Pydantic v2) words it. */
function fastApiIssue (err: FastifyError): FastApiIssue {
  const first = err.validation?.[0]
  const params = (first?.params ?? {}) as Record<string, unknown>
  const field = first?.instancePath.split('/').filter((p) => p !== '') ?? []
  if (typeof params.additionalProperty === 'string') return { loc: ['body', ...field, params.additionalProperty], msg: 'Extra inputs are not permitted', type: 'extra_forbidden' }
  if (typeof params.missingProperty === 'string') return { loc: ['body', ...field, params.missingProperty], msg: 'Field required', type: 'missing' }
  if (Array.isArray(params.allowedValues)) {
    const values = params.allowedValues.map((v) => `'${String(v)}'`)
    return { loc: ['body', ...field], msg: `Input should be ${values.slice(0, -1).join(', ')} or ${values.at(-1) ?? ''}`, type: 'enum' }
  }
  if (first?.keyword === 'type') return { loc: ['body', ...field], msg: `Input should be a valid ${String(params.type)}`, type: `${String(params.type)}_type` }
  if (first?.keyword === 'minLength' || first?.keyword === 'pattern') return { loc: ['body', ...field], msg: 'String should have at least 1 character', type: 'string_too_short' }
  if (first?.keyword === 'maxLength') return { loc: ['body', ...field], msg: `String should have at most ${String(params.limit)} characters`, type: 'string_too_long' }
  return { loc: ['body', ...field], msg: first?.message ?? 'Invalid input', type: 'value_error' }
}

/** Errors as FastAPI words them: a 422 lists what is wrong with the body; anything else is `{ detail }`. */
const fastApiProblem: ProblemFormat = (problem, err) => {
  const json = 'application/json; charset=utf-8'
  const unprocessable = { ...problem, statusCode: 422 }
  if (problem.error === 'validation_error') return { problem: unprocessable, body: { detail: [fastApiIssue(err as FastifyError)] }, type: json }
  if (problem.error === 'invalid_json') return { problem: unprocessable, body: { detail: [{ loc: ['body', 0], msg: 'JSON decode error', type: 'json_invalid' }] }, type: json }
  if (problem.error === 'unsupported_media_type') {
    return { problem: unprocessable, body: { detail: [{ loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', type: 'model_attributes_type' }] }, type: json }
  }
  return { problem, body: { detail: problem.statusCode === 404 ? 'Job not found' : problem.message }, type: json }
}

/**
 * The original FastAPI service's routes and answers, for its existing clients: errors are
 * `{ "detail": ... }` exactly as FastAPI sends them (a 422 lists what is wrong with the body; an
 * unknown job is `{ "detail": "Job not found" }`).
 */
const legacyRoutes: FastifyPluginAsyncTypebox<{ ttlSeconds: number }> = async (app, { ttlSeconds }) => {
  app.post('/api/v4/deep-research', {
    config: { budget: 'create', problemFormat: fastApiProblem },
    schema: {
      operationId: 'legacyCreateResearch',
      tags: ['legacy'],
      summary: 'Start a research job (original route)',
      description: 'The original FastAPI route: `{ query, depth? }` only (the options of `POST /v1/research` are refused with 422), answered 200 with the record.',
      body: LegacyCreateBody,
      response: {
        200: described('The job, created', JobRecord),
        413: described('The body is over BODY_LIMIT_BYTES', LegacyErrorBody),
        422: described('What is wrong with the body, field by field, as FastAPI words it', LegacyValidationError),
        429: described('Too many creates; Retry-After says when to try again', LegacyErrorBody),
        503: described('The store cannot take the job now; retry shortly', LegacyErrorBody)
      }
    }
  }, async (request) => toPublic((await app.jobs.create({ query: request.body.query, depth: request.body.depth, tenant: request.principal.tenant })).job))

  app.get('/api/v4/job/:job_id', {
    config: { budget: 'poll', problemFormat: fastApiProblem },
    schema: {
      operationId: 'legacyGetJob',
      tags: ['legacy'],
      summary: 'Get a job (original route)',
      description: 'The original FastAPI route: the record, or 404 `{ "detail": "Job not found" }` for any unknown id.',
      params: Type.Object({ job_id: Type.String({ maxLength: 100, description: 'The job id' }) }),
      response: {
        200: described('The job', JobRecord),
        404: described('`{ "detail": "Job not found" }`, for any unknown id', LegacyErrorBody),
        429: described('Too many reads; Retry-After says when to try again', LegacyErrorBody),
        503: described('The store cannot answer now; retry shortly', LegacyErrorBody)
      }
    }
  }, async (request) => {
    const id = request.params.job_id
    // The original answered 404 for any unknown string; only UUIDs ever reach the store.
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw new JobNotFoundError(id)
    return toPublic(await app.jobs.get(id, request.principal.tenant))
  })

  app.delete('/api/v4/admin/cleanup-jobs', {
    config: { access: 'admin', problemFormat: fastApiProblem },
    schema: {
      operationId: 'legacyCleanupJobs',
      tags: ['legacy'],
      summary: 'Explains job cleanup (original route): records expire by TTL, nothing to run',
      description: 'Kept for the original service\'s clients: job records expire on their own, so there is nothing to clean up.',
      response: {
        200: described('How jobs are cleaned up here', CleanupInfo),
        401: described('No API key, or a wrong one', LegacyErrorBody),
        403: described('This route needs an admin key', LegacyErrorBody)
      }
    }
  }, async () => {
    const mode = app.store.mode
    return {
      message: mode === 'redis'
        ? `Job cleanup is automatic: records expire ${ttlSeconds} s after their last change (Redis SETEX)`
        : `Job cleanup is automatic: in-memory records expire ${ttlSeconds} s after their last change and the store is bounded`,
      store: mode,
      redis_connected: mode === 'redis',
      cleanup_method: mode === 'redis' ? 'Redis SETEX expiry' : 'in-memory TTL and size bound',
      ttl_seconds: ttlSeconds
    }
  })
}

export default legacyRoutes
