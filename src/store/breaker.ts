/**
 * A small circuit breaker: after a failure, calls skip the protected dependency for
 * `openMs`, then one probe call may try it again. A dead Redis thus costs nothing per call.
 */
export class CircuitBreaker {
  readonly #openMs: number
  readonly #now: () => number
  #openUntil = 0
  #probing = false
  #open = false

  constructor (openMs: number, now: () => number = Date.now) {
    this.#openMs = openMs
    this.#now = now
  }

  get isOpen (): boolean {
    return this.#open
  }

  /** Whether a call may go to the dependency now. Claims the single probe slot when half-open. */
  allow (): boolean {
    if (!this.#open) return true
    if (this.#probing || this.#now() < this.#openUntil) return false
    this.#probing = true
    return true
  }

  /** Returns true when this success closed an open breaker (the dependency is back). */
  succeed (): boolean {
    const wasOpen = this.#open
    this.#open = false
    this.#probing = false
    return wasOpen
  }

  fail (): void {
    this.#open = true
    this.#probing = false
    this.#openUntil = this.#now() + this.#openMs
  }
}
