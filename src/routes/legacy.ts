import type { FastifyError } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { JobNotFoundError } from '../jobs/service.js'
import { toPublic } from '../jobs/records.js'
import { describeError, sendProblem } from '../plugins/errors.js'
import { JobRecord } from '../schemas/job.js'
import { CreateResearchBody } from '../schemas/requests.js'
import { CleanupInfo, LegacyErrorBody } from '../schemas/responses.js'

/**
 * The original FastAPI service's routes and answers, for its existing clients: errors carry
 * `detail` (as FastAPI's do) next to our `error`/`message`, and unknown ids are a plain 404.
 */
const legacyRoutes: FastifyPluginAsyncTypebox<{ ttlSeconds: number }> = async (app, { ttlSeconds }) => {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const problem = describeError(err)
    if (problem.statusCode === 500) request.log.error({ err }, 'request failed')
    // FastAPI answers request validation errors with 422.
    const statusCode = problem.error === 'validation_error' ? 422 : problem.statusCode
    const detail = problem.statusCode === 404 ? 'Job not found' : problem.message
    return sendProblem(reply, { ...problem, statusCode }, { detail, error: problem.error, message: problem.message })
  })

  app.post('/api/v4/deep-research', {
    config: { budget: 'create' },
    schema: {
      tags: ['legacy'],
      summary: 'Start a research job (original route)',
      body: CreateResearchBody,
      response: { 200: JobRecord, 415: LegacyErrorBody, 422: LegacyErrorBody, 503: LegacyErrorBody }
    }
  }, async (request) => toPublic(await app.jobs.create(request.body.query, request.body.depth ?? 'standard', request.principal.tenant)))

  app.get('/api/v4/job/:job_id', {
    config: { budget: 'poll' },
    schema: {
      tags: ['legacy'],
      summary: 'Get a job (original route)',
      params: Type.Object({ job_id: Type.String({ maxLength: 200 }) }),
      response: { 200: JobRecord, 404: LegacyErrorBody, 503: LegacyErrorBody }
    }
  }, async (request) => {
    const id = request.params.job_id
    // The original answered 404 for any unknown string; only UUIDs ever reach the store.
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw new JobNotFoundError(id)
    return toPublic(await app.jobs.get(id, request.principal.tenant))
  })

  app.delete('/api/v4/admin/cleanup-jobs', {
    config: { access: 'admin' },
    schema: {
      tags: ['legacy'],
      summary: 'Explains job cleanup (original route): records expire by TTL, nothing to run',
      response: { 200: CleanupInfo }
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
