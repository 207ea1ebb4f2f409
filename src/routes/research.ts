import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { optionsProblem, resolveOptions, toPublic } from '../jobs/records.js'
import { UnusableOptionsError } from '../jobs/service.js'
import { JobRecord } from '../schemas/job.js'
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
    const { query, webhook_url: webhookUrl = null, ...rest } = request.body
    const depth = rest.depth ?? 'standard'
    const options = resolveOptions(rest)
    const invalid = optionsProblem(options)
    if (invalid !== null) throw new UnusableOptionsError(invalid, 'invalid_options')
    const unavailable = app.engine.unavailable?.(options) ?? null
    if (unavailable !== null) throw new UnusableOptionsError(unavailable, 'source_unavailable')
    if (webhookUrl !== null) {
      if (app.webhooks === null) throw new UnusableOptionsError('webhooks are not enabled on this server (it has no WEBHOOK_SECRET)', 'webhooks_unavailable')
      const refused = app.webhooks.refuses(webhookUrl)
      if (refused !== null) throw new UnusableOptionsError(`webhook_url is refused: ${refused}`, 'invalid_options')
    }
    const tenant = request.principal.tenant
    const key = request.headers['idempotency-key']
    const { job, replayed } = key === undefined
      ? { job: await app.jobs.create(query, depth, tenant, options, webhookUrl), replayed: false }
      : await app.jobs.createOnce(query, depth, tenant, key, options, webhookUrl)
    void reply.header('location', `/v1/jobs/${job.job_id}`)
    if (replayed) return reply.code(200).header('idempotent-replayed', 'true').send(toPublic(job))
    return reply.code(202).header('retry-after', String(POLL_AFTER_SECONDS)).send(toPublic(job))
  })
}

export default researchRoutes
