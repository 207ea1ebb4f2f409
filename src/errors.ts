/**
 * An error that carries its HTTP meaning: the status and the machine-readable code a client gets.
 * Any layer may throw one without knowing about HTTP plumbing; the error plugin maps it by these
 * properties.
 */
export class ServiceError extends Error {
  override name = 'ServiceError'
  readonly statusCode: number
  readonly code: string
  /** Seconds after which retrying may work (sent as Retry-After). */
  readonly retryAfter: number | undefined

  constructor (statusCode: number, code: string, message: string, retryAfter?: number) {
    super(message)
    this.statusCode = statusCode
    this.code = code
    this.retryAfter = retryAfter
  }
}
