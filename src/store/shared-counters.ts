import { dropOldest } from './bounded.js'
import { StoreUnavailableError } from './job-store.js'
import type { RedisGate } from './redis-gate.js'

const LOCAL_MAX = 10_000

/**
 * Counters replicas share through Redis: rate-limit windows and one-time claims (idempotency
 * keys). When Redis is not configured or cannot be reached they are kept in this process
 * (bounded, oldest dropped first): each replica then enforces limits on its own.
 */
export class SharedCounters {
  readonly #gate: RedisGate | undefined
  readonly #windows = new Map<string, { count: number, endsAt: number }>()
  readonly #claims = new Map<string, { value: string, expiresAt: number }>()

  constructor (gate?: RedisGate) {
    this.#gate = gate
  }

  /** Counts a request in the window of `key`: the count so far and how long the window still runs. */
  async countInWindow (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    const remote = await this.#gate?.call((redis) => redis.countInWindow(key, windowMs))
    if (remote?.ok === true) return remote.value
    const now = Date.now()
    let window = this.#windows.get(key)
    if (window === undefined || window.endsAt <= now) {
      if (this.#windows.size >= LOCAL_MAX) dropOldest(this.#windows, 1)
      window = { count: 0, endsAt: now + windowMs }
      this.#windows.delete(key)
      this.#windows.set(key, window)
    }
    window.count++
    return { count: window.count, ttlMs: window.endsAt - now }
  }

  /**
   * Claims `key` for one request: returns null when this call claimed it, or the value the first
   * claimer stored. In Redis (SET NX), so replicas agree; refused when Redis refuses writes.
   */
  async claimOnce (key: string, value: string, ttlSeconds: number): Promise<string | null> {
    const remote = await this.#gate?.call((redis) => redis.claimOnce(key, value, ttlSeconds), 'write')
    if (remote?.ok === true) return remote.value
    if (remote?.ok === false && remote.failure === 'refused') throw new StoreUnavailableError(`Redis refuses writes (${remote.cause})`)
    const now = Date.now()
    const held = this.#claims.get(key)
    if (held !== undefined && held.expiresAt > now) return held.value
    if (this.#claims.size >= LOCAL_MAX) dropOldest(this.#claims, 1)
    this.#claims.set(key, { value, expiresAt: now + ttlSeconds * 1000 })
    return null
  }

  async releaseClaim (key: string): Promise<void> {
    this.#claims.delete(key)
    await this.#gate?.call((redis) => redis.releaseClaim(key), 'write')
  }
}
