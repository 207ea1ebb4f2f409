import { ApiError } from '../client/index.js'

/** Exit codes, as `--help` and the README list them. */
export const EXIT = { ok: 0, failed: 1, usage: 2, api: 3, timeout: 4, interrupted: 130 } as const

/** The command line itself is wrong: exit 2 with one line. */
export class UsageError extends Error {}

/** Waiting ran past --timeout: exit 4. */
export class WaitTimeoutError extends Error {}

/** Node's parseArgs errors, said the way the rest of the CLI says things. */
export function usageFromParseError (err: Error & { code?: string }): UsageError {
  const option = /'(-{1,2}[^'\s]+)/.exec(err.message)?.[1] ?? ''
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`unknown option ${option}`)
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return new UsageError(`${option.split(' ')[0] ?? option} needs a value`)
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return new UsageError('unexpected argument')
  return new UsageError(err.message)
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO/

/** What the CLI was doing when an error came: where it talks to, with a key or not, about which job. */
export interface ErrorContext {
  baseUrl: string
  keyGiven?: boolean
  jobId?: string
}

/** An API answer or a network failure, said for a person: what went wrong and what to try. */
export function describeError (err: unknown, { baseUrl, keyGiven = false, jobId }: ErrorContext): string {
  if (err instanceof ApiError) {
    const tail = `(HTTP ${err.status} ${err.code})`
    if (err.status === 401) {
      return keyGiven
        ? `the API did not accept the key: check --key or DEEP_RESEARCH_API_KEY ${tail}`
        : `the API needs a key: pass --key or set DEEP_RESEARCH_API_KEY ${tail}`
    }
    if (jobId !== undefined && err.code === 'not_found') return `the service cannot find job ${jobId}: it was never created, was deleted, or has expired ${tail}`
    if (jobId !== undefined && err.code === 'job_not_visible_yet') return `the service cannot find job ${jobId}: check the id; a job created moments ago may not be visible yet ${tail}`
    if (err.status === 403) return `this key may not do that: ${err.message} ${tail}`
    if (err.status === 429) return `rate limited: ${err.message}${err.retryAfter === null ? '' : ` (try again in ${err.retryAfter} s)`} ${tail}`
    return `${err.message} ${tail}`
  }
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  const code = cause?.code ?? (err as { code?: string }).code ?? ''
  const host = safeHost(baseUrl)
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve host "${host}": check --url or DEEP_RESEARCH_URL`
  if (code === 'ECONNREFUSED') return `cannot reach the API at ${baseUrl} (connection refused); is the service running? (--url or DEEP_RESEARCH_URL)`
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return `the connection to ${host} was cut`
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return `no answer from ${host} (timed out)`
  if (TLS_CODES.test(code)) return `TLS: the certificate of ${host} is not trusted (${code})`
  return cause?.message ?? (err as Error).message
}

/** Retrying may help: the network, a restarting server, a 503 or a 429. Other answers are final. */
export function isTransient (err: unknown): boolean {
  if (err instanceof ApiError) return err.status === 429 || err.status >= 500
  return !(err instanceof UsageError) && !(err instanceof WaitTimeoutError)
}

function safeHost (url: string): string {
  try {
    return new URL(url).hostname
  } catch {
    return url
  }
}

/** `host:port` and other scheme-less URLs mean http; anything else must parse as a URL. */
export function normalizeUrl (url: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`
  let parsed: URL
  try {
    parsed = new URL(withScheme)
  } catch {
    throw new UsageError(`--url is not a URL: ${url}`)
  }
  if (!['http:', 'https:'].includes(parsed.protocol)) throw new UsageError(`--url must be http:// or https://, not ${parsed.protocol}`)
  return withScheme.replace(/\/+$/, '')
}
