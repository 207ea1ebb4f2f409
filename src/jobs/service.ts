import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { ServiceError } from '../errors.js'
import * as lifecycle from '../lifecycle.js'
import type { JobEvent } from '../schemas/events.js'
import { type JobStatusName, type ResearchOptionsData, type StoredJob, isFinal, toPublic } from '../schemas/job.js'
import { optionsProblem, resolveOptions } from '../schemas/options.js'
import type { CreateResearchInput } from '../schemas/requests.js'
import { type JobStore, type Lookup, type PutResult, StoreFullError, StoreUnavailableError, decodeCursor, encodeCursor } from '../store/job-store.js'
import { JobNotices, type JobWatch } from '../store/notices.js'
import { asJob, traceCarrier } from '../telemetry/spans.js'
import type { EventSource } from './event-stream.js'
import { TenantQuotas } from './quotas.js'
import { newJob } from './records.js'
import { isoNow } from '../iso-time.js'

export class JobNotFoundError extends ServiceError {
  override name = 'JobNotFoundError'
  constructor (id: string) { super('not_found', `No job with id ${id} (it may have expired)`) }
}

/**
 * No store holds the job, but it may exist: its id was issued moments ago, possibly by a replica
 * cut off from Redis, or Redis is being re-seeded after losing its data. Not a 404: retry.
 */
export class JobNotVisibleYetError extends ServiceError {
  override name = 'JobNotVisibleYetError'
  constructor (id: string) {
    super('job_not_visible_yet', `Job ${id} is not visible yet: it may have been created moments ago on a replica that has not stored it in Redis yet; retry shortly`, { retryAfter: 1 })
  }
}

export class JobAlreadyFinishedError extends ServiceError {
  override name = 'JobAlreadyFinishedError'
  constructor (job: StoredJob) { super('already_finished', `Job ${job.job_id} is already ${job.status}`, { details: { job: toPublic(job) } }) }
}

export class InvalidCursorError extends ServiceError {
  override name = 'InvalidCursorError'
  constructor () { super('invalid_cursor', 'cursor is not a next_cursor value returned by this API') }
}

/** Options the schema allows but this request or this deployment cannot run (a source not configured). */
export class UnusableOptionsError extends ServiceError {
  override name = 'UnusableOptionsError'
  constructor (message: string, code: 'invalid_options' | 'source_unavailable' | 'webhooks_unavailable') { super(code, message) }
}

export class IdempotencyKeyReusedError extends ServiceError {
  override name = 'IdempotencyKeyReusedError'
  constructor () { super('idempotency_key_reused', 'This Idempotency-Key was already used with a different request body') }
}

export class IdempotentJobMissingError extends ServiceError {
  override name = 'IdempotentJobMissingError'
  constructor (id: string) {
    super('idempotent_job_missing', `This Idempotency-Key created job ${id}, which is not available (still being stored, or deleted)`, { retryAfter: 1 })
  }
}

/** One-time claims shared by replicas (the store's SET NX), for idempotency keys. */
export interface OnceClaims {
  claimOnce (key: string, value: string, ttlSeconds: number): Promise<string | null>
  releaseClaim (key: string): Promise<void>
}

/** How long an Idempotency-Key is remembered. */
export const IDEMPOTENCY_TTL_SECONDS = 86_400

export interface JobPage { jobs: StoredJob[], nextCursor: string | null }

/** What the service reports as it changes jobs (metrics and logs hang off it). */
export interface JobEvents {
  created? (job: StoredJob): void
  cancelled? (job: StoredJob): void
}

/** Reads that tell a certain absence from an uncertain one. */
export interface JobLookup {
  lookup (id: string): Promise<Lookup>
}

/** A create past its tenant's quota: 429, naming the quota and its value. */
export class QuotaExceededError extends ServiceError {
  override name = 'QuotaExceededError'
  constructor (tenant: string, quota: { name: 'queued', limit: number }) {
    super('quota_exceeded', `Tenant ${tenant} has ${quota.limit} jobs queued, its quota of queued jobs; retry once some have started`, { retryAfter: 5, details: { quota: quota.name, limit: quota.limit } })
  }
}

/** What this deployment can run, asked before a job is accepted. */
export interface CreateChecks {
  /** Why these options cannot run here (a source with no provider configured), or null. */
  sourceUnavailable? (options: ResearchOptionsData): string | null
  /** Why this webhook URL is refused (`refused: ...`), or null; absent when webhooks are off. */
  webhookRefused? (url: string): string | null
}

/** The store's change feed: notices of every write, and the events kept with each job. */
export interface JobFeed {
  readonly notices: JobNotices
  events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]>
}

