import type { Reconciler } from './reconciler.js'
import { ClusterClient } from './redis-client.js'
import type { RedisGate } from './redis-gate.js'

export interface RedisTopology {
  kind: 'single' | 'cluster'
  shards: number
  failing_nodes: string[]
}

/** What /health says of Redis. */
export interface RedisReport {
  configured: boolean
  connected: boolean
  latency_ms: number | null
  error: string | null
  writes_refused: string | null
  maxmemory_policy: string | null
  recovering: boolean
  unsynced: number
  topology: RedisTopology
  warnings: string[]
  /** Configured, and unreachable, refusing writes, being re-seeded or with Cluster nodes failing. */
  degraded: boolean
}

/**
 * The state of the store's Redis, for /health and the metrics: reachable or not, refusing
 * writes, re-seeding after a data loss, its topology, and jobs held here that Redis lacks.
 * Without Redis configured it reports just that.
 */
export class RedisHealth {
  readonly #gate: RedisGate | undefined
  readonly #reconciler: Reconciler | undefined

  constructor (gate?: RedisGate, reconciler?: Reconciler) {
    this.#gate = gate
    this.#reconciler = reconciler
  }

  get configured (): boolean {
    return this.#gate !== undefined
  }

  get lastError (): string | null {
    return this.#gate?.lastError ?? null
  }

  /** Why Redis refuses writes right now, or null. */
  get writesRefused (): string | null {
    return this.#gate?.writesRefused ?? null
  }

  get memoryPolicy (): string | null {
    return this.#reconciler?.memoryPolicy ?? null
  }

  /** Redis lost its data moments ago and replicas are putting their copies back. */
  get recovering (): boolean {
    return this.#reconciler?.recovering ?? false
  }

  /** Jobs created here that Redis does not hold yet. */
  get unsynced (): number {
    return this.#reconciler?.ledger.size ?? 0
  }

  /** What Redis is: one server or a Cluster, the shards jobs are spread over, the nodes failing now. */
  get topology (): RedisTopology {
    const redis = this.#gate?.redis
    const shards = redis?.shardCount ?? 1
    if (redis?.client instanceof ClusterClient) return { kind: 'cluster', shards, failing_nodes: redis.client.failingNodes }
    return { kind: 'single', shards, failing_nodes: [] }
  }

  /** Connection errors reported by the client (not by a call) also show in /health. */
  noteError (err: Error): void {
    this.#gate?.noteError(err)
  }

  /** Round-trip time to Redis in ms; throws when it is not configured or not answering. */
  async ping (): Promise<number> {
    const gate = this.#gate
    if (gate === undefined) throw new Error('Redis is not configured')
    if (!gate.redis.client.isReady) throw new Error(gate.lastError ?? 'Redis is not connected')
    return await gate.redis.ping()
  }

  /** Everything at once, with a ping. */
  async report (): Promise<RedisReport> {
    const policy = this.memoryPolicy
    const report: RedisReport = {
      configured: this.configured,
      connected: false,
      latency_ms: null,
      error: null,
      writes_refused: this.writesRefused,
      maxmemory_policy: policy,
      recovering: this.recovering,
      unsynced: this.unsynced,
      topology: this.topology,
      warnings: policy !== null && policy !== 'noeviction' ? [`maxmemory-policy is ${policy}: Redis may evict jobs when it fills up; use noeviction`] : [],
      degraded: false
    }
    if (!report.configured) return report
    try {
      report.latency_ms = Math.round((await this.ping()) * 100) / 100
      report.connected = true
    } catch (err) {
      report.error = (err as Error).message
    }
    if (report.writes_refused !== null) report.error ??= report.writes_refused
    report.degraded = !report.connected || report.writes_refused !== null || report.recovering || report.topology.failing_nodes.length > 0
    return report
  }
}
