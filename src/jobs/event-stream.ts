import { FINAL_EVENT_TYPES, type JobEvent, eventData, eventType } from '../schemas/events.js'
import { type StoredJob, isFinal } from '../schemas/job.js'
import type { JobWatch } from '../store/notices.js'

/** What a stream reads: a job's events, its record, and notices of its changes. */
export interface EventSource {
  events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]>
  /** The record as stored now, without an owner check (the stream checked it when it opened). */
  peek (id: string): Promise<StoredJob | null>
  /** A watch on the job's changes after `version`; close it when done. */
  watch (id: string, version: number): JobWatch
  /** Whether notices arrive now (false while the notice subscriber reconnects: read on a timer). */
  readonly noticesLive: boolean
}

export interface EventStreamOptions {
  heartbeatMs: number
  /** How often a stream reads again while notices cannot be trusted. */
  pollMs: number
  /** A record lives this long after its last write: a stream of a job that expired ends. */
  ttlSeconds: number
  /** Events read at a time. */
  batch?: number
}

/**
 * One client's stream of a job's events, as Server-Sent Events text, independent of HTTP. It
 * reads events when a notice says the job changed (an idle stream reads nothing), writes a
 * heartbeat comment when quiet, and ends after the final event, or when the job is deleted or
 * expires, or on `signal`.
 */
export class JobEventStream {
  readonly #source: EventSource
  readonly #job: StoredJob
  readonly #options: Required<EventStreamOptions>
  readonly #watch: JobWatch
  #events: JobEvent[]
  #cursor: string | null

  private constructor (source: EventSource, job: StoredJob, watch: JobWatch, events: JobEvent[], cursor: string | null, options: Required<EventStreamOptions>) {
    this.#source = source
    this.#job = job
    this.#watch = watch
    this.#events = events
    this.#cursor = cursor
    this.#options = options
  }

  /**
   * Opens the stream after `cursor` (a Last-Event-ID, or null for the whole history); 'over' when
   * the client already has the final event (nothing to send: a 204 tells an EventSource to stop).
   */
  static async open (source: EventSource, job: StoredJob, cursor: string | null, options: EventStreamOptions): Promise<JobEventStream | 'over'> {
    const settings = { batch: 100, ...options }
    // Watched before the first read, so no change slips between the read and the wait.
    const watch = source.watch(job.job_id, job.version)
    let events: JobEvent[]
    try {
      events = await source.events(job.job_id, cursor, settings.batch)
    } catch (err) {
      watch.close()
      throw err
    }
    if (cursor !== null && events.length === 0 && isFinal(job.status)) {
      watch.close()
      return 'over'
    }
    if (cursor === null && events.length === 0) {
      // A job whose history is not kept (created on a replica cut off from Redis): its state as one event.
      events = [{ id: '0-1', type: eventType(null, job.status), data: eventData(job) }]
    }
    return new JobEventStream(source, job, watch, events, cursor, settings)
  }

  /** Writes the stream's text until it ends; the watch is closed when it does. */
  async run (write: (text: string) => void, signal: AbortSignal): Promise<void> {
    const { heartbeatMs, pollMs, ttlSeconds, batch } = this.#options
    const id = this.#job.job_id
    let expiresAt = Date.parse(this.#job.expires_at)
    let lastWrite = Date.now()
    try {
      // A client gone, or a close begun, while the stream was opening: nothing to write.
      if (signal.aborted) return
      write('retry: 1000\n\n')
      for (;;) {
        for (const event of this.#events) {
          write(`id: ${event.id}\nevent: ${event.type}\ndata: ${event.data}\n\n`)
          this.#cursor = event.id
          lastWrite = Date.now()
          if (FINAL_EVENT_TYPES.has(event.type)) return
        }
        if (this.#events.length < batch) {
          const live = this.#source.noticesLive
          const waitMs = Math.max(0, Math.min(heartbeatMs - (Date.now() - lastWrite), expiresAt - Date.now(), live ? Infinity : pollMs))
          const end = await this.#watch.next(waitMs, signal)
          if (end === 'aborted' || end === 'deleted') return
          if (end === 'changed') expiresAt = Date.now() + ttlSeconds * 1000
          if (end === 'timeout') {
            if (Date.now() >= expiresAt) {
              const current = await this.#source.peek(id)
              if (current === null) return
              expiresAt = Date.parse(current.expires_at)
            }
            if (Date.now() - lastWrite >= heartbeatMs) {
              write(': heartbeat\n\n')
              lastWrite = Date.now()
            }
            if (live && Date.now() < expiresAt) {
              this.#events = []
              continue
            }
          }
        }
        try {
          this.#events = await this.#source.events(id, this.#cursor, batch)
        } catch {
          this.#events = []
        }
      }
    } finally {
      this.#watch.close()
    }
  }
}
