import fp from 'fastify-plugin'
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { IdempotencyKeyReusedError, IdempotentJobMissingError, InvalidCursorError, JobAlreadyFinishedError, JobNotFoundError, JobNotVisibleYetError, UnusableOptionsError } from '../jobs/service.js'
import { toPublic } from '../jobs/records.js'
import { StoreFullError, StoreUnavailableError } from '../store/job-store.js'

export interface HttpProblem {
  statusCode: number
  error: string
  message: string
  /** Extra fields for the body (a conflicting job's record). */
  extra?: Record<string, unknown>
  retryAfter?: number
}

const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_body'
}

/** Maps any error to what the client is told. Nothing of a 5xx's cause reaches the client. */
export function describeError (err: FastifyError | Error): HttpProblem {
  if (err instanceof JobNotFoundError) return { statusCode: 404, error: 'not_found', message: err.message }
  if (err instanceof JobNotVisibleYetError) return { statusCode: 503, error: 'job_not_visible_yet', message: `${err.message}; retry shortly`, retryAfter: 1 }
  if (err instanceof JobAlreadyFinishedError) {
    return { statusCode: 409, error: 'already_finished', message: err.message, extra: { job: toPublic(err.job) } }
  }
  if (err instanceof IdempotencyKeyReusedError) return { statusCode: 422, error: 'idempotency_key_reused', message: err.message }
  if (err instanceof IdempotentJobMissingError) return { statusCode: 409, error: 'idempotent_job_missing', message: err.message, retryAfter: 1 }
  if (err instanceof UnusableOptionsError) return { statusCode: 400, error: err.code, message: err.message }
  if (err instanceof InvalidCursorError) return { statusCode: 400, error: 'invalid_cursor', message: err.message }
  if (err instanceof StoreUnavailableError) return { statusCode: 503, error: 'store_unavailable', message: `${err.message}; retry shortly`, retryAfter: 1 }
  if (err instanceof StoreFullError) return { statusCode: 503, error: 'store_full', message: err.message, retryAfter: 5 }
  const fastifyError = err as FastifyError
  if (fastifyError.validation !== undefined) {
    return { statusCode: 400, error: 'validation_error', message: validationMessage(fastifyError) }
  }
  if (err instanceof SyntaxError && fastifyError.statusCode === 400) {
    return { statusCode: 400, error: 'invalid_json', message: `Body is not valid JSON: ${err.message}` }
  }
  const status = fastifyError.statusCode ?? 500
  if (status >= 400 && status < 500) {
    return { statusCode: status, error: FASTIFY_CODES[fastifyError.code] ?? snakeCase(statusName(status)), message: err.message }
  }
  return { statusCode: 500, error: 'internal_error', message: 'Internal server error' }
}

function validationMessage (err: FastifyError): string {
  const first = err.validation?.[0]
  const where = `${err.validationContext ?? 'request'}${first?.instancePath ?? ''}`
  const params = (first?.params ?? {}) as Record<string, unknown>
  if (typeof params.additionalProperty === 'string') return `${where} has an unknown field "${params.additionalProperty}"`
  if (typeof params.missingProperty === 'string') return `${where} is missing the required field "${params.missingProperty}"`
  if (Array.isArray(params.allowedValues)) return `${where} must be one of: ${params.allowedValues.join(', ')}`
  if (first?.keyword === 'pattern' && first.instancePath.endsWith('/query')) return `${where} must not be blank`
  if (first?.keyword === 'pattern' && first.instancePath.endsWith('/job_id')) return `${where} must be a UUID: 32 hex digits as 8-4-4-4-12`
  return `${where} ${first?.message ?? 'is invalid'}`
}

function statusName (status: number): string {
  const names: Record<number, string> = { 404: 'not found', 405: 'method not allowed', 406: 'not acceptable', 413: 'payload too large', 415: 'unsupported media type', 429: 'rate limited' }
  return names[status] ?? 'bad request'
}

function snakeCase (text: string): string {
  return text.replace(/\s+/g, '_')
}

export function sendProblem (reply: FastifyReply, problem: HttpProblem, body: object): FastifyReply {
  if (problem.retryAfter !== undefined) void reply.header('retry-after', String(problem.retryAfter))
  return reply.code(problem.statusCode).type('application/json; charset=utf-8').send(body)
}

/**
 * One error shape for the whole API: `{ error, message }`, 4xx for the client's mistakes,
 * a bare 500 (logged with its cause) for ours.
 */
const errorsPlugin: FastifyPluginAsync = async (app) => {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const problem = describeError(err)
    if (problem.statusCode === 500) request.log.error({ err }, 'request failed')
    return sendProblem(reply, problem, { error: problem.error, message: problem.message, ...problem.extra })
  })
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({ error: 'not_found', message: `Route ${request.method} ${request.url.split('?')[0] ?? ''} not found` })
  })
}

export default fp(errorsPlugin, { name: 'errors' })
