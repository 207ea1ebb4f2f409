import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { ERROR_CATALOGUE, type ErrorCode, type HttpProblem, type ProblemFormat, ServiceError, problem } from '../errors.js'
import { API_SECURITY_HEADERS } from './http-security.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's own wording of its errors; default: RFC 9457 problem details. */
    problemFormat?: ProblemFormat
  }
}

/** Where problem types live: one URN per code (documented in docs/api.md, Errors). */
export const PROBLEM_TYPE_PREFIX = 'urn:deep-research:problem:'

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_body',
  FST_ERR_BAD_URL: 'invalid_url',
  // The framework says 400 for a path parameter over its length limit: to a client the URI is too long.
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long'
}

/** The code of any other 4xx the framework or a plugin raises, by its status. */
const CODES_BY_STATUS: Record<number, ErrorCode> = {
  404: 'not_found', 405: 'method_not_allowed', 408: 'request_timeout', 413: 'payload_too_large', 414: 'uri_too_long', 415: 'unsupported_media_type', 429: 'rate_limited', 431: 'headers_too_large'
}

/** Maps any error to what the client is told. Nothing of a 5xx's cause reaches the client. */
export function describeError (err: FastifyError | Error): HttpProblem {
  if (err instanceof ServiceError) return problem(err.code, err.message, { retryAfter: err.retryAfter, extra: err.details })
  const fastifyError = err as FastifyError
  if (fastifyError.validation !== undefined) {
    return problem('validation_error', validationMessage(fastifyError))
  }
  if (err instanceof SyntaxError && fastifyError.statusCode === 400) {
    return problem('invalid_json', `Body is not valid JSON: ${err.message}`)
  }
  const known = FASTIFY_CODES[fastifyError.code]
  if (known !== undefined) return problem(known, err.message)
  const status = fastifyError.statusCode ?? 500
  if (status >= 400 && status < 500) return problem(CODES_BY_STATUS[status] ?? 'bad_request', err.message)
  return problem('internal_error', 'Internal server error')
}

function validationMessage (err: FastifyError): string {
  const first = err.validation?.[0]
  const where = `${err.validationContext ?? 'request'}${first?.instancePath ?? ''}`
  const params = (first?.params ?? {}) as Record<string, unknown>
  if (typeof params.additionalProperty === 'string') return `${where} has an unknown field "${params.additionalProperty}"`
  if (typeof params.missingProperty === 'string') return `${where} is missing the required field "${params.missingProperty}"`
  if (Array.isArray(params.allowedValues)) return `${where} must be one of: ${params.allowedValues.join(', ')}`
  if (first?.keyword === 'pattern' && first.instancePath.endsWith('/query')) return 'The question (query) is blank: write the question to research'
  if (first?.keyword === 'pattern' && first.instancePath.endsWith('/job_id')) return `${where} must be a UUID: 32 hex digits as 8-4-4-4-12`
  return `${where} ${first?.message ?? 'is invalid'}`
}

/** The RFC 9457 document of a problem, with `error`/`message` (this API's shape) and `code` beside it. */
export function problemBody (answer: HttpProblem): Record<string, unknown> {
  return {
    type: `${PROBLEM_TYPE_PREFIX}${answer.error}`,
    title: ERROR_CATALOGUE[answer.error].title,
    status: answer.statusCode,
    detail: answer.message,
    code: answer.error,
    error: answer.error,
    message: answer.message,
    ...answer.extra
  }
}

/** Sends an error: the API's security headers (hooks may not have run), Retry-After, Allow. */
export function sendProblem (reply: FastifyReply, answer: HttpProblem, body: object = problemBody(answer), type = 'application/problem+json; charset=utf-8'): FastifyReply {
  void reply.headers(API_SECURITY_HEADERS)
  if (answer.retryAfter !== undefined) void reply.header('retry-after', String(answer.retryAfter))
  if (answer.allow !== undefined) void reply.header('allow', answer.allow)
  return reply.code(answer.statusCode).type(type).send(body)
}

/**
 * Errors of Node's HTTP parser, met before there is a request to answer (Fastify's
 * `clientErrorHandler`): a request that did not arrive in time, headers over the size limit,
 * bytes that are not HTTP. Answered with a problem document on the socket, which then closes.
 */
export function clientErrors (err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const answer = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? problem('request_timeout', 'The request did not arrive in full in time')
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? problem('headers_too_large', 'The request line and headers are over the server\'s limit (16 KB): shorten the URL or the headers')
      : problem('bad_request', 'The request is not valid HTTP')
  if (socket.writable) {
    const body = JSON.stringify(problemBody(answer))
    const headers = Object.entries(API_SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')
    socket.write(`HTTP/1.1 ${answer.statusCode} ${ERROR_CATALOGUE[answer.error].title}\r\nContent-Type: application/problem+json; charset=utf-8\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroySoon()
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
    const answer = describeError(err)
    if (answer.statusCode === 500) request.log.error({ err }, 'request failed')
    const format = request.routeOptions.config.problemFormat
    if (format === undefined) return sendProblem(reply, answer)
    const worded = format(answer, err)
    return sendProblem(reply, worded.problem, worded.body, worded.type)
  })
  // A request that arrives while the process stops gets a problem document, not Fastify's plain
  // 503. The server's request listener is swapped when the close begins, so the requests before
  // pay nothing for it (a per-request hook cost polls several percent).
  app.addHook('preClose', async () => {
    if (!app.server.listening) return
    const answer = problem('shutting_down', 'This process is shutting down; retry, and another replica answers', { retryAfter: 1 })
    const body = JSON.stringify(problemBody(answer))
    app.server.removeAllListeners('request')
    app.server.on('request', (_request: IncomingMessage, response: ServerResponse) => {
      response.writeHead(answer.statusCode, { ...API_SECURITY_HEADERS, 'content-type': 'application/problem+json; charset=utf-8', 'retry-after': '1', connection: 'close' }).end(body)
    })
  })
  app.setNotFoundHandler((request, reply) => {
    const methods = allowed.for(request.url)
    const path = request.url.split('?')[0] ?? ''
    if (methods.length > 0 && request.method === 'OPTIONS') {
      return reply.code(204).header('allow', [...methods, 'OPTIONS'].sort().join(', ')).send()
    }
    // The method is allowed here, but not this spelling of the path (a trailing slash): not found, not a 405 naming that very method.
    if (methods.length > 0 && !methods.includes(request.method)) {
      return sendProblem(reply, problem('method_not_allowed', `${request.method} is not allowed on ${path}; allowed: ${methods.join(', ')}`, { allow: [...methods, 'OPTIONS'].sort().join(', ') }))
    }
    return sendProblem(reply, problem('not_found', `Route ${request.method} ${path} not found`))
  })
}

export default fp(errorsPlugin, { name: 'errors' })
