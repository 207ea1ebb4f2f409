import type { FinalCopies } from './final-copies.js'
import type { JobNotice } from './notices.js'
import { type PutOptions, type PutResult, type StoredJob, StoreUnavailableError } from './job-store.js'
import type { MemoryJobStore } from './memory.js'
import type { Reconciler } from './reconciler.js'
import { type RedisGate, refusesEveryWriter } from './redis-gate.js'

export interface RedisWritesOptions {
  memory: MemoryJobStore
  gate: RedisGate
  reconciler: Reconciler
  copies: FinalCopies
  /** Writes a record in this process (with its event and notice). */
  putHere: (job: StoredJob, expectedVersion: number, options: PutOptions) => Promise<PutResult>
  /** Drops every trace of a job here; `deleted`: Redis deleted it (a notice goes out either way). */
  forget: (id: string, deleted: boolean) => Promise<boolean>
  /** Tells this process's readers and runner of a write Redis took, before its notice comes back from Redis. */
  notify: (notice: JobNotice) => void
  onFallback?: (operation: 'write') => void
  /** False once this replica has been cut off so long that the others take it for gone (see ReplicaRoster). */
  mayHoldCreates?: () => boolean
}

/**
 * Writes of jobs when Redis is configured. Redis is the one authority for every job it has
 * seen: such a job changes only through Redis, and a write Redis cannot take is refused (503).
 * Only a create Redis could not take is held here (the reconciler's ledger), to be handed to
 * Redis when it answers again; one that surely never reached Redis may run here meanwhile. Redis
 * that answers but refuses writes (full, read-only) makes creates fail, instead of accepting
 * jobs no other replica could see.
 */
export class RedisWrites {
  readonly #o: RedisWritesOptions

  constructor (options: RedisWritesOptions) {
    this.#o = options
  }

  async put (job: StoredJob, expectedVersion: number, options: PutOptions): Promise<PutResult> {
    const { gate, reconciler, memory, copies } = this.#o
    const id = job.job_id
    const localOnly = reconciler.ledger.get(id)
    if (localOnly !== undefined && !(gate.reachable && await reconciler.syncOne(id))) {
      if (localOnly.kind === 'unseen') return await this.#o.putHere(job, expectedVersion, options)
      return unavailable('no', 'the job was created while Redis was out of reach and is not in Redis yet')
    }
    // Jobs created here during an outage are claimed first (see claim): a write claims no next
    // jobs from Redis while any wait here.
    if (options.claimNext !== undefined && await memory.queueDepth() > 0) options = { ...options, claimNext: undefined }
    const remote = await gate.call((redis) => redis.put(job, expectedVersion, options), 'record')
    if (remote.ok) {
      const result = remote.value
      if (result.ok) {
        copies.adopt(result.job)
        for (const claim of result.claimed ?? []) if (claim.started === true) copies.adopt(claim.job)
        this.#o.notify({ id, version: result.job.version, status: result.job.status })
      } else if (result.reason !== 'unavailable' && result.current !== null) copies.adopt(result.current)
      return result
    }
    if (expectedVersion !== 0) return unavailable(remote.failure === 'unknown' ? 'unknown' : 'no', remote.cause, remote.failure === 'refused' && refusesEveryWriter(remote.cause))
    if (remote.failure === 'refused') throw new StoreUnavailableError(`Redis refuses writes (${remote.cause}), so the job cannot be stored`)
    if (this.#o.mayHoldCreates?.() === false) throw new StoreUnavailableError('Redis has been out of reach for longer than JOB_VISIBILITY_GRACE_MS allows, so the job cannot be stored here: other replicas would deny it')
    // A create Redis could not take: held here. One that surely never reached Redis is queued
    // here; one that may have (no answer came) waits for Redis, so it can never run twice.
    const created = await this.#o.putHere(job, 0, remote.failure === 'unsent' ? options : { ...options, enqueue: undefined })
    if (!created.ok) return created
    reconciler.ledger.set(id, remote.failure === 'unsent' ? { kind: 'unseen', base: 0 } : { kind: 'unknown' })
    this.#o.onFallback?.('write')
    return created
  }

  async delete (id: string): Promise<boolean> {
    if (this.#o.reconciler.ledger.get(id)?.kind === 'unseen') return await this.#o.forget(id, false)
    const remote = await this.#o.gate.call((redis) => redis.delete(id), 'record')
    if (!remote.ok) throw new StoreUnavailableError(`The job cannot be deleted while Redis cannot store the change (${remote.cause})`)
    return await this.#o.forget(id, remote.value) || remote.value
  }
}

function unavailable (applied: 'no' | 'unknown', cause: string, refused = false): PutResult {
  return refused ? { ok: false, reason: 'unavailable', applied, cause, refused } : { ok: false, reason: 'unavailable', applied, cause }
}