export interface JobServiceOptions {
  store: JobStore & JobLookup
  /** Where watches and event streams read; without it (tests of the runner) no change is seen. */
  feed?: JobFeed
  events?: JobEvents
  /** Idempotency-Key claims; without them, every create makes a new job. */
  claims?: OnceClaims
  checks?: CreateChecks
  /** Per-tenant quotas; without them, none. */
  quotas?: TenantQuotas
}

/** A create request as the API takes it: the body, who asks, and its Idempotency-Key. */
export interface CreateJobInput extends CreateResearchInput {
  /** The tenant creating it (null when the API is open). */
  tenant?: string | null
  idempotencyKey?: string
}

/** What the routes do with jobs, independent of HTTP. The only way a job is created. */
export class JobService implements EventSource {
  readonly #store: JobStore & JobLookup
  readonly #feed: JobFeed
  readonly #events: JobEvents
  readonly #claims: OnceClaims | undefined
  readonly #checks: CreateChecks
  readonly #quotas: TenantQuotas

  constructor (options: JobServiceOptions) {
    this.#store = options.store
    this.#feed = options.feed ?? { notices: new JobNotices(true), events: async () => [] }
    this.#events = options.events ?? {}
    this.#claims = options.claims
    this.#checks = options.checks ?? {}
    this.#quotas = options.quotas ?? new TenantQuotas(0)
  }

  /**
   * Checks what the request asks for, then queues the job. With an Idempotency-Key (and claims),
   * creates once per (tenant, key): the same key and body within 24 h give the same job
   * (`replayed`), the same key with another body is refused. Atomic across replicas.
   */
  async create (input: CreateJobInput): Promise<{ job: StoredJob, replayed: boolean }> {
    const { query: rawQuery, webhook_url: webhookUrl = null, tenant: owner = null, idempotencyKey, ...requested } = input
    const query = rawQuery.trim()
    const depth = requested.depth ?? 'standard'
    const options = resolveOptions(requested)
    this.#check(options, webhookUrl)
    const job = newJob({ query, depth, owner, options, webhookUrl, traceContext: traceCarrier() })
    // The create's spans (its Redis writes) carry the job's id and tenant, as its runs' do.
    return await asJob(job.job_id, owner ?? '', async () => await this.#queue(job, idempotencyKey))
  }

  async #queue (job: StoredJob, idempotencyKey: string | undefined): Promise<{ job: StoredJob, replayed: boolean }> {
    const claims = this.#claims
    if (idempotencyKey === undefined || claims === undefined) return { job: await this.#insert(job), replayed: false }
    const { query, depth, options, owner = null } = job
    const fingerprint = createHash('sha256').update(JSON.stringify([query, depth, options, job.webhook?.url ?? null])).digest('hex')
    const scope = `${owner ?? '-'}:${createHash('sha256').update(idempotencyKey).digest('hex')}`
    const held = await claims.claimOnce(scope, `${fingerprint}:${job.job_id}`, IDEMPOTENCY_TTL_SECONDS)
    if (held === null) {
      try {
        return { job: await this.#insert(job), replayed: false }
      } catch (err) {
        await claims.releaseClaim(scope)
        throw err
      }
    }
    const [heldFingerprint, id = ''] = held.split(':')
    if (heldFingerprint !== fingerprint) throw new IdempotencyKeyReusedError()
    // The first request may still be storing its job (another replica): wait a moment for it.
    for (let tries = 0; tries < 20; tries++) {
      const existing = await this.#store.get(id)
      if (existing !== null) return { job: existing, replayed: true }
      await sleep(50)
    }
    throw new IdempotentJobMissingError(id)
  }

  #check (options: ResearchOptionsData, webhookUrl: string | null): void {
    const invalid = optionsProblem(options)
    if (invalid !== null) throw new UnusableOptionsError(invalid, 'invalid_options')
    const unavailable = this.#checks.sourceUnavailable?.(options) ?? null
    if (unavailable !== null) throw new UnusableOptionsError(unavailable, 'source_unavailable')
    if (webhookUrl === null) return
    const webhookRefused = this.#checks.webhookRefused
    if (webhookRefused === undefined) throw new UnusableOptionsError('webhooks are not enabled on this server (it has no WEBHOOK_SECRET)', 'webhooks_unavailable')
    const refused = webhookRefused(webhookUrl)
    if (refused !== null) throw new UnusableOptionsError(`webhook_url is ${refused}`, 'invalid_options')
  }

  async #insert (job: StoredJob): Promise<StoredJob> {
    const maxQueued = this.#quotas.maxQueued(job.owner ?? null)
    const result = await this.#store.put(job, 0, { enqueue: 'tail', admit: true, quota: maxQueued === null ? undefined : { maxQueued } })
    if (!result.ok) {
      if (result.reason === 'unavailable' && result.full === true) throw new StoreFullError(`${result.cause}; retry later`)
      if (result.reason === 'unavailable' && result.quota !== undefined) throw new QuotaExceededError(job.owner as string, result.quota)
      unavailableAsError(result)
      /* c8 ignore next -- a fresh random UUIDv7 never exists already */
      throw new Error('A new job id collided with an existing job')
    }
    this.#events.created?.(result.job)
    return result.job
  }

