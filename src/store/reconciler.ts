import { randomUUID } from 'node:crypto'
import { reseed } from '../lifecycle.js'
import { type StoredJob, isFinal } from '../schemas/job.js'
import type { MemoryJobStore } from './memory.js'
import type { RedisGate, StoreLogger } from './redis-gate.js'
import type { WentBack } from './redis.js'
import { isoNow, isoTime } from '../iso-time.js'

/**
 * A job Redis does not know yet, held by this process:
 * - `unseen`: created while the create could not be sent to Redis; it may run here, and its
 *   record goes to Redis (with its queue place or claim) once Redis answers. `base`: the version
 *   Redis holds of it (0: none yet).
 * - `unknown`: a create that was sent but never answered; Redis may have it. It never runs
 *   here; once Redis answers, Redis's record wins if there is one, else this copy is queued.
 */
export type LocalOnly = { kind: 'unseen', base: number } | { kind: 'unknown' }

export interface ReconcilerOptions {
  gate: RedisGate
  memory: MemoryJobStore
  logger?: StoreLogger
  /** How often the epoch is checked and held jobs are offered to Redis (default 1000 ms). */
  checkEveryMs?: number
  /** After Redis lost its data, how long absences are not trusted while replicas re-seed it (default 10 s). */
  recoveryMs?: number
  /**
   * How long an unfinished job put back after a data loss waits before it runs again: a worker
   * still running it learns of the loss only at its next write, and stops within a lease
   * (JOB_LEASE_MS; default 30000 ms).
   */
  holdMs?: number
}

/**
 * Brings Redis and this process's copies back in step:
 * - jobs created here while Redis was out of reach (the ledger) are copied to Redis when it
 *   answers again, and leave the ledger;
 * - Redis losing its data (restart without persistence, failover to an empty replica,
 *   every key flushed) is detected by its epoch key and answered by re-seeding Redis from every copy held
 *   here: unfinished jobs go back to the queue, finished ones are kept;
 * - a read that finds Redis behind a copy (a lost or rolled-back record) re-seeds that copy.
 */
export class Reconciler {
  readonly ledger = new Map<string, LocalOnly>()
  readonly #gate: RedisGate
  readonly #memory: MemoryJobStore
  readonly #logger: StoreLogger | undefined
  readonly #checkEveryMs: number
  readonly #recoveryMs: number
  readonly #holdMs: number
  readonly #repairing = new Set<string>()
  #epoch: string | null = null
  #recoveringUntil = 0
  /** When the current (or last) data loss was first suspected: jobs created before it may have copies elsewhere. */
  #lostAt = 0
  #suspected = false
  /** Why replicas are putting their copies back (the last loss), for /health. */
  #lossReason: string | null = null
  #memoryPolicy: string | null = null
  #timer: NodeJS.Timeout | null = null
  #syncing: Promise<void> | null = null
  #checking: Promise<void> | null = null

  constructor (options: ReconcilerOptions) {
    this.#gate = options.gate
    this.#memory = options.memory
    this.#logger = options.logger
    this.#checkEveryMs = options.checkEveryMs ?? 1000
    this.#recoveryMs = options.recoveryMs ?? 10_000
    this.#holdMs = options.holdMs ?? 30_000
    this.#gate.redis.onWentBack((wentBack) => this.observeWentBack(wentBack))
  }

  /** Redis's `maxmemory-policy`, as last read (null: not read yet, or not reported). */
  get memoryPolicy (): string | null {
    return this.#memoryPolicy
  }

  get epoch (): string | null {
    return this.#epoch
  }

  /** Redis lost its data a moment ago (or a read just suggested so): replicas are still putting their copies back. */
  get recovering (): boolean {
    return this.#suspected || Date.now() < this.#recoveringUntil
  }

  /** While recovering: what Redis lost (its data, or writes when it went back in time); else null. */
  get dataLoss (): string | null {
    return this.recovering ? this.#lossReason ?? 'Redis may have lost data; the check is under way' : null
  }

