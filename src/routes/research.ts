import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { JobRecord, toPublic } from '../schemas/job.js'
import { CreateResearchBody } from '../schemas/requests.js'
import { Type } from 'typebox'
import { problems, withHeaders } from '../schemas/responses.js'

const CreateHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: '^[\\x21-\\x7e]+$',
    description: 'Any unique string (e.g. a UUID). The same key and body within 24 h return the same job (200) instead of creating another; the same key with another body is a 422.'
  }))
})

const LOCATION = { type: 'string', description: 'The job: `/v1/jobs/{job_id}`' }

/** Seconds a client should wait before its first poll. */
export const POLL_AFTER_SECONDS = 1

const researchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/research', {
    config: { budget: 'create' },
    schema: {
      operationId: 'createResearch',
      tags: ['research'],
      summary: 'Start a research job',
      description: 'Answers 202 at once with the job record; the work runs in the background. Follow it at `Location`: poll (long poll with `?wait=`), or watch its events. ' +
        'With an `Idempotency-Key`, a retry of the same request answers 200 with the job it created.',
      body: CreateResearchBody,
      headers: CreateHeaders,
      response: {
        200: withHeaders('A replay: this Idempotency-Key already created this job', JobRecord, { location: LOCATION, 'idempotent-replayed': { type: 'string', description: '`true`' } }),
        202: withHeaders('Accepted: the job is queued', JobRecord, { location: LOCATION, 'retry-after': { type: 'integer', description: 'Seconds before the first poll is worth it' } }),
        ...problems(400, 401, 409, 413, 415, 422, 429, 503)
      }
    }
  }, async (request, reply) => {
    const { job, replayed } = await app.jobs.create({ ...request.body, tenant: request.principal.tenant, idempotencyKey: request.headers['idempotency-key'] })
    void reply.header('location', `/v1/jobs/${job.job_id}`)
    if (replayed) return reply.code(200).header('idempotent-replayed', 'true').send(toPublic(job))
    return reply.code(202).header('retry-after', String(POLL_AFTER_SECONDS)).send(toPublic(job))
  })
}

export default researchRoutes
