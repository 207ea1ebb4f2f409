import { setTimeout as sleep } from 'node:timers/promises'
import { type AttemptOwner, advance, begin, exhaust, handBack, progressAfter } from '../lifecycle.js'
import { type AttemptData, type StoredJob, isFinal } from '../schemas/job.js'
import { type Claim, type Enqueue, type JobStore, type PutOptions, withProgress } from '../store/job-store.js'
import { isoNow } from '../iso-time.js'

/**
 * How a write by the holder ended: written; refused because the job is final; the claim is
 * gone (taken over, re-seeded, deleted); not confirmed (the store could not be reached, so
 * the lease may run out); or refused by a Redis that refuses every writer alike (MISCONF, OOM),
 * so nobody can take the job over meanwhile either.
 */
export type WriteOutcome = 'written' | 'finished' | 'lost' | 'unconfirmed' | 'refused'

/** How starting a claimed job ended. */
export type StartOutcome = 'started' | 'exhausted' | 'gone' | 'unavailable'

/**
 * A worker's hold on one attempt of one job, and the only way it writes the job. The attempt
 * number comes from the record the claim read from the store (never from a copy), and every
 * write carries the claim's fencing token: the store refuses it once the claim moved on, so two
 * workers can never both write one job. Writes are compare-and-set against the version held and
 * serialized; a version conflict is re-applied on the stored record while the claim holds.
 *
 * `confirmedUntil` is when the lease may run out at the earliest, on this process's monotonic
 * clock: the send time of the last write or renewal the store confirmed, plus the lease. A
 * lease is decided by the store's clock, so this is a duration measured here, never a
 * comparison of two hosts' clocks.
 */
export class JobHolder {
  readonly #store: JobStore
  readonly worker: string
  readonly #leaseMs: number
  readonly fence: string
  readonly attempt: number
  job: StoredJob
  confirmedUntil: number
  /** The claim began the attempt already (the store did the start write's work). */
  readonly #startedByClaim: boolean
  /** The worker's next jobs, claimed by the write that ended this attempt, and when that write was sent. */
  handedOn: { claims: Claim[], claimedAt: number } = { claims: [], claimedAt: 0 }
  /** The last write or renewal was refused by a Redis that refuses every writer alike. */
  refusing = false
  /** The attempt ended and its write waits for Redis to accept writes again. */
  waitingToWrite = false
  readonly #stopping: AbortSignal | undefined
  #chain: Promise<unknown> = Promise.resolve()

  /**
   * `claimedAt`: performance.now() when the claim was sent. `stopping`: aborted when the process
   * gives up waiting for its jobs at shutdown; a write waiting for Redis to accept writes stops then.
   */
  constructor (store: JobStore, claim: Claim, worker: string, leaseMs: number, claimedAt: number, stopping?: AbortSignal) {
    this.#stopping = stopping
    this.#store = store
    this.job = claim.job
    this.fence = claim.fence
    this.#startedByClaim = claim.started === true
    this.attempt = this.#startedByClaim ? claim.job.attempts : claim.job.attempts + 1
    this.worker = worker
    this.#leaseMs = leaseMs
    this.confirmedUntil = claimedAt + leaseMs
  }

  /**
   * Starts the attempt: processing, with a running entry in its history (or failed, past the
   * last attempt). A store that cannot take the write is tried again while the claim's lease
   * lasts; a try whose answer was lost but landed counts as started.
   */
  async start (maxAttempts: number): Promise<StartOutcome> {
    if (this.#startedByClaim) return 'started'
    for (;;) {
      const outcome = await this.#startOnce(maxAttempts)
      if (outcome !== 'unavailable') return outcome
      const left = this.confirmedUntil - performance.now() - this.#leaseMs / 3
      if (left <= 0) return 'unavailable'
      await sleep(Math.min(250, left))
    }
  }

  async #startOnce (maxAttempts: number): Promise<StartOutcome> {
    const now = isoNow()
    if (this.attempt > maxAttempts) {
      const failed = await this.#write((job) => job.status !== 'pending' ? null : exhaust(job, now))
      return failed === 'written' ? 'exhausted' : failed === 'unconfirmed' ? 'unavailable' : 'gone'
    }
    const started = await this.#write((job) => job.status !== 'pending' ? null : begin(job, this.owner, now))
    if (started === 'written' || this.#running(this.job)) return 'started'
    return started === 'unconfirmed' ? 'unavailable' : 'gone'
  }

  /** Hands back a claim that never ran (the process is stopping): first in line, no attempt used. */
  async release (): Promise<WriteOutcome> {
    if (this.#startedByClaim) return await this.handBack()
    return await this.#write((job) => job.status === 'pending' ? job : null, 'head')
  }

  /** Ends the attempt as handed back (the process is stopping): pending, first in line, not counted against the attempts. */
  async handBack (): Promise<WriteOutcome> {
    return await this.end('handed_back', (job, now) => handBack(job, this.owner, now), 'head')
  }

  /** Extends the lease without writing the record. */
  async renew (): Promise<WriteOutcome> {
    return await this.#serialized(async () => {
      const sentAt = performance.now()
      const renewal = await this.#store.renewLease(this.job.job_id, this.fence, this.#leaseMs)
      if (renewal === 'renewed') this.confirmedUntil = sentAt + this.#leaseMs
      return this.#noted(renewal === 'renewed' ? 'written' : renewal === 'unavailable' ? 'unconfirmed' : renewal)
    })
  }