  /**
   * Whether an unfinished answer for this job may be behind a copy on another replica: Redis
   * lost its data moments ago, the job existed before, and replicas are still putting their
   * copies back (a replica that saw it finish may not have yet). Jobs created here and not
   * handed over yet are this process's own, and jobs created since the loss have no older copy.
   */
  mayBeBehind (job: StoredJob): boolean {
    return this.recovering && !isFinal(job.status) && !this.ledger.has(job.job_id) && Date.parse(job.created_at) < this.#lostAt
  }

  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => { void this.tick() }, this.#checkEveryMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** One periodic pass: the epoch check (also the breaker's probe when idle), then the ledger. */
  async tick (): Promise<void> {
    await this.checkEpoch()
    if (this.ledger.size > 0 && this.#gate.reachable) await this.syncAll()
  }

  /** The client connected (again): read the memory policy, check the epoch, hand over the ledger. */
  async reconnected (): Promise<void> {
    const policy = await this.#gate.call(async (redis) => await redis.memoryPolicy())
    if (policy.ok && policy.value !== this.#memoryPolicy) {
      this.#memoryPolicy = policy.value
      if (policy.value !== null && policy.value !== 'noeviction') {
        this.#logger?.warn({ maxmemory_policy: policy.value }, 'Redis may evict keys (maxmemory-policy is not noeviction): jobs can vanish when it fills up; set maxmemory-policy noeviction')
      }
    }
    await this.checkEpoch()
    await this.syncAll()
  }

  /**
   * What a read saw of the epoch: a missing or different one means Redis lost its data. Until the
   * check says, this process counts as recovering, so the read that noticed answers no less
   * carefully than the ones after the check.
   */
  observeEpoch (epoch: string | null): void {
    if (epoch !== null && (this.#epoch === null || epoch === this.#epoch)) return
    this.#suspect()
  }

  /**
   * A reply carried a write counter below one seen before: Redis went back in time (a failover
   * to a replica that lagged, a restart from an older snapshot) with its epoch intact. The
   * check raises the counter and moves Redis to a new epoch, and recovery runs as for a loss.
   */
  observeWentBack (_wentBack: WentBack): void {
    if (this.#epoch === null) return
    this.#suspect()
  }

  #suspect (): void {
    if (!this.recovering) this.#lostAt = Date.now()
    this.#suspected = true
    void this.checkEpoch()
  }

  async checkEpoch (): Promise<void> {
    // Cleared when settled, not inside the run: a run that ends before its first await would
    // otherwise clear it before it is even assigned, and no check would ever run again.
    this.#checking ??= this.#checkEpochNow().finally(() => {
      this.#checking = null
      this.#suspected = false
    })
    await this.#checking
  }

  async #checkEpochNow (): Promise<void> {
    const read = await this.#gate.call(async (redis) => await redis.epoch(randomUUID(), this.#holdMs))
    if (!read.ok) return
    const known = this.#epoch
    const { epoch, wentBack } = read.value
    this.#epoch = epoch
    if (known === null || known === epoch) return
    if (!this.recovering) this.#lostAt = Date.now()
    this.#recoveringUntil = Date.now() + this.#recoveryMs
    const since = isoTime(this.#lostAt)
    if (epoch.split(',').some((one) => one.startsWith('back-'))) {
      this.#lossReason = `Redis went back in time at ${since} (a failover to a replica that lagged, or a restart from an older snapshot): writes made before were lost; replicas are putting back their copies`
      this.#logger?.error({ previous_epoch: known, epoch, counter_seen: wentBack?.seen, counter_found: wentBack?.found }, 'Redis went back in time (it lost writes this replica saw land): putting back every job this process holds a copy of')
    } else {
      this.#lossReason = `Redis lost its data at ${since} (its epoch changed: a restart without persistence, or a flush): replicas are putting back their copies`
      this.#logger?.error({ previous_epoch: known, epoch }, 'Redis lost its data (its epoch changed): putting back every job this process holds a copy of')
    }
    await this.reseed()
  }

  /** Puts every copy held here back into Redis (see sync.lua, mode 'reseed'). */
  async reseed (): Promise<number> {
    let restored = 0
    for (const copy of [...this.#memory.records()]) {
      if (this.ledger.has(copy.job_id)) continue
      if (await this.#reseedOne(copy)) restored++
    }
    this.#logger?.warn({ restored }, 'copies put back into Redis after it lost its data')
    return restored
  }

  /** A read found Redis behind this copy (lost or rolled back): put the copy back, once at a time. */
  repair (copy: StoredJob): void {
    const id = copy.job_id
    if (this.#repairing.has(id) || this.ledger.has(id)) return
    this.#repairing.add(id)
    void this.#reseedOne(copy).finally(() => this.#repairing.delete(id))
  }

  /** Hands every ledger job to Redis; concurrent calls share one run. */
  async syncAll (): Promise<void> {
    if (this.ledger.size === 0) return
    this.#syncing ??= this.#syncAllNow().finally(() => { this.#syncing = null })
    await this.#syncing
  }

  async #syncAllNow (): Promise<void> {
    let copied = 0
    for (const [id] of [...this.ledger]) {
      if (!this.#gate.reachable) break
      if (await this.syncOne(id)) copied++
    }
    if (copied > 0) this.#logger?.info({ copied, left: this.ledger.size }, 'handed jobs created during the Redis outage over to Redis')
  }

  /** Hands one ledger job to Redis; true once it left the ledger. */
  async syncOne (id: string): Promise<boolean> {
    const entry = this.ledger.get(id)
    const job = this.#memory.peek(id)
    if (entry === undefined) return false
    if (job === null) {
      this.ledger.delete(id)
      return false
    }
    if (entry.kind === 'unknown') {
      const copied = await this.#gate.call(async (redis) => await redis.sync(job, { mode: 'create', queue: job.status === 'pending' }), 'record')
      if (!copied.ok) return false
      // Copied, or its create had run after all: either way Redis holds it now, once.
      this.ledger.delete(id)
      return true
    }
    const claim = this.#memory.claimOf(id)
    const copied = await this.#gate.call(async (redis) => await redis.sync(job, {
      mode: 'outage',
      base: entry.base,
      queue: job.status === 'pending' && claim === null,
      claim: claim === null ? undefined : { fence: claim.fence, leaseMs: claim.remainingMs }
    }), 'record')
    if (!copied.ok) return false
    if (!copied.value) return await this.#redisWins(id, job)
    if (this.#memory.peek(id)?.version !== job.version) {
      // Written here again while the copy was on its way: the next pass copies that too.
      this.ledger.set(id, { kind: 'unseen', base: job.version })
      return false
    }
    this.#memory.release(id)
    this.ledger.delete(id)
    return true
  }

  /** Redis refused the copy: it holds a record of this job already (an earlier copy whose reply was lost). */
  async #redisWins (id: string, job: StoredJob): Promise<boolean> {
    const read = await this.#gate.call(async (redis) => await redis.get(id))
    if (!read.ok) return false
    const stored = read.value
    if (stored !== null && stored.version < job.version && !isFinal(stored.status)) {
      this.ledger.set(id, { kind: 'unseen', base: stored.version })
      return false
    }
    this.#logger?.warn({ job_id: id, version: job.version, redis_version: stored?.version ?? null }, 'Redis already holds a newer record of a job created during the outage; it wins')
    this.#memory.release(id)
    if (stored !== null) this.#memory.replace(stored)
    this.ledger.delete(id)
    return true
  }

  async #reseedOne (copy: StoredJob): Promise<boolean> {
    const record = reseeded(copy)
    const copied = await this.#gate.call(async (redis) => await redis.sync(record, { mode: 'reseed', queue: record.status === 'pending', delayMs: this.#holdMs }), 'record')
    if (!copied.ok || !copied.value) return false
    this.#memory.adopt(record)
    return true
  }
}

/**
 * The record to put back for a copy after Redis lost its data. A claim died with the data, so
 * an unfinished job is queued again; a running attempt is handed back (it does not count
 * against JOB_MAX_ATTEMPTS, as at a shutdown) and its worker, fenced out, stops.
 */
export function reseeded (copy: StoredJob): StoredJob {
  if (isFinal(copy.status)) return copy
  return { ...reseed(copy, isoNow()), version: copy.version + 1 }
}
