/**
 * The error catalogue: every code a client can receive, with its HTTP status, the title of its
 * problem document and what it means. Problem documents, the OpenAPI document's error answers and
 * the table in docs/api.md (held equal by test/errors.test.ts) are made from it, so a code
 * exists once.
 */
export const ERROR_CATALOGUE = {
  validation_error: { status: 400, title: 'Invalid request', meaning: 'A field of the body, query string or path does not fit its schema; the message names it.' },
  invalid_json: { status: 400, title: 'Invalid JSON', meaning: 'The body is not valid JSON.' },
  invalid_body: { status: 400, title: 'Invalid body', meaning: 'The body is empty where JSON is expected, or its Content-Length is wrong.' },
  invalid_url: { status: 400, title: 'Invalid URL', meaning: 'The URL is not valid percent-encoding.' },
  invalid_cursor: { status: 400, title: 'Invalid cursor', meaning: '`cursor` is not a `next_cursor` this API returned.' },
  invalid_options: { status: 400, title: 'Invalid options', meaning: 'The options fit the schema but not each other, or `webhook_url` is refused (the message says why).' },
  source_unavailable: { status: 400, title: 'Source unavailable', meaning: 'A source the request asks for is not configured on this server (`web` without a search provider).' },
  webhooks_unavailable: { status: 400, title: 'Webhooks unavailable', meaning: 'The request has a `webhook_url`, but this server has no `WEBHOOK_SECRET`.' },
  bad_request: { status: 400, title: 'Bad request', meaning: 'The request is not valid HTTP.' },
  unauthorized: { status: 401, title: 'Unauthorized', meaning: 'No API key, or one that is not valid (send `Authorization: Bearer <key>` or `X-API-Key`).' },
  forbidden: { status: 403, title: 'Forbidden', meaning: 'The route needs an admin key.' },
  not_found: { status: 404, title: 'Not found', meaning: 'No such job (never created, deleted or expired), corpus document or route.' },
  method_not_allowed: { status: 405, title: 'Method not allowed', meaning: 'The path does not take this method; `Allow` lists the ones it takes.' },
  request_timeout: { status: 408, title: 'Request timeout', meaning: 'The request did not arrive in full in time.' },
  already_finished: { status: 409, title: 'Already finished', meaning: 'The job is already completed, failed or cancelled; its record is in `job`.' },
  idempotent_job_missing: { status: 409, title: 'Idempotent job missing', meaning: 'This Idempotency-Key created a job that is not available now (still being stored, or deleted).' },
  payload_too_large: { status: 413, title: 'Payload too large', meaning: 'The body is over `BODY_LIMIT_BYTES`.' },
  uri_too_long: { status: 414, title: 'URI too long', meaning: 'A path parameter is far too long to be what it names.' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type', meaning: 'The body is not `application/json`.' },
  idempotency_key_reused: { status: 422, title: 'Idempotency key reused', meaning: 'This Idempotency-Key was used with another body.' },
  rate_limited: { status: 429, title: 'Rate limited', meaning: 'The key or address spent its budget of creates or reads for the window; `Retry-After` says when to try again.' },
  too_many_auth_failures: { status: 429, title: 'Too many wrong keys', meaning: 'Too many wrong API keys from this address; `Retry-After` says when to try again.' },
  quota_exceeded: { status: 429, title: 'Quota exceeded', meaning: 'The tenant (API key) has as many jobs queued as its quota allows (`TENANT_MAX_QUEUED`, or its own in `TENANT_QUOTAS`); the body names the quota (`quota`) and its value (`limit`). Retry once some have started.' },
  too_many_streams: { status: 429, title: 'Too many streams', meaning: 'Too many open event streams for this client or process; close one, or long poll with `?wait=`.' },
  headers_too_large: { status: 431, title: 'Headers too large', meaning: 'The request line and headers are over the server\'s limit (16 KB).' },
  internal_error: { status: 500, title: 'Internal error', meaning: 'A fault of the service; it is logged with its cause, which the client is never sent.' },
  store_unavailable: { status: 503, title: 'Store unavailable', meaning: 'Redis is unreachable or refuses writes, and the answer cannot come from this process alone; retry after `Retry-After`.' },
  store_full: { status: 503, title: 'Store full', meaning: 'The in-memory store holds `MEMORY_MAX_JOBS` unfinished jobs, or Redis is too full to take more jobs and leave room for the jobs already accepted to finish (`REDIS_ADMIT_MEMORY_PERCENT` of its maxmemory); retry after `Retry-After`.' },
  job_not_visible_yet: { status: 503, title: 'Job not visible yet', meaning: 'No store holds a job whose id was issued moments ago (it may be on a replica cut off from Redis); retry shortly.' },
  corpus_unavailable: { status: 503, title: 'Corpus unavailable', meaning: 'The corpus folder cannot be read.' },
  shutting_down: { status: 503, title: 'Shutting down', meaning: 'This process is stopping; retry, and another replica (or this one restarted) answers.' }
} as const satisfies Record<string, { status: number, title: string, meaning: string }>

export type ErrorCode = keyof typeof ERROR_CATALOGUE

/** The codes answered with a status, in catalogue order. */
export function codesWithStatus (status: number): ErrorCode[] {
  return (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).filter((code) => ERROR_CATALOGUE[code].status === status)
}

/**
 * An error that carries its meaning for a client: a code of the catalogue (which gives the HTTP
 * status). Any layer throws one without knowing about HTTP plumbing; the error plugin maps it by
 * these properties alone, so a new error needs no change there.
 */
export class ServiceError extends Error {
  override name = 'ServiceError'
  readonly statusCode: number
  readonly code: ErrorCode
  /** Seconds after which retrying may work (sent as Retry-After). */
  readonly retryAfter: number | undefined
  /** Extra fields for the response body (a conflicting job's record). */
  readonly details: Record<string, unknown> | undefined

  constructor (code: ErrorCode, message: string, options: { retryAfter?: number, details?: Record<string, unknown> } = {}) {
    super(message)
    this.statusCode = ERROR_CATALOGUE[code].status
    this.code = code
    this.retryAfter = options.retryAfter
    this.details = options.details
  }
}

/** What the client is told about a failed request. */
export interface HttpProblem {
  statusCode: number
  error: ErrorCode
  message: string
  /** Extra fields for the body (a conflicting job's record). */
  extra?: Record<string, unknown>
  retryAfter?: number
  /** For a 405: the methods the resource allows. */
  allow?: string
}

/** The problem of a catalogue code, its status from the catalogue. */
export function problem (code: ErrorCode, message: string, options: Omit<HttpProblem, 'statusCode' | 'error' | 'message'> = {}): HttpProblem {
  return { statusCode: ERROR_CATALOGUE[code].status, error: code, message, ...options }
}

/** A route's own wording of an error: the problem to send (its status may differ), the body and its type. */
export type ProblemFormat = (problem: HttpProblem, err: Error & { validation?: unknown }) => { problem: HttpProblem, body: object, type: string }
