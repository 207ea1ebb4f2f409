import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { toPublic } from '../jobs/records.js'
import { JobRecord } from '../schemas/job.js'
import { CreateResearchBody } from '../schemas/requests.js'
import { ErrorBody } from '../schemas/responses.js'

/** Seconds a client should wait before its first poll. */
export const POLL_AFTER_SECONDS = 1

const researchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/research', {
    config: { budget: 'create' },
    schema: {
      tags: ['research'],
      summary: 'Start a research job',
      description: 'Answers 202 at once with the job record; the work runs in the background. Poll the `Location` header.',
      body: CreateResearchBody,
      response: {
        202: JobRecord,
        400: ErrorBody,
        415: ErrorBody,
        503: ErrorBody
      }
    }
  }, async (request, reply) => {
    const job = await app.jobs.create(request.body.query, request.body.depth ?? 'standard', request.principal.tenant)
    return reply
      .code(202)
      .header('location', `/v1/jobs/${job.job_id}`)
      .header('retry-after', String(POLL_AFTER_SECONDS))
      .send(toPublic(job))
  })
}

export default researchRoutes
