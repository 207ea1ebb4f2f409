import type { JobEvent } from '../schemas/events.js'
import type { WebhookOutbox } from './job-store.js'
import type { LocalEventLog } from './job-events.js'
import type { MemoryJobStore } from './memory.js'
import type { RedisGate } from './redis-gate.js'

/**
 * A job's webhook deliveries and events where its record is: in this process for a job it
 * answers for alone (no Redis, or created here during an outage and not handed over yet), in
 * Redis for every other job, with this process's own log while Redis cannot be read.
 */
export class FallbackOutbox implements WebhookOutbox {
  readonly #memory: MemoryJobStore
  readonly #events: LocalEventLog
  readonly #gate: RedisGate | undefined
  readonly #isLocal: (id: string) => boolean

  constructor (memory: MemoryJobStore, events: LocalEventLog, gate: RedisGate | undefined, isLocal: (id: string) => boolean) {
    this.#memory = memory
    this.#events = events
    this.#gate = gate
    this.#isLocal = isLocal
  }

  /** Redis's due deliveries, and those of jobs held here. */
  async claimWebhooks (leaseMs: number, limit: number): Promise<string[]> {
    const local = await this.#memory.claimWebhooks(leaseMs, limit)
    if (local.length >= limit || this.#gate === undefined) return local
    const remote = await this.#gate.call((redis) => redis.claimWebhooks(leaseMs, limit - local.length), 'write')
    return remote.ok ? [...local, ...remote.value] : local
  }

  async scheduleWebhook (id: string, delayMs: number | null): Promise<void> {
    if (this.#gate === undefined || this.#isLocal(id)) await this.#memory.scheduleWebhook(id, delayMs)
    else await this.#gate.call((redis) => redis.scheduleWebhook(id, delayMs), 'write')
  }

  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    if (this.#gate === undefined || this.#isLocal(id)) return await this.#events.events(id, afterId, limit)
    const remote = await this.#gate.call((redis) => redis.events(id, afterId, limit))
    return remote.ok ? remote.value : await this.#events.events(id, afterId, limit)
  }
}
