import { dropOldest } from '../store/bounded.js'

export interface FailureCounter {
  /** Counts one failure of `key` in a fixed window; returns the count and the ms left in the window. */
  countInWindow (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }>
}

const BLOCKED_KEPT = 10_000

/**
 * Throttles guessing of API keys: wrong keys are counted per client address (shared by replicas
 * through the counter), and past `max` in a window every keyed request from that address is
 * refused until the window ends, a right key included, so a guess that succeeds cannot be told
 * apart from one that fails.
 */
export class AuthFailureThrottle {
  readonly #counter: () => FailureCounter
  readonly #max: number
  readonly #windowMs: number
  /** Addresses over their budget, until when (ms). Checked on every keyed request, so it is local. */
  readonly #blocked = new Map<string, number>()

  constructor (options: { counter: () => FailureCounter, max: number, windowMs: number }) {
    this.#counter = options.counter
    this.#max = options.max
    this.#windowMs = options.windowMs
  }

  /** How long requests from `address` stay refused (0: they are not). */
  blockedFor (address: string): number {
    const until = this.#blocked.get(address)
    if (until === undefined) return 0
    const left = until - Date.now()
    if (left <= 0) this.#blocked.delete(address)
    return Math.max(0, left)
  }

  /** Counts a wrong key from `address`; returns how long it is now refused (0: not yet). */
  async failed (address: string): Promise<number> {
    const { count, ttlMs } = await this.#counter().countInWindow(`auth-failures:${address}`, this.#windowMs)
    if (count <= this.#max) return 0
    if (this.#blocked.size >= BLOCKED_KEPT) dropOldest(this.#blocked, BLOCKED_KEPT / 100)
    this.#blocked.set(address, Date.now() + ttlMs)
    return ttlMs
  }
}
