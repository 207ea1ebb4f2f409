import type { RedisClient } from './redis-client.js'
import type { SilenceDeadline } from './silence-deadline.js'

/**
 * After a call timed out on one of the runner's connections, how often a PING tries it; the
 * runner's calls use its other connections, or the main one, until one is answered. A
 * connection cut without a word (a half-open TCP path) still counts as ready, and would fail
 * every call on it until the kernel gave up on it (minutes).
 */
export const RUNNER_CONNECTION_PROBE_MS = 30_000

/**
 * The runner's own connections to one Redis (see RedisJobStoreOptions.runnerClients), taken in
 * turn, each while it is ready and not suspect. One object per Redis, shared by every store
 * that calls it (the shards of ShardedRedisJobStore): a connection one of them found stalled
 * is passed over by all, and the turns go round all their calls.
 */
export class RunnerConnections {
  readonly #connections: RunnerConnection[]
  #next = 0
  readonly #probeMs: number
  /** The deadlines of the calls to the same Redis: a probe queued behind their replies is not failed while Redis answers them. */
  readonly #deadline: SilenceDeadline

  constructor (clients: RedisClient[], deadline: SilenceDeadline, probeMs = RUNNER_CONNECTION_PROBE_MS) {
    this.#connections = clients.map((client) => ({ client, suspect: null }))
    this.#deadline = deadline
    this.#probeMs = probeMs
  }

  /** The next connection that may carry a call now, in turn; none when none may (the main connection carries it). */
  take (): RedisClient | undefined {
    const count = this.#connections.length
    for (let i = 0; i < count; i++) {
      const connection = this.#connections[(this.#next + i) % count] as RunnerConnection
      if (!this.#usable(connection)) continue
      this.#next = (this.#next + i + 1) % count
      return connection.client
    }
    return undefined
  }

  /** A call on `client` timed out: it is passed over until a PING on it is answered. */
  timedOut (client: RedisClient): void {
    for (const connection of this.#connections) {
      if (connection.client === client) connection.suspect ??= { probeAt: performance.now() + this.#probeMs, probing: false }
    }
  }

  /** Whether a connection may carry a call now; a suspect one is probed, not used. */
  #usable (connection: RunnerConnection): boolean {
    if (!connection.client.isReady) return false
    const suspect = connection.suspect
    if (suspect === null) return true
    if (!suspect.probing && performance.now() >= suspect.probeAt) {
      suspect.probing = true
      this.#deadline.wait(connection.client.sendCommand(['PING']), 'PING').then(() => {
        if (connection.suspect === suspect) connection.suspect = null
      }, () => {
        suspect.probing = false
        suspect.probeAt = performance.now() + this.#probeMs
      })
    }
    return false
  }
}

/** One of the runner's connections. `suspect`: set when a call on it timed out; its calls go elsewhere until a probe is answered. */
interface RunnerConnection {
  client: RedisClient
  suspect: { probeAt: number, probing: boolean } | null
}
