import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { type HttpProblem, type ProblemFormat, ServiceError } from '../errors.js'
import { API_SECURITY_HEADERS } from './http-security.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's own wording of its errors; default: RFC 9457 problem details. */
    problemFormat?: ProblemFormat
  }
}

/** Where problem types live: one URN per code (documented in docs/api.md, Errors). */
export const PROBLEM_TYPE_PREFIX = 'urn:deep-research:problem:'

const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_body',
  FST_ERR_BAD_URL: 'invalid_url',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long'
}

/** Status codes the framework reports under codes of its own that mean something else to a client. */
const FASTIFY_STATUS: Record<string, number> = { FST_ERR_MAX_PARAM_LENGTH: 414 }

/** Maps any error to what the client is told. Nothing of a 5xx's cause reaches the client. */
export function describeError (err: FastifyError | Error): HttpProblem {
  if (err instanceof ServiceError) return { statusCode: err.statusCode, error: err.code, message: err.message, retryAfter: err.retryAfter, extra: err.details }
  const fastifyError = err as FastifyError
  if (fastifyError.validation !== undefined) {
    return { statusCode: 400, error: 'validation_error', message: validationMessage(fastifyError) }
  }
  if (err instanceof SyntaxError && fastifyError.statusCode === 400) {
    return { statusCode: 400, error: 'invalid_json', message: `Body is not valid JSON: ${err.message}` }
  }
  const status = FASTIFY_STATUS[fastifyError.code] ?? fastifyError.statusCode ?? 500
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
  const names: Record<number, string> = { 404: 'not found', 405: 'method not allowed', 406: 'not acceptable', 413: 'payload too large', 414: 'uri too long', 415: 'unsupported media type', 429: 'rate limited' }
  return names[status] ?? 'bad request'
}

function snakeCase (text: string): string {
  return text.replace(/\s+/g, '_')
}

/** The RFC 9457 document of a problem, with `error`/`message` (this API's shape) and `code` beside it. */
export function problemBody (problem: HttpProblem): Record<string, unknown> {
  return {
    type: `${PROBLEM_TYPE_PREFIX}${problem.error}`,
    title: STATUS_CODES[problem.statusCode] ?? 'Error',
    status: problem.statusCode,
    detail: problem.message,
    code: problem.error,
    error: problem.error,
    message: problem.message,
    ...problem.extra
  }
}

/** Sends an error: the API's security headers (hooks may not have run), Retry-After, Allow. */
export function sendProblem (reply: FastifyReply, problem: HttpProblem, body: object = problemBody(problem), type = 'application/problem+json; charset=utf-8'): FastifyReply {
  void reply.headers(API_SECURITY_HEADERS)
  if (problem.retryAfter !== undefined) void reply.header('retry-after', String(problem.retryAfter))
  if (problem.allow !== undefined) void reply.header('allow', problem.allow)
  return reply.code(problem.statusCode).type(type).send(body)
}

/** Errors the framework meets before a route is found (bad URL encoding, an over-long id). */
export function frameworkErrors (err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  sendProblem(reply, describeError(err))
}

/**
 * The methods each path allows, from the routes as they are registered: an unknown method on a
 * known path is a 405 naming them, and OPTIONS answers with them.
 */
class AllowedMethods {
  readonly #routes: Array<{ pattern: RegExp, method: string }> = []

  add (url: string, methods: string | string[]): void {
    const source = url.split('/').map((part) => part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('/')
    for (const method of Array.isArray(methods) ? methods : [methods]) this.#routes.push({ pattern: new RegExp(`^${source}/?$`), method })
  }

  for (url: string): string[] {
    const path = url.split('?')[0] ?? ''
    return [...new Set(this.#routes.filter((route) => route.pattern.test(path)).map((route) => route.method))].sort()
  }
}

/**
 * One error shape for the whole API: RFC 9457 problem details (`application/problem+json`) that
 * also carry `{ error, message }`, 4xx for the client's mistakes, a bare 500 (logged with its
 * cause) for ours.
 */
const errorsPlugin: FastifyPluginAsync = async (app) => {
  const allowed = new AllowedMethods()
  app.addHook('onRoute', (route) => { allowed.add(route.url, route.method) })
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const problem = describeError(err)
    if (problem.statusCode === 500) request.log.error({ err }, 'request failed')
    const format = request.routeOptions.config.problemFormat
    if (format === undefined) return sendProblem(reply, problem)
    const worded = format(problem, err)
    return sendProblem(reply, worded.problem, worded.body, worded.type)
  })
  app.setNotFoundHandler((request, reply) => {
    const methods = allowed.for(request.url)
    const path = request.url.split('?')[0] ?? ''
    if (methods.length > 0 && request.method === 'OPTIONS') {
      return reply.code(204).header('allow', [...methods, 'OPTIONS'].sort().join(', ')).send()
    }
    // The method is allowed here, but not this spelling of the path (a trailing slash): not found, not a 405 naming that very method.
    if (methods.length > 0 && !methods.includes(request.method)) {
      return sendProblem(reply, { statusCode: 405, error: 'method_not_allowed', message: `${request.method} is not allowed on ${path}; allowed: ${methods.join(', ')}`, allow: [...methods, 'OPTIONS'].sort().join(', ') })
    }
    return sendProblem(reply, { statusCode: 404, error: 'not_found', message: `Route ${request.method} ${path} not found` })
  })
}

export default fp(errorsPlugin, { name: 'errors' })
