import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { retryDelayMs } from '../../backoff.js'
import { plainReason } from '../../net/plain-reason.js'
import { PermanentError } from '../engine.js'

/** A provider (search API, LLM) that stayed unavailable through its retries, or refused the call. */
export class ProviderError extends PermanentError {
  override name = 'ProviderError'
}

export interface RetryPolicy {
  /** Retries after the first call (default 3). */
  retries: number
  /** Backoff before the first retry, doubled each time, with jitter (default 500 ms). */
  baseMs: number
  /** Longest wait between tries, Retry-After included (default 8000 ms). */
  maxMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, baseMs: 500, maxMs: 8000 }

export interface JsonCall {
  /** Who is called, for error messages: "SearXNG", "the LLM"... */
  provider: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: unknown
  signal: AbortSignal
  /** Deadline of one try (default 60 s). */
  timeoutMs?: number
  retry?: RetryPolicy
}

const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504])

/**
 * Calls a JSON API. Rate limits (429), 5xx answers, timeouts and network errors are retried
 * with backoff (honouring Retry-After); other 4xx answers and exhausted retries end in a
 * ProviderError with a readable reason. The job's AbortSignal stops it at once, mid-wait too.
 */
export async function callJson (url: string, call: JsonCall): Promise<unknown> {
  const retry = call.retry ?? DEFAULT_RETRY
  let lastProblem = ''
  let lastError: unknown
  for (let attempt = 0; ; attempt++) {
    call.signal.throwIfAborted()
    let waitMs: number | null = null
    try {
      const response = await request(url, {
        method: call.method ?? (call.body === undefined ? 'GET' : 'POST'),
        headers: { accept: 'application/json', ...(call.body === undefined ? {} : { 'content-type': 'application/json' }), ...call.headers },
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        signal: AbortSignal.any([call.signal, AbortSignal.timeout(call.timeoutMs ?? 60_000)])
      })
      const text = await response.body.text()
      if (response.statusCode >= 200 && response.statusCode < 300) {
        try {
          return JSON.parse(text)
        } catch {
          throw new ProviderError(`${call.provider} answered HTTP ${response.statusCode} with a body that is not JSON`)
        }
      }
      lastProblem = `HTTP ${response.statusCode}${describeBody(text)}`
      if (!RETRYABLE.has(response.statusCode)) throw new ProviderError(`${call.provider} refused the call: ${lastProblem}`)
      waitMs = retryAfterMs(response.headers['retry-after'])
    } catch (err) {
      if (call.signal.aborted) throw call.signal.reason
      if (err instanceof ProviderError) throw err
      // The job's error is shown to its tenant: plain words, not the provider's address (the log has it, as the cause).
      lastError = err
      lastProblem = (err as Error).name === 'TimeoutError' ? 'timed out' : plainReason(err)
    }
    if (attempt >= retry.retries) {
      throw new ProviderError(`${call.provider} is unavailable: ${lastProblem} (after ${attempt + 1} tries)`, { cause: lastError })
    }
    const backoff = retryDelayMs(attempt + 1, { baseMs: retry.baseMs, maxMs: retry.maxMs })
    await sleep(Math.min(retry.maxMs, Math.max(backoff, waitMs ?? 0)), undefined, { signal: call.signal }).catch(() => { throw call.signal.reason })
  }
}

/** Seconds or an HTTP date, as RFC 9110 allows; null when absent or unreadable. */
export function retryAfterMs (header: string | string[] | undefined): number | null {
  if (typeof header !== 'string') return null
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(header)
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now())
}

function describeBody (text: string): string {
  let message: unknown
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string, message?: unknown }
    message = typeof body.error === 'object' ? body.error?.message : body.error ?? body.message
  } catch {
    message = text
  }
  const readable = typeof message === 'string' ? message.replace(/\s+/g, ' ').trim().slice(0, 200) : ''
  return readable === '' ? '' : `: ${readable}`
}
