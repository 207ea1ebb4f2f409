import { expireLease } from '../lifecycle.js'
import { type StoredJob, isFinal } from '../schemas/job.js'
import type { JobStore } from '../store/job-store.js'
import { isoNow } from '../iso-time.js'

export interface ReaperLogger {
  warn (obj: object, msg: string): void
}

export interface LeaseReaperOptions {
  store: JobStore
  maxAttempts: number
  logger: ReaperLogger
  /** Leases looked at per pass, and records swept for orphans (default 20, 200). */
  batch?: number
  sweep?: number
}

/**
 * Finds jobs whose worker stopped renewing its lease (it died, or lost the store for too long)
 * and puts them back in the queue as a new attempt, or fails them once they used every attempt.
 * Whether a lease ran out is the store's decision, by its own clock: the takeover write is
 * refused if the lease was renewed meanwhile, and it ends the old claim, so the old worker's
 * later writes are refused too. Each pass also sweeps a slice of the records for jobs that lost
 * their place in the queue.
 */
export class LeaseReaper {
  readonly #store: JobStore
  readonly #maxAttempts: number
  readonly #logger: ReaperLogger
  readonly #batch: number
  readonly #sweep: number

  constructor (options: LeaseReaperOptions) {
    this.#store = options.store
    this.#maxAttempts = options.maxAttempts
    this.#logger = options.logger
    this.#batch = options.batch ?? 20
    this.#sweep = options.sweep ?? 200
  }

  /** One pass; returns how many jobs were taken over or requeued. */
  async reap (): Promise<number> {
    let takenOver = 0
    for (const id of await this.#store.expiredLeases(this.#batch)) {
      const job = await this.#store.get(id)
      if (job === null) {
        this.#logger.warn({ job_id: id }, 'dropping the lease of a job whose record is gone (expired or evicted)')
        await this.#store.dropLease(id)
      } else if (isFinal(job.status)) {
        await this.#store.dropLease(id)
      } else if (await this.#takeOver(job)) {
        takenOver++
      }
    }
    const orphans = await this.#store.sweepOrphans(this.#sweep)
    if (orphans > 0) this.#logger.warn({ repaired: orphans }, 'queued again jobs that had lost their place in the queue')
    return takenOver + orphans
  }

  async #takeOver (job: StoredJob): Promise<boolean> {
    const next = expireLease(job, this.#maxAttempts, isoNow())
    // Claimed but never begun: back to the front, no attempt used.
    const message = job.status === 'pending'
      ? 'requeued a job claimed by a worker that stopped'
      : next.status === 'failed' ? 'job failed: its last attempt lost its worker' : 'took over a job whose worker stopped renewing its lease'
    const result = await this.#store.put(next, job.version, { takeover: true, enqueue: next.status === 'pending' ? 'head' : undefined })
    if (!result.ok) return false
    this.#logger.warn({ job_id: job.job_id, status: next.status, attempt: job.attempts, worker: job.worker }, message)
    return true
  }
}
