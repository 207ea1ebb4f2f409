import { setTimeout as sleep } from 'node:timers/promises'
import { ClientClosedError, ClientOfflineError, ErrorReply } from 'redis'
import { CircuitBreaker } from './breaker.js'
import type { RedisStore } from './redis.js'

export interface StoreLogger {
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

/**
 * Why a call to Redis did not give an answer:
 * - `unsent`: it never left this process (not connected, or the breaker skips Redis): it surely did not run;
 * - `unknown`: it was sent and no answer came in time (a timeout, a dropped connection): it may have run;
 * - `refused`: Redis answered with an error (OOM, READONLY, CROSSSLOT...): it did not run.
 */
export type Failure = 'unsent' | 'unknown' | 'refused'

export type Outcome<T> = { ok: true, value: T } | Failed
type Failed = { ok: false, failure: Failure, cause: string }

/**
 * What a call does: reads; writes, whose refusal means Redis refuses writes; and record writes,
 * whose success also proves writes work again (a claim of an empty queue writes nothing, so it
 * proves nothing).
 */
export type CallKind = 'read' | 'write' | 'record'

/** How long a refused write keeps /health degraded after it, unless a write succeeds first. */
const REFUSAL_SHOWN_MS = 30_000

/**
 * Refusals Redis gives every writer alike: it cannot persist (MISCONF) or is full (OOM). While
 * they last nobody can take a job over either, so a worker holding one keeps its result and
 * tries again. READONLY is not one: it is this connection reaching a demoted node, while
 * others may write to the promoted one.
 */
export function refusesEveryWriter (cause: string): boolean {
  return /^(MISCONF|OOM)\b/.test(cause)
}

/**
 * Every call to Redis goes through here: it classifies what went wrong, keeps a circuit
 * breaker so that an unreachable Redis costs one deadline and then nothing, and remembers
 * refused writes (Redis answering but unable to store) for /health. A refusal does not open
 * the breaker: reads still work on a Redis that is full or read-only.
 */
export class RedisGate {
  readonly redis: RedisStore
  readonly #breaker: CircuitBreaker
  readonly #logger: StoreLogger | undefined
  readonly #onRecovered: () => void
  #lastError: string | null = null
  #refusal: { cause: string, atMs: number } | null = null
  /** When a write was last refused (kept after writes work again, unlike #refusal). */
  #lastRefusedAtMs = -Infinity

  constructor (redis: RedisStore, options: { breakerMs: number, logger?: StoreLogger, onRecovered: () => void }) {
    this.redis = redis
    this.#breaker = new CircuitBreaker(options.breakerMs)
    this.#logger = options.logger
    this.#onRecovered = options.onRecovered
  }

  get reachable (): boolean {
    return this.redis.client.isReady && !this.#breaker.isOpen
  }

  get lastError (): string | null {
    return this.#lastError
  }

