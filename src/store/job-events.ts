import { type JobEvent, compareEventIds, eventData, eventType } from '../schemas/events.js'
import { type StoredJob, isFinal } from '../schemas/job.js'
import { dropOldest } from './bounded.js'

/** Reads a job's events after a given event id (null: from the first). */
export interface JobEventLog {
  events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]>
}

interface LocalLog { events: JobEvent[], expiresAtMs: number }

/**
 * Events of the jobs this process writes without Redis (no REDIS_URL, or during an outage),
 * bounded in events per job and in jobs, and expiring with the job's TTL.
 */
export class LocalEventLog implements JobEventLog {
  readonly #logs = new Map<string, LocalLog>()
  readonly #maxEvents: number
  readonly #maxJobs: number
  readonly #ttlMs: number
  readonly #now: () => number

  constructor (options: { maxEvents: number, maxJobs: number, ttlSeconds: number, now?: () => number }) {
    this.#maxEvents = options.maxEvents
    this.#maxJobs = options.maxJobs
    this.#ttlMs = options.ttlSeconds * 1000
    this.#now = options.now ?? Date.now
  }

  /** Records the write of `job` over a record whose status was `previousStatus` (null: new). */
  append (job: StoredJob, previousStatus: string | null): void {
    const now = this.#now()
    let log = this.#logs.get(job.job_id)
    if (log === undefined || log.expiresAtMs <= now) {
      log = { events: [], expiresAtMs: 0 }
      if (this.#logs.size >= this.#maxJobs) dropOldest(this.#logs, Math.max(1, Math.floor(this.#maxJobs / 100)))
    }
    // Re-inserted so the Map stays in "least recently written first" order for eviction.
    this.#logs.delete(job.job_id)
    this.#logs.set(job.job_id, log)
    log.expiresAtMs = now + this.#ttlMs
    const data = eventData(job)
    const last = log.events.at(-1)
    if (last !== undefined && last.data === data) return
    const [lastMs = 0, lastSeq = 0] = (last?.id ?? '0-0').split('-').map(Number)
    const id = now > lastMs ? `${now}-0` : `${lastMs}-${lastSeq + 1}`
    const event: JobEvent = { id, type: eventType(previousStatus, job.status), data }
    // A finished job keeps its final event alone, as Redis does: a resume needs nothing else.
    if (isFinal(job.status)) log.events = [event]
    else log.events.push(event)
    if (log.events.length > this.#maxEvents) log.events.splice(0, log.events.length - this.#maxEvents)
  }

  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    const log = this.#logs.get(id)
    if (log === undefined || log.expiresAtMs <= this.#now()) return []
    const after = afterId === null ? log.events : log.events.filter((event) => compareEventIds(event.id, afterId) > 0)
    return after.slice(0, limit)
  }

  delete (id: string): void {
    this.#logs.delete(id)
  }
}
