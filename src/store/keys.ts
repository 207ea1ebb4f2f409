import { JOB_STATUSES, type JobStatusName } from '../schemas/job.js'

/**
 * The names every job script knows its keys by, in the order they are passed as KEYS. The Lua
 * side gets `local K = { job = KEYS[1], ... }` generated from this list, so the order lives here
 * alone.
 */
export const SCRIPT_KEY_NAMES = [
  'job', 'events', 'created', 'owner_created', 'queue', 'leases', 'fences', 'delayed', 'seq', 'webhooks', 'epoch', 'notices',
  ...JOB_STATUSES.map((status) => `status_${status}`)
] as const

/**
 * The default REDIS_KEY_PREFIX: a namespace, so deployments can share a Redis, and a hash tag,
 * so every key lands in one Redis Cluster slot (a script's keys must share one).
 */
export const DEFAULT_KEY_PREFIX = 'dr:{0}:'

/** Every Redis key the job store touches, built in one place from one prefix. */
export class RedisKeys {
  readonly prefix: string
  /** Sorted set of every live record, scored by creation time (ms). */
  readonly created: string
  /** Sorted set of queued ids, scored by position (tail: +seq, head: -seq). */
  readonly queue: string
  /** Sorted set: lease expiry (Redis clock, ms) of each claimed job. */
  readonly leases: string
  /** Hash: the fencing token of each claim. */
  readonly fences: string
  readonly delayed: string
  /** Counter behind queue positions and fencing tokens. */
  readonly seq: string
  readonly webhooks: string
  /** This Redis's data generation: a new value means the data was lost (restart without persistence, a flush of every key). */
  readonly epoch: string
  /** Pub/sub channel: every record write publishes `<id> <version> <status>` on it ('deleted' for a delete). */
  readonly notices: string

  constructor (prefix = DEFAULT_KEY_PREFIX) {
    this.prefix = prefix
    this.created = `${prefix}jobs:created`
    this.queue = `${prefix}jobs:queue`
    this.leases = `${prefix}jobs:leases`
    this.fences = `${prefix}jobs:fences`
    this.delayed = `${prefix}jobs:delayed`
    this.seq = `${prefix}jobs:seq`
    this.webhooks = `${prefix}webhooks:due`
    this.epoch = `${prefix}epoch`
    this.notices = `${prefix}jobs:notices`
  }

  job (id: string): string {
    return `${this.prefix}job:${id}`
  }

  /** List of a job's events ("<id> <type> <data>"); named `log` since it replaced a stream (`events`). */
  events (id: string): string {
    return `${this.prefix}job:${id}:log`
  }

  /** One tenant's jobs by creation time: its list costs its own jobs, not everyone's. */
  ownerCreated (owner: string): string {
    return `${this.prefix}jobs:created:owner:${owner}`
  }

  /** Sorted set of the live records in one status, scored by when each expires (ms): also the expiry index. */
  status (status: JobStatusName): string {
    return `${this.prefix}jobs:status:${status}`
  }

  rateLimit (key: string): string {
    return `${this.prefix}ratelimit:${key}`
  }

  idempotency (key: string): string {
    return `${this.prefix}idempotency:${key}`
  }

  /** KEYS for a job script, in SCRIPT_KEY_NAMES order; `id` null for scripts about no one job. */
  forScript (id: string | null, owner: string | null = null): string[] {
    const job = id ?? ''
    return [
      this.job(job), this.events(job), this.created, this.ownerCreated(owner ?? ''), this.queue, this.leases, this.fences, this.delayed, this.seq, this.webhooks, this.epoch, this.notices,
      ...JOB_STATUSES.map((status) => this.status(status))
    ]
  }
}

/** The Lua prelude naming the keys: `local K = { job = KEYS[1], ... }`. */
export function luaKeyTable (): string {
  return `local K = { ${SCRIPT_KEY_NAMES.map((name, i) => `${name} = KEYS[${i + 1}]`).join(', ')} }`
}
