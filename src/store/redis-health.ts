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
  /** While recovering: what Redis lost, and when. */
  data_loss: string | null
  /** Redis's memory against the create admission's limit (null: not read). */
  memory: { used_bytes: number, max_bytes: number, admit_limit_bytes: number | null } | null
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

  /** Redis's memory and the create admission's limit; null when Redis is not configured or cannot say. */
  async memory (): Promise<RedisReport['memory']> {
    if (this.#gate === undefined) return null
    const read = await this.#gate.call(async (redis) => await redis.memory())
    if (!read.ok) return null
    return { used_bytes: read.value.usedBytes, max_bytes: read.value.maxBytes, admit_limit_bytes: read.value.admitLimitBytes }
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
      data_loss: this.#reconciler?.dataLoss ?? null,
      memory: null,
      unsynced: this.unsynced,
      topology: this.topology,
      warnings: policy !== null && policy !== 'noeviction' ? [`maxmemory-policy is ${policy}: Redis may evict jobs when it fills up; use noeviction`] : [],
      degraded: false
    }
    if (!report.configured) return report
    try {
      report.latency_ms = Math.round((await this.ping()) * 100) / 100
      report.connected = true
      report.memory = await this.memory()
    } catch (err) {
      report.error = (err as Error).message
    }
    if (report.writes_refused !== null) report.error ??= report.writes_refused
    const memory = report.memory
    const full = memory !== null && memory.admit_limit_bytes !== null && memory.used_bytes > memory.admit_limit_bytes
    if (full) report.warnings.push(`Redis uses ${memory.used_bytes} bytes, past the create admission limit of ${memory.admit_limit_bytes}: creates answer 503 store_full`)
    report.degraded = !report.connected || report.writes_refused !== null || report.recovering || full || report.topology.failing_nodes.length > 0
    return report
  }
}