  /**
   * `tenant`: who asks (null when the API is open). Another tenant's job answers exactly like an
   * unknown id, so responses never tell whether an id exists.
   */
  async get (id: string, tenant: string | null = null): Promise<StoredJob> {
    // Ids are issued lower-case; a UUID is the same id in either case.
    const { job, absenceConfirmed } = await this.#store.lookup(id.toLowerCase())
    // Another tenant's job answers exactly as a job that does not exist would.
    if (job === null || (tenant !== null && job.owner !== tenant)) {
      throw absenceConfirmed ? new JobNotFoundError(id) : new JobNotVisibleYetError(id)
    }
    return job
  }

  /**
   * The job, after waiting up to `waitMs` for a change while it is unfinished and `current` says
   * the caller holds it as it is (a long poll). Watched before the read, so no change falls
   * between the read and the wait.
   */
  async whenChanged (id: string, tenant: string | null, waitMs: number, current: (job: StoredJob) => boolean, signal: AbortSignal): Promise<StoredJob> {
    const watch = this.watch(id.toLowerCase(), 0)
    try {
      let job = await this.get(id, tenant)
      watch.settle(job.version)
      const deadline = Date.now() + waitMs
      while (current(job) && !isFinal(job.status)) {
        const end = await watch.next(deadline - Date.now(), signal)
        if (end === 'timeout' || end === 'aborted') break
        const held = job.version
        job = await this.get(id, tenant)
        watch.settle(job.version)
        // A resync (notices may have been missed) is not a change: the wait goes on if nothing changed.
        if (end !== 'resync' || job.version !== held) break
      }
      return job
    } finally {
      watch.close()
    }
  }

  /** A watch on the job's changes after `version` (close it when done). */
  watch (id: string, version: number): JobWatch {
    return this.#feed.notices.watch(id, version)
  }

  get noticesLive (): boolean {
    return this.#feed.notices.readersLive
  }

  /** The job's events after `afterId` (null: from the first). */
  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    return await this.#feed.events(id, afterId, limit)
  }

  /** The record as stored, without an owner check (for a stream that checked it when it opened). */
  async peek (id: string): Promise<StoredJob | null> {
    return await this.#store.get(id)
  }

  async list (options: { status?: JobStatusName, limit: number, cursor?: string, tenant?: string | null }): Promise<JobPage> {
    let after
    if (options.cursor !== undefined) {
      after = decodeCursor(options.cursor)
      if (after === null) throw new InvalidCursorError()
    }
    const owner = options.tenant ?? undefined
    const page = await this.#store.list({ status: options.status, limit: options.limit, after, owner })
    const last = page.jobs.at(-1)
    return { jobs: page.jobs, nextCursor: page.hasMore && last !== undefined ? encodeCursor(last) : null }
  }

  /**
   * Marks the job cancelled (a compare-and-set, so it cannot undo a completion). Its run stops
   * on the store's notice of the write, on whichever replica runs it.
   */
  async cancel (id: string, tenant: string | null = null): Promise<StoredJob> {
    let job = await this.get(id, tenant)
    id = job.job_id
    for (;;) {
      if (isFinal(job.status)) throw new JobAlreadyFinishedError(job)
      const result = await this.#store.put(lifecycle.cancel(job, isoNow()), job.version)
      if (result.ok) {
        this.#events.cancelled?.(result.job)
        return result.job
      }
      unavailableAsError(result)
      if (result.current === null) throw new JobNotFoundError(id)
      job = result.current
    }
  }

  /** Cancels the job if it is still running, then removes it. */
  async delete (id: string, tenant: string | null = null): Promise<void> {
    const job = await this.get(id, tenant)
    id = job.job_id
    if (!isFinal(job.status)) {
      try {
        await this.cancel(id, tenant)
      } catch (err) {
        if (!(err instanceof JobAlreadyFinishedError)) throw err
      }
    }
    await this.#store.delete(id)
  }
}

/** A write the store could not make is the client's 503 (retry), never a conflict. */
function unavailableAsError (result: PutResult): asserts result is Exclude<PutResult, { reason: 'unavailable' }> {
  if (!result.ok && result.reason === 'unavailable') throw new StoreUnavailableError(`The job store cannot take this change now (${result.cause})`)
}
