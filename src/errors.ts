/**
 * An error that carries its meaning for a client: the HTTP status and the machine-readable code.
 * Any layer throws one without knowing about HTTP plumbing; the error plugin maps it by these
 * properties alone, so a new error needs no change there.
 */
export class ServiceError extends Error {
  override name = 'ServiceError'
  readonly statusCode: number
  readonly code: string
  /** Seconds after which retrying may work (sent as Retry-After). */
  readonly retryAfter: number | undefined
  /** Extra fields for the response body (a conflicting job's record). */
  readonly details: Record<string, unknown> | undefined

  constructor (statusCode: number, code: string, message: string, options: { retryAfter?: number, details?: Record<string, unknown> } = {}) {
    super(message)
    this.statusCode = statusCode
    this.code = code
    this.retryAfter = options.retryAfter
    this.details = options.details
  }
}

/** What the client is told about a failed request. */
export interface HttpProblem {
  statusCode: number
  error: string
  message: string
  /** Extra fields for the body (a conflicting job's record). */
  extra?: Record<string, unknown>
  retryAfter?: number
  /** For a 405: the methods the resource allows. */
  allow?: string
}

/** A route's own wording of an error: the problem to send (its status may differ), the body and its type. */
export type ProblemFormat = (problem: HttpProblem, err: Error & { validation?: unknown }) => { problem: HttpProblem, body: object, type: string }
