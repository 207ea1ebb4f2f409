import createClient from 'openapi-fetch'
import { setTimeout as sleep } from 'node:timers/promises'
import type { paths } from './generated/api-types.js'
import { parseEventStream } from './sse.js'

export type { paths } from './generated/api-types.js'
export type JobRecord = paths['/v1/jobs/{job_id}']['get']['responses'][200]['content']['application/json']
export type CreateResearchRequest = paths['/v1/research']['post']['requestBody']['content']['application/json']
export type JobList = paths['/v1/jobs']['get']['responses'][200]['content']['application/json']
export type ListOptions = NonNullable<paths['/v1/jobs']['get']['parameters']['query']>

/** What each event of GET /v1/jobs/{id}/events carries. */
export interface JobProgress {
  job_id: string
  status: JobRecord['status']
  progress: number
  current_step: string
  attempts: number
  error: string | null
}

export interface JobEvent { id: string, type: 'status' | 'progress' | 'completed' | 'failed' | 'cancelled', data: JobProgress }

/** An error answer of the API: its HTTP status, its `error` code and `message`. */
export class ApiError extends Error {
  override name = 'ApiError'
  /** `retryAfter`: seconds the server asked to wait (Retry-After), when it said. */
  readonly status: number
  readonly code: string
  readonly retryAfter: number | null
  constructor (status: number, code: string, message: string, retryAfter: number | null = null) {
    super(message)
    this.status = status
    this.code = code
    this.retryAfter = retryAfter
  }
}

export interface ResearchClientOptions {
  /** e.g. http://localhost:3000 */
  baseUrl: string
  /** Sent as `Authorization: Bearer <key>` when the API has keys. */
  apiKey?: string
  fetch?: typeof fetch
}

export interface WaitOptions {
  signal?: AbortSignal
  /** Told of every change (from the event stream, or from polls when streaming is not possible). */
  onProgress?: (progress: JobProgress) => void
  /** Without the stream, long polls are used (each answers as soon as the job changes); set this to poll plainly at this interval instead. */
  pollIntervalMs?: number
  /** false: no event stream, long polls (or plain polls, with pollIntervalMs). */
  stream?: boolean
}

const FINAL = new Set(['completed', 'failed', 'cancelled'])

/**
 * A typed client of the Deep Research Job API, generated from openapi/openapi.json
 * (openapi-typescript types, openapi-fetch calls). `api` is the raw typed client.
 */
export class ResearchClient {
  readonly api: ReturnType<typeof createClient<paths>>
  readonly #options: ResearchClientOptions
  readonly #fetch: typeof fetch

