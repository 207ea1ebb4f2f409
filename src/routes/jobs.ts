import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { toPublic } from '../jobs/records.js'
import { JobRecord } from '../schemas/job.js'
import { JobIdParams, ListJobsQuery } from '../schemas/requests.js'
import { ErrorBody, JobList } from '../schemas/responses.js'

const ConflictBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  job: JobRecord
}, { title: 'ConflictBody', description: 'The job is already finished; `job` is its record.' })

const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  /** Response bodies by record object: records are immutable, so a body stays right for its record. */
  const serialized = new WeakMap<object, string>()

  app.get('/v1/jobs/:job_id', {
    config: { budget: 'poll' },
    schema: {
      tags: ['jobs'],
      summary: 'Get a job: status, progress, current step, and the report once completed',
      params: JobIdParams,
      response: { 200: JobRecord, 400: ErrorBody, 404: ErrorBody, 503: ErrorBody }
    }
  }, async (request, reply) => {
    const job = await app.jobs.get(request.params.job_id, request.principal.tenant)
    // The same record object comes back while a job does not change: serialize it once.
    let body = serialized.get(job)
    if (body === undefined) {
      body = reply.serialize(toPublic(job)) as string
      serialized.set(job, body)
    }
    // A string payload is sent as it is (already serialized by this route's schema above).
    return await reply.type('application/json; charset=utf-8').send(body as unknown as ReturnType<typeof toPublic>)
  })

  app.get('/v1/jobs', {
    config: { budget: 'poll' },
    schema: {
      tags: ['jobs'],
      summary: 'List jobs, newest first',
      description: 'Records without their reports. Page with `cursor` = the previous page\'s `next_cursor`.',
      querystring: ListJobsQuery,
      response: { 200: JobList, 400: ErrorBody }
    }
  }, async (request) => {
    const { status, limit = 20, cursor } = request.query
    const page = await app.jobs.list({ status, limit, cursor, tenant: request.principal.tenant })
    return {
      jobs: page.jobs.map((job) => {
        const { result: _result, ...summary } = toPublic(job)
        return summary
      }),
      next_cursor: page.nextCursor
    }
  })

  app.post('/v1/jobs/:job_id/cancel', {
    config: { budget: 'poll' },
    schema: {
      tags: ['jobs'],
      summary: 'Cancel a job; its run stops',
      params: JobIdParams,
      response: { 200: JobRecord, 400: ErrorBody, 404: ErrorBody, 409: ConflictBody, 503: ErrorBody }
    }
  }, async (request) => toPublic(await app.jobs.cancel(request.params.job_id, request.principal.tenant)))

  app.delete('/v1/jobs/:job_id', {
    config: { budget: 'poll' },
    schema: {
      tags: ['jobs'],
      summary: 'Delete a job (cancelling it first if it is still running)',
      params: JobIdParams,
      response: { 204: Type.Null({ description: 'Deleted' }), 400: ErrorBody, 404: ErrorBody, 503: ErrorBody }
    }
  }, async (request, reply) => {
    await app.jobs.delete(request.params.job_id, request.principal.tenant)
    return reply.code(204).send(null)
  })
}

export default jobRoutes
