/**
 * Whether a create needs the memory admission (`admission` in lua/lib/job.lua), which is only
 * of use while Redis has a maxmemory. Run in every create's script, its INFO costs Redis about
 * a tenth of a job's work, also when there is no limit to check against. So the store keeps
 * when Redis last said it has none: a create within `recheckMs` of that skips the check; any
 * other create runs it (exactly, in the step that stores the job) and has Redis asked again.
 * A maxmemory set at runtime therefore applies to creates decided at most `recheckMs` later;
 * after a reconnect, as soon as the reconnect's own reading starts (see `forget`). The reading must come from the Redis the creates' scripts run on.
 */
export class MemoryLimitReading {
  readonly #recheckMs: number
  readonly #readMaxBytes: () => Promise<number>
  /** The last reading: when it was asked for (performance.now()) and whether Redis had no maxmemory. */
  #last = { askedAt: Number.NEGATIVE_INFINITY, unlimited: false }
  #reading = false

  constructor (recheckMs: number, readMaxBytes: () => Promise<number>) {
    this.#recheckMs = recheckMs
    this.#readMaxBytes = readMaxBytes
  }

  /** Whether a create now must be checked against maxmemory. */
  createNeedsCheck (): boolean {
    const fresh = performance.now() - this.#last.askedAt < this.#recheckMs
    if (!fresh) this.#refresh()
    return !(fresh && this.#last.unlimited)
  }

  /** Trusts nothing read so far (Redis may be another one now): creates are checked until a reading asked from now on says otherwise. */
  forget (): void {
    this.#last = { askedAt: performance.now(), unlimited: false }
  }

  /** What a reading asked for at `askedAt` (performance.now()) found. */
  noted (maxBytes: number, askedAt: number): void {
    if (askedAt >= this.#last.askedAt) this.#last = { askedAt, unlimited: maxBytes === 0 }
  }

  #refresh (): void {
    if (this.#reading) return
    this.#reading = true
    const askedAt = performance.now()
    this.#readMaxBytes()
      .then((maxBytes) => this.noted(maxBytes, askedAt), () => { /* unknown: creates keep being checked */ })
      .finally(() => { this.#reading = false })
  }
}