  constructor (options: ResearchClientOptions) {
    this.#options = options
    this.#fetch = options.fetch ?? globalThis.fetch
    this.api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      headers: this.#headers(),
      fetch: this.#fetch
    })
  }

  /** The API's base URL, as given. */
  get baseUrl (): string {
    return this.#options.baseUrl
  }

  async submit (body: CreateResearchRequest, options: { idempotencyKey?: string } = {}): Promise<JobRecord> {
    const { data, error, response } = await this.api.POST('/v1/research', {
      body,
      params: { header: options.idempotencyKey === undefined ? {} : { 'idempotency-key': options.idempotencyKey } }
    })
    return ok(data, error, response)
  }

  async get (jobId: string): Promise<JobRecord> {
    const { data, error, response } = await this.api.GET('/v1/jobs/{job_id}', { params: { path: { job_id: jobId } } })
    return ok(data, error, response)
  }

  async list (query: ListOptions = {}): Promise<JobList> {
    const { data, error, response } = await this.api.GET('/v1/jobs', { params: { query } })
    return ok(data, error, response)
  }

  /** Deletes the job (cancelling it first if it runs). */
  async delete (jobId: string): Promise<void> {
    const { error, response } = await this.api.DELETE('/v1/jobs/{job_id}', { params: { path: { job_id: jobId } } })
    if (!response.ok) ok(undefined, error, response)
  }

  async cancel (jobId: string): Promise<JobRecord> {
    const { data, error, response } = await this.api.POST('/v1/jobs/{job_id}/cancel', { params: { path: { job_id: jobId } } })
    return ok(data, error, response)
  }

  /**
   * The job's live events until its final one. A dropped connection is resumed with
   * Last-Event-ID (up to `maxReconnects` times in a row without an event in between).
   */
  async * events (jobId: string, options: { signal?: AbortSignal, lastEventId?: string, maxReconnects?: number } = {}): AsyncGenerator<JobEvent> {
    let lastEventId = options.lastEventId ?? null
    let failures = 0
    for (;;) {
      const headers: Record<string, string> = { ...this.#headers(), accept: 'text/event-stream' }
      if (lastEventId !== null) headers['last-event-id'] = lastEventId
      try {
        const response = await this.#fetch(`${this.#options.baseUrl.replace(/\/+$/, '')}/v1/jobs/${encodeURIComponent(jobId)}/events`, { headers, signal: options.signal })
        // 204: resumed at or after the final event; the stream is over.
        if (response.status === 204) return
        if (!response.ok || response.body === null) {
          const body = await response.json().catch(() => ({})) as { error?: string, message?: string }
          throw new ApiError(response.status, body.error ?? 'http_error', body.message ?? `HTTP ${response.status}`, retryAfter(response))
        }
        let received = 0
        for await (const message of parseEventStream(response.body)) {
          received++
          failures = 0
          if (message.id !== null) lastEventId = message.id
          const event = { id: message.id ?? '', type: message.event as JobEvent['type'], data: JSON.parse(message.data) as JobProgress }
          yield event
          if (FINAL.has(event.type)) return
        }
        // The server ended the stream before the job did (a restart): resume, but not forever.
        if (received === 0 && ++failures > (options.maxReconnects ?? 3)) throw new Error('the event stream keeps closing without events')
      } catch (err) {
        if (err instanceof ApiError || options.signal?.aborted === true) throw err
        if (++failures > (options.maxReconnects ?? 3)) throw err
      }
      await sleep(Math.min(5000, 250 * 2 ** failures), undefined, { signal: options.signal })
    }
  }

  /**
   * One conditional long poll: answers as soon as the job differs from the record whose ETag is
   * given (or, without one, as soon as it changes), or after `wait` seconds. `job` is null when
   * the record is unchanged (304).
   */
  async poll (jobId: string, options: { wait?: number, etag?: string | null, signal?: AbortSignal } = {}): Promise<{ job: JobRecord | null, etag: string | null }> {
    const headers: Record<string, string> = { ...this.#headers(), accept: 'application/json' }
    if (options.etag != null) headers['if-none-match'] = options.etag
    const query = options.wait === undefined ? '' : `?wait=${options.wait}`
    const response = await this.#fetch(`${this.#options.baseUrl.replace(/\/+$/, '')}/v1/jobs/${encodeURIComponent(jobId)}${query}`, { headers, signal: options.signal })
    const etag = response.headers.get('etag')
    if (response.status === 304) return { job: null, etag: etag ?? options.etag ?? null }
    const body = await response.json().catch(() => ({})) as JobRecord & { error?: string, message?: string }
    if (!response.ok) throw new ApiError(response.status, body.error ?? 'http_error', body.message ?? `HTTP ${response.status}`, retryAfter(response))
    return { job: body, etag }
  }

  /**
   * Waits for the job to end and returns its final record: follows the event stream, and long
   * polls when the stream cannot be used (an old server, a proxy that buffers it).
   */
  async waitForJob (jobId: string, options: WaitOptions = {}): Promise<JobRecord> {
    if (options.stream !== false) {
      try {
        for await (const event of this.events(jobId, { signal: options.signal })) options.onProgress?.(event.data)
        return await this.get(jobId)
      } catch (err) {
        if (err instanceof ApiError && ![404, 405, 503].includes(err.status)) throw err
        if (options.signal?.aborted === true) throw err
        // No usable stream: poll instead.
      }
    }
    let last = ''
    let etag: string | null = null
    let job: JobRecord | null = null
    for (;;) {
      const answer: { job: JobRecord | null, etag: string | null } | null = await this.poll(jobId, { wait: options.pollIntervalMs === undefined ? 30 : undefined, etag, signal: options.signal }).catch((err: unknown) => {
        // 503: the store is unavailable for a moment, or the job is not visible on this replica yet.
        if (err instanceof ApiError && err.status === 503) return null
        throw err
      })
      if (answer === null || options.pollIntervalMs !== undefined) await sleep(options.pollIntervalMs ?? 1000, undefined, { signal: options.signal })
      if (answer === null) continue
      etag = answer.etag
      job = answer.job ?? job
      if (job === null) continue
      const seen = `${job.status}|${job.progress}|${job.current_step}`
      if (seen !== last) {
        last = seen
        options.onProgress?.({ job_id: job.job_id, status: job.status, progress: job.progress, current_step: job.current_step, attempts: job.attempts, error: job.error })
      }
      if (FINAL.has(job.status)) return job
    }
  }

  #headers (): Record<string, string> {
    return this.#options.apiKey === undefined || this.#options.apiKey === '' ? {} : { authorization: `Bearer ${this.#options.apiKey}` }
  }
}

function ok<T> (data: T | undefined, error: unknown, response: Response): T {
  if (data !== undefined && response.ok) return data
  const body = (error ?? {}) as { error?: string, message?: string }
  throw new ApiError(response.status, body.error ?? 'http_error', body.message ?? `HTTP ${response.status}`, retryAfter(response))
}

function retryAfter (response: Response): number | null {
  const value = response.headers.get('retry-after')
  return value !== null && /^\d+$/.test(value) ? Number(value) : null
}
