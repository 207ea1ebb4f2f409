/**
 * At most one progress write per `intervalMs`: a report that comes sooner is held, replaced by any
 * newer one, and the latest is written when the interval ends (a trailing write), so the last
 * progress of a running job is never lost, only delayed. An interval of 0 writes every report.
 * Writes that come faster than a poller could see them cost Redis a script each for nothing.
 */
export class ProgressCoalescer<T> {
  readonly #intervalMs: number
  readonly #write: (report: T) => Promise<void>
  #lastWriteAt = Number.NEGATIVE_INFINITY
  #held: { report: T } | null = null
  #timer: NodeJS.Timeout | undefined

  constructor (intervalMs: number, write: (report: T) => Promise<void>) {
    this.#intervalMs = intervalMs
    this.#write = write
  }

  /** Writes now (and waits for the write) when the interval allows; holds the report otherwise. */
  async report (report: T): Promise<void> {
    const now = performance.now()
    if (this.#timer === undefined && now - this.#lastWriteAt >= this.#intervalMs) {
      this.#lastWriteAt = now
      await this.#write(report)
      return
    }
    this.#held = { report }
    this.#timer ??= setTimeout(() => { void this.#flush() }, this.#lastWriteAt + this.#intervalMs - now)
  }

  /** Drops what is held: the run ended, and its final write says where it got to. */
  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#held = null
  }

  async #flush (): Promise<void> {
    this.#timer = undefined
    const held = this.#held
    this.#held = null
    if (held === null) return
    this.#lastWriteAt = performance.now()
    await this.#write(held.report).catch(() => { /* the next renewal or write reports a lost lease */ })
  }
}