  /**
   * Writes how far the run got (progress never goes back). The store patches the record it
   * holds with just that, checked against the claim and the version last written, and leaves
   * the lease to the renewals; where it cannot (it holds another version, or the job is this
   * process's own), the whole record is written, which decides as every write does.
   */
  async progress (percent: number, step: string): Promise<WriteOutcome> {
    return this.#noted(await this.#serialized(async () => {
      if (this.#running(this.job)) {
        const progress = progressAfter(this.job, percent)
        if (progress === this.job.progress && step === this.job.current_step) return 'written'
        const patch = { progress, step, now: Date.now() }
        const patched = await this.#store.patchProgress(this.job.job_id, this.fence, this.job.version, patch)
        if (patched.outcome === 'written') {
          this.job = withProgress(this.job, patch, patched.version)
          return 'written'
        }
        // As a whole write that could not reach the store: the renewals say whether the lease holds.
        if (patched.outcome === 'unavailable') return patched.refused === true ? 'refused' : 'unconfirmed'
      }
      return await this.#writeNow((job) => this.#running(job) ? advance(job, percent, step) : null)
    }))
  }

  /**
   * Ends the attempt with `next` (a transition of the lifecycle that closes `outcome`). While the
   * store cannot be reached it keeps trying until the lease may have run out; after that the job
   * is another worker's to run again, and nothing is written. While Redis refuses every writer
   * (MISCONF, OOM) the result is kept and the write tried again, with backoff, for as long as it
   * lasts: nobody can take the job over meanwhile, and the reaper waits a lease after a refusal,
   * so the claim still holds when writes come back.
   */
  async end (outcome: AttemptData['outcome'], next: (job: StoredJob, now: string) => StoredJob, enqueue?: Enqueue, claimNext?: PutOptions['claimNext']): Promise<WriteOutcome> {
    const ended = isoNow()
    let pause = 100
    try {
      for (;;) {
        const written = await this.#write((job) => this.#running(job) ? next(job, ended) : null, enqueue, outcome, claimNext)
        if (written === 'refused' && this.#stopping?.aborted !== true) {
          this.waitingToWrite = true
          await sleep(pause)
          pause = Math.min(pause * 2, Math.max(100, this.#leaseMs / 4))
          continue
        }
        if (written !== 'unconfirmed' && written !== 'refused') return written
        const left = this.confirmedUntil - performance.now()
        if (left <= 0) return 'lost'
        await sleep(Math.min(250, left))
      }
    } finally {
      this.waitingToWrite = false
    }
  }

  /** This holder's attempt, as the lifecycle names it. */
  get owner (): AttemptOwner {
    return { attempt: this.attempt, worker: this.worker }
  }

  #running (job: StoredJob): boolean {
    return job.status === 'processing' && job.attempts === this.attempt && job.worker === this.worker
  }

  #isMine (entry: AttemptData): boolean {
    return entry.attempt === this.attempt && entry.worker === this.worker
  }

  #noted (outcome: WriteOutcome): WriteOutcome {
    this.refusing = outcome === 'refused'
    return outcome
  }

  /** Serialized: a renewal and a progress write never race each other. */
  async #serialized (write: () => Promise<WriteOutcome>): Promise<WriteOutcome> {
    const run = this.#chain.then(write)
    this.#chain = run.catch(() => {})
    return await run
  }

  /** `ending`: the outcome an end write records, to recognise it when an unanswered try had landed. */
  async #write (change: (job: StoredJob) => StoredJob | null, enqueue?: Enqueue, ending?: AttemptData['outcome'], claimNext?: PutOptions['claimNext']): Promise<WriteOutcome> {
    return this.#noted(await this.#serialized(async () => await this.#writeNow(change, enqueue, ending, claimNext)))
  }

  async #writeNow (change: (job: StoredJob) => StoredJob | null, enqueue?: Enqueue, ending?: AttemptData['outcome'], claimNext?: PutOptions['claimNext']): Promise<WriteOutcome> {
    for (let tries = 0; tries < 5; tries++) {
      const next = change(this.job)
      if (next === null) return 'lost'
      const processing = next.status === 'processing'
      // A running record carries the claim's token: the store checks progress writes against it.
      const changed = processing ? { ...next, fence: this.fence } : next
      const sentAt = performance.now()
      const result = await this.#store.put(changed, this.job.version, { fence: this.fence, leaseMs: processing ? this.#leaseMs : undefined, enqueue, claimNext })
      if (result.ok) {
        this.job = result.job
        if (result.claimed !== undefined) this.handedOn = { claims: result.claimed, claimedAt: sentAt }
        if (processing) this.confirmedUntil = sentAt + this.#leaseMs
        return 'written'
      }
      if (result.reason === 'unavailable') return result.refused === true ? 'refused' : 'unconfirmed'
      if (result.current === null) return 'lost'
      if (isFinal(result.current.status)) {
        this.job = result.current
        // An earlier try whose reply never came may have written this very end.
        const mine = ending !== undefined && result.current.attempt_history.some((entry) => this.#isMine(entry) && entry.outcome === ending)
        return mine ? 'written' : 'finished'
      }
      if (result.reason === 'fenced') return 'lost'
      // The version moved while the claim holds (an unanswered write of ours landed): again, on the stored record.
      this.job = result.current
    }
    return 'lost'
  }
}
