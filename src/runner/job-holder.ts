import type { AttemptData, StoredJob } from '../schemas/job.js'
import { type Enqueue, type JobStore, isFinal } from '../store/job-store.js'

/** How a write by the holder ended: written; refused because the job is final; or the lease is gone. */
export type WriteOutcome = 'written' | 'finished' | 'lost'

/**
 * A worker's hold on one attempt of one job, and the only way it writes the job. Every write
 * is a compare-and-set against the version it holds, serialized, and renews the lease while
 * the job is processing. A conflict is re-applied only when the stored job is still this
 * attempt's (a copy made during a Redis outage bumped the version); anything else means the
 * job was finished or taken over, and the holder stops writing.
 */
export class JobHolder {
  readonly #store: JobStore
  readonly worker: string
  readonly #leaseMs: number
  job: StoredJob
  attempt = 0
  /** Until when the lease is known to be held in the shared store. */
  confirmedUntil = 0
  #chain: Promise<unknown> = Promise.resolve()

  constructor (store: JobStore, job: StoredJob, worker: string, leaseMs: number) {
    this.#store = store
    this.job = job
    this.worker = worker
    this.#leaseMs = leaseMs
  }

  /** Claims the job for a new attempt: processing, leased, with a running entry in its history. */
  async claim (): Promise<boolean> {
    if (this.job.status !== 'pending') return false
    const now = new Date().toISOString()
    this.attempt = this.job.attempts + 1
    const outcome = await this.#write((job) => job.status !== 'pending'
      ? null
      : {
          ...job,
          status: 'processing',
          attempts: this.attempt,
          worker: this.worker,
          started_at: job.started_at ?? now,
          next_attempt_at: null,
          current_step: 'Starting research',
          attempt_history: [...job.attempt_history, { attempt: this.attempt, worker: this.worker, started_at: now, ended_at: null, outcome: 'running', error: null }]
        }, undefined, false)
    return outcome.result === 'written'
  }

  /** Writes a change to the job this holder runs; the lease is renewed by the same write. */
  async update (change: (job: StoredJob) => StoredJob): Promise<{ result: WriteOutcome, authoritative: boolean }> {
    return await this.#write(change, undefined, true)
  }

  /** Ends the attempt: records its outcome in the history, and writes the job's next state. */
  async end (outcome: AttemptData['outcome'], error: string | null, next: (job: StoredJob) => StoredJob, enqueue?: Enqueue): Promise<WriteOutcome> {
    const ended = new Date().toISOString()
    const written = await this.#write((job) => next({
      ...job,
      worker: null,
      attempt_history: job.attempt_history.map((entry) => entry.attempt === this.attempt && entry.worker === this.worker && entry.outcome === 'running'
        ? { ...entry, ended_at: ended, outcome, error }
        : entry)
    }), enqueue, true)
    return written.result
  }

  /** Serialized: a renewal and a progress write never race each other. */
  #write (change: (job: StoredJob) => StoredJob | null, enqueue: Enqueue | undefined, mustOwn: boolean): Promise<{ result: WriteOutcome, authoritative: boolean }> {
    const run = this.#chain.then(async () => await this.#writeNow(change, enqueue, mustOwn))
    this.#chain = run.catch(() => {})
    return run
  }

  async #writeNow (change: (job: StoredJob) => StoredJob | null, enqueue: Enqueue | undefined, mustOwn: boolean): Promise<{ result: WriteOutcome, authoritative: boolean }> {
    for (let tries = 0; tries < 5; tries++) {
      if (mustOwn && !this.#owns(this.job)) return { result: 'lost', authoritative: false }
      const changed = change(this.job)
      if (changed === null) return { result: 'lost', authoritative: false }
      const leaseUntil = Date.now() + this.#leaseMs
      const next = changed.status === 'processing'
        ? { ...changed, lease_expires_at: new Date(leaseUntil).toISOString() }
        : { ...changed, lease_expires_at: null }
      const result = await this.#store.put(next, this.job.version, enqueue)
      if (result.ok) {
        this.job = result.job
        if (result.authoritative) this.confirmedUntil = leaseUntil
        return { result: 'written', authoritative: result.authoritative }
      }
      if (result.current === null) return { result: 'lost', authoritative: false }
      if (isFinal(result.current.status)) {
        this.job = result.current
        return { result: 'finished', authoritative: true }
      }
      if (mustOwn && !this.#owns(result.current)) return { result: 'lost', authoritative: false }
      this.job = result.current
    }
    return { result: 'lost', authoritative: false }
  }

  #owns (job: StoredJob): boolean {
    return job.status === 'processing' && job.worker === this.worker && job.attempts === this.attempt
  }
}
