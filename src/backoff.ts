export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  baseMs: number
  /** Longest delay, before jitter. */
  maxMs: number
  /** A number in [0, 1); Math.random by default (tests pass their own). */
  random?: () => number
}

/**
 * Delay before retrying after failed attempt `attempt` (1-based): exponential, capped, with
 * "equal jitter" (half fixed, half random) so a burst of failures does not retry in lockstep
 * while each retry still waits at least half its exponential delay.
 */
export function retryDelayMs (attempt: number, options: BackoffOptions): number {
  const exponential = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1))
  const random = options.random ?? Math.random
  return Math.round(exponential / 2 + random() * (exponential / 2))
}
