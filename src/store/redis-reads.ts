import { isFinal } from '../schemas/job.js'
import type { FinalCopies } from './final-copies.js'
import { type ListPage, type ListQuery, type Lookup, type StoredJob, StoreUnavailableError, compareNewestFirst, matchesQuery } from './job-store.js'
import { issuedAtMs, issuedWithin } from './job-ids.js'
import type { ReplicaRoster } from './replica-roster.js'
import type { MemoryJobStore } from './memory.js'
import type { Reconciler } from './reconciler.js'
import type { RedisGate } from './redis-gate.js'

export interface RedisReadsOptions {
  memory: MemoryJobStore
  gate: RedisGate
  reconciler: Reconciler
  copies: FinalCopies
  /** How long a read of a job this process has no copy of waits for an unreachable Redis. */
  readWaitMs: number
  /** For this long after its id was issued, a job no store holds may still exist ("not visible yet"). */
  visibilityGraceMs: number
  /** Aborted at shutdown: reads stop waiting for Redis. */
  shuttingDown: AbortSignal
  onFallback?: (operation: 'read') => void
  /** Drops every trace of a job Redis says was deleted. */
  forget: (id: string) => Promise<unknown>
  /** Which replicas are up and connected: a fresh id no store holds is a certain 404 when they all account for it. */
  roster?: ReplicaRoster
}

/**
 * Reads of jobs when Redis is configured, by the rule that reads never go back: a copy newer than
 * Redis's record (Redis lost or rolled back data) is answered and put back into Redis, a final
 * copy wins over an unfinished record, and while Redis cannot be reached a copy answers only what
 * nothing can contradict (a final state, or a job this process owns).
 */
export class RedisReads {
  readonly #o: RedisReadsOptions

  constructor (options: RedisReadsOptions) {
    this.#o = options
  }

  async lookup (id: string): Promise<Lookup> {
    const { memory, gate, reconciler, shuttingDown } = this.#o
    const local = memory.peek(id)
    // Given for found jobs too, exactly as for a missing one: another tenant's job must answer alike.
    if (local !== null && !reconciler.recovering && this.#o.copies.isCurrent(id)) return { job: local, absenceConfirmed: this.#certain(id) }
    // An unfinished job's copy may be behind what a client saw elsewhere.
    const answerable = local !== null && (isFinal(local.status) || reconciler.ledger.has(id))
    // Whether every replica accounts for the id, as known before the read: a heartbeat heard
    // while it is under way may say a replica holds nothing any more because it just handed the
    // job to Redis, after the read looked.
    const certainBefore = this.#certain(id)
    const remote = await gate.callWaiting((redis) => redis.read(id), answerable ? 0 : this.#o.readWaitMs, shuttingDown)
    if (!remote.ok) {
      if (!answerable) {
        if (shuttingDown.aborted) throw new StoreUnavailableError('This replica is shutting down and cannot reach the job store (Redis) for this job')
        throw new StoreUnavailableError(local === null
          ? 'The job store (Redis) is unreachable and this process has no copy of the job'
          : 'The job store (Redis) is unreachable and this process\'s copy of the running job may be behind')
      }
      this.#o.onFallback?.('read')
      return { job: local, absenceConfirmed: false }
    }
    const { job, deleted, epoch } = remote.value
    reconciler.observeEpoch(epoch)
    const certain = !reconciler.recovering && certainBefore && this.#certain(id)
    if (deleted) {
      await this.#o.forget(id)
      return { job: null, absenceConfirmed: true }
    }
    const localOnly = reconciler.ledger.get(id)
    if (job === null) {
      if (local === null) return { job: null, absenceConfirmed: certain }
      // Redis lost a record this process holds (it never answers a confident 404 for it): put it back.
      if (localOnly === undefined) reconciler.repair(local)
      return { job: local, absenceConfirmed: false }
    }
    if (localOnly?.kind === 'unknown') reconciler.ledger.delete(id)
    else if (localOnly !== undefined) return { job: newest(local, job), absenceConfirmed: false }
    if (local !== null && !isFinal(job.status) && (local.version > job.version || isFinal(local.status))) {
      // Redis went back (lost or rolled-back data): answer what was answered before, and repair.
      reconciler.repair(local)
      return { job: local, absenceConfirmed: false }
    }
    // A final record is final: after Redis went back in time a job's versions are written again,
    // so an unfinished copy from before may carry a higher one than the record that ended it.
    if (local !== null && isFinal(job.status) && !isFinal(local.status) && local.version >= job.version) memory.replace(job)
    this.#o.copies.adopt(job)
    return { job, absenceConfirmed: certain }
  }

  /** Whether "no such job" is certain for this id: issued before the grace, or accounted for by every replica. */
  #certain (id: string): boolean {
    return !issuedWithin(id, this.#o.visibilityGraceMs) || this.#o.roster?.accountsFor(issuedAtMs(id) as number) === true
  }

  /** Redis's page, with what only this process holds merged in (the newer record of a job on both sides). */
  async list (query: ListQuery): Promise<ListPage> {
    const { memory, gate, reconciler } = this.#o
    const remote = await gate.call((redis) => redis.list(query))
    if (!remote.ok) {
      this.#o.onFallback?.('read')
      return await memory.list(query)
    }
    const ledger = reconciler.ledger
    if (ledger.size === 0) return remote.value
    const local = await memory.list(query, (id) => ledger.has(id))
    const byId = new Map<string, StoredJob>()
    for (const job of [...remote.value.jobs, ...local.jobs]) byId.set(job.job_id, newest(byId.get(job.job_id) ?? null, job))
    const merged = [...byId.values()].filter((job) => matchesQuery(job, query)).sort(compareNewestFirst)
    return {
      jobs: merged.slice(0, query.limit),
      hasMore: remote.value.hasMore || local.hasMore || merged.length > query.limit
    }
  }
}

export function newest (a: StoredJob | null, b: StoredJob): StoredJob {
  return a === null || b.version > a.version ? b : a
}