  /** Why Redis refuses writes (OOM, READONLY, CROSSSLOT...), while it does; else null. */
  get writesRefused (): string | null {
    if (this.#refusal === null || Date.now() - this.#refusal.atMs > REFUSAL_SHOWN_MS) return null
    return this.#refusal.cause
  }

  /** Whether a write was refused in the last `ms`: a worker may still be retrying a refused write. */
  refusedWithin (ms: number): boolean {
    return Date.now() - this.#lastRefusedAtMs < ms
  }

  /** Connection errors reported by the client (not by a call) also show in /health. */
  noteError (err: Error): void {
    this.#lastError = err.message || err.name
  }

  /** The client connected (again): calls may go to Redis at once. */
  connected (): void {
    this.#lastError = null
    this.#breaker.succeed()
  }

  /**
   * Runs `call` against Redis, if the link is up and the breaker lets it, and answers what came of
   * it: its value, or why not, also when `call` throws before it sends. (It returns a promise of
   * its own rather than being async: every Redis call of every job passes here.)
   */
  call<T> (call: (redis: RedisStore) => Promise<T>, kind: CallKind = 'read'): Promise<Outcome<T>> {
    if (!this.redis.client.isReady) {
      // The connection dropped: same as a failed call, so mode and logs say so at once.
      if (!this.#breaker.isOpen) this.#unreachable(new Error(this.#lastError ?? 'Redis is not connected'))
      return Promise.resolve({ ok: false, failure: 'unsent', cause: this.#lastError ?? 'Redis is not connected' })
    }
    if (!this.#breaker.allow()) return Promise.resolve({ ok: false, failure: 'unsent', cause: this.#lastError ?? 'Redis is failing' })
    let reply: Promise<T>
    try {
      reply = call(this.redis)
    } catch (err) {
      return Promise.resolve(this.#failed(err, kind))
    }
    return reply.then((value) => {
      this.#lastError = null
      if (kind === 'record') this.#refusal = null
      this.#answered()
      return { ok: true, value }
    }, (err: unknown) => this.#failed(err, kind))
  }

  #failed (err: unknown, kind: CallKind): Failed {
    const cause = err instanceof Error ? err.message : String(err)
    if (err instanceof ErrorReply) {
      // An error reply is still an answer: the link works, so a probe that got one closes the
      // breaker (else the probe slot stays taken and Redis is skipped for good).
      this.#answered()
      this.#refused(cause, kind)
      return { ok: false, failure: 'refused', cause }
    }
    this.#unreachable(err)
    const unsent = err instanceof ClientOfflineError || err instanceof ClientClosedError
    return { ok: false, failure: unsent ? 'unsent' : 'unknown', cause }
  }

  /** A read that waits up to `ms` for a restarting Redis to answer (a restart then costs a poll latency, not an error). */
  async callWaiting<T> (call: (redis: RedisStore) => Promise<T>, ms: number, signal: AbortSignal): Promise<Outcome<T>> {
    let outcome = await this.call(call)
    const deadline = Date.now() + ms
    while (!outcome.ok && Date.now() < deadline && !signal.aborted) {
      await this.backWithin(deadline - Date.now(), signal)
      await sleep(Math.max(0, Math.min(50, deadline - Date.now())))
      if (signal.aborted) break
      outcome = await this.call(call)
    }
    return outcome
  }

  /** Resolves true as soon as the client is connected again (at once if it is), false after `ms` or on `signal`. */
  async backWithin (ms: number, signal?: AbortSignal): Promise<boolean> {
    const client = this.redis.client
    if (client.isReady) return true
    if (ms <= 0 || signal?.aborted === true) return false
    return await new Promise((resolve) => {
      const done = (back: boolean): void => {
        clearTimeout(timer)
        client.off('ready', onReady)
        signal?.removeEventListener('abort', onAbort)
        resolve(back)
      }
      const onReady = (): void => done(true)
      const onAbort = (): void => done(false)
      const timer = setTimeout(() => done(false), ms)
      client.on('ready', onReady)
      signal?.addEventListener('abort', onAbort)
    })
  }

  #answered (): void {
    if (this.#breaker.succeed()) {
      this.#logger?.info({}, 'Redis answers again; leaving fallback mode')
      this.#onRecovered()
    }
  }

  #refused (cause: string, kind: CallKind): void {
    const first = this.writesRefused === null
    if (kind !== 'read') {
      this.#refusal = { cause, atMs: Date.now() }
      this.#lastRefusedAtMs = Date.now()
    }
    this.#lastError = cause
    if (first && kind !== 'read') this.#logger?.error({ err: cause }, 'Redis refuses writes; creates answer 503 until it accepts them again')
  }

  #unreachable (err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    const wasOpen = this.#breaker.isOpen
    this.#breaker.fail()
    this.#lastError = message
    if (!wasOpen) this.#logger?.warn({ err: message }, 'Redis call failed; serving from the in-memory store')
  }
}
