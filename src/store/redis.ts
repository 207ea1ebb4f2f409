import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { RedisClient } from './redis-client.js'
import { JOB_STATUSES, type JobStatusName } from '../schemas/job.js'
import {
  type Enqueue, type JobStore, type PutOptions, type WebhookOutbox, type ListPage, type ListQuery, type PutResult, type QueueStats, type StoredJob,
  createdMs, emptyCounts, isAfterCursor, leaseExpiryMs, matchesQuery, serializeJob, stampWrite, webhookDue
} from './job-store.js'
import { dropOldest } from './bounded.js'
import { type JobEvent, type JobEventType, eventData } from './job-events.js'

export const KEYS = {
  job: (id: string) => `job:${id}`,
  events: (id: string) => `job:${id}:events`,
  created: 'jobs:created',
  expiry: 'jobs:expiry',
  pending: 'jobs:pending',
  leases: 'jobs:leases',
  delayed: 'jobs:delayed',
  webhooksDue: 'webhooks:due',
  status: (status: JobStatusName) => `jobs:status:${status}`
} as const

const STATUS_KEYS = JOB_STATUSES.map(KEYS.status)
/** Parsed records remembered for repeated reads (about 2 KB each). */
const PARSED_KEPT = 1000
/** Retries moved from the delayed set into the queue by one claim, at most. */
const PROMOTE_PER_CLAIM = 100

const readLua = (path: string): string => readFileSync(new URL(`./lua/${path}.lua`, import.meta.url), 'utf8')

class LuaScript {
  readonly name: string
  readonly source: string
  readonly sha: string
  constructor (name: string, libraries: string[] = []) {
    this.name = name
    this.source = [...libraries.map((lib) => readLua(`lib/${lib}`)), readLua(name)].join('\n')
    this.sha = createHash('sha1').update(this.source).digest('hex')
  }
}

const SCRIPTS = {
  put: new LuaScript('put', ['record']),
  sync: new LuaScript('sync', ['record']),
  delete: new LuaScript('delete'),
  trim: new LuaScript('trim'),
  claim: new LuaScript('claim'),
  rateWindow: new LuaScript('rate-window'),
  idempotency: new LuaScript('idempotency'),
  webhookClaim: new LuaScript('webhook-claim')
}

export class RedisTimeoutError extends Error {
  override name = 'RedisTimeoutError'
}

export interface RedisJobStoreOptions {
  ttlSeconds: number
  /** Deadline for each call; a call past it rejects with RedisTimeoutError. */
  timeoutMs: number
  now?: () => number
  /** Most events kept per job in its stream (default 500). */
  maxEvents?: number
  /** Told about every round trip: the command (EVALSHA is named by its script), its time, success. */
  onCommand?: (command: string, ms: number, ok: boolean) => void
}

/**
 * Jobs in Redis: `job:<id>` holds the record as JSON written with SETEX; `jobs:created` and
 * `jobs:expiry` index it for listing without KEYS; `jobs:pending` is the FIFO of work to run.
 * Every multi-key change is one Lua script, so no state is ever half-written.
 */
export class RedisJobStore implements JobStore, WebhookOutbox {
  readonly #client: RedisClient
  readonly #ttlSeconds: number
  readonly #maxEvents: number
  /** The last record read per job, with the JSON it came from (most recently read last). */
  readonly #parsed = new Map<string, { json: string, job: StoredJob }>()
  readonly #timeoutMs: number
  readonly #now: () => number
  readonly #onCommand: RedisJobStoreOptions['onCommand']
  #lastTrimMs = 0

  constructor (client: RedisClient, options: RedisJobStoreOptions) {
    this.#client = client
    this.#ttlSeconds = options.ttlSeconds
    this.#maxEvents = options.maxEvents ?? 500
    this.#timeoutMs = options.timeoutMs
    this.#now = options.now ?? Date.now
    this.#onCommand = options.onCommand
  }

  get client (): RedisClient {
    return this.#client
  }

  async get (id: string): Promise<StoredJob | null> {
    const json = await this.#send<string | null>(['GET', KEYS.job(id)])
    if (json === null) {
      this.#parsed.delete(id)
      return null
    }
    // Pollers read the same unchanged record again and again: parse each version once. Records
    // are never mutated in place (every change is a new object), so sharing one is safe.
    const hit = this.#parsed.get(id)
    if (hit !== undefined && hit.json === json) return hit.job
    const job = JSON.parse(json) as StoredJob
    this.#parsed.delete(id)
    this.#parsed.set(id, { json, job })
    if (this.#parsed.size > PARSED_KEPT) dropOldest(this.#parsed, PARSED_KEPT / 10)
    return job
  }

  async readForUpdate (id: string): Promise<StoredJob | null> {
    return await this.get(id)
  }

  async put (job: StoredJob, expectedVersion: number, enqueue?: Enqueue, options: PutOptions = {}): Promise<PutResult> {
    const now = this.#now()
    const written = stampWrite(job, expectedVersion, this.#ttlSeconds, now)
    const mode = enqueue === undefined ? '' : typeof enqueue === 'string' ? enqueue : 'delayed'
    const reply = await this.#script<[number, string?]>(SCRIPTS.put, this.#jobKeys(job.job_id), [
      String(expectedVersion), serializeJob(written), String(this.#ttlSeconds),
      String(createdMs(written)), String(Date.parse(written.expires_at)), job.job_id, mode,
      written.status, String(leaseExpiryMs(written) ?? ''), typeof enqueue === 'object' ? String(enqueue.retryAtMs) : '',
      eventData(written), String(this.#maxEvents), webhookDue(written) ? '1' : '', options.amendFinal === true ? '1' : '', String(now)
    ])
    if (reply[0] === 1) return { ok: true, job: written, authoritative: true }
    return { ok: false, current: reply[1] === undefined ? null : JSON.parse(reply[1]) as StoredJob }
  }

  /**
   * Copies a job written elsewhere into Redis, with its remaining TTL, if Redis still holds
   * `baseVersion` (what it held when the copy diverged) or nothing. `enqueue` also queues it
   * (a pending job nobody runs yet). Returns false when Redis's record moved on.
   */
  async sync (job: StoredJob, baseVersion: number, enqueue: boolean): Promise<boolean> {
    const remainingSeconds = Math.ceil((Date.parse(job.expires_at) - this.#now()) / 1000)
    if (remainingSeconds <= 0) return false
    const reply = await this.#script<number>(SCRIPTS.sync, this.#jobKeys(job.job_id), [
      String(baseVersion), serializeJob(job), String(remainingSeconds),
      String(createdMs(job)), String(Date.parse(job.expires_at)), job.job_id, enqueue ? '1' : '0',
      job.status, String(leaseExpiryMs(job) ?? ''), webhookDue(job) ? '1' : '', String(this.#now())
    ])
    return reply === 1
  }

  async claimWebhooks (nowMs: number, leaseUntilMs: number, limit: number): Promise<string[]> {
    return await this.#script<string[]>(SCRIPTS.webhookClaim, [KEYS.webhooksDue], [String(nowMs), String(leaseUntilMs), String(limit)])
  }

  async scheduleWebhook (id: string, atMs: number | null): Promise<void> {
    await this.#send(atMs === null ? ['ZREM', KEYS.webhooksDue, id] : ['ZADD', KEYS.webhooksDue, String(atMs), id])
  }

  /** The job's events after `afterId` (exclusive), oldest first, from its stream. */
  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    const entries = await this.#send<Array<[string, string[] | Record<string, string>]>>(['XRANGE', KEYS.events(id), afterId === null ? '-' : `(${afterId}`, '+', 'COUNT', String(limit)])
    return entries.map(([eventId, fields]) => {
      const map = Array.isArray(fields) ? Object.fromEntries(pairs(fields)) : fields
      return { id: eventId, type: map.type as JobEventType, data: map.data as string }
    })
  }

  async delete (id: string): Promise<boolean> {
    return await this.#script<number>(SCRIPTS.delete, this.#jobKeys(id), [id]) === 1
  }

  async list (query: ListQuery): Promise<ListPage> {
    await this.#trimIndexes()
    const jobs: StoredJob[] = []
    const batch = Math.min(Math.max(query.limit * 2, 20), 500)
    let max = query.after === undefined ? '+inf' : String(query.after.createdMs)
    let offset = 0
    for (;;) {
      const entries = scoredMembers(await this.#send<unknown[]>(['ZRANGE', KEYS.created, max, '-inf', 'BYSCORE', 'REV', 'LIMIT', String(offset), String(batch), 'WITHSCORES']))
      if (entries.length === 0) return { jobs, hasMore: false }
      const ids = entries.filter(([id, score]) => isAfterCursor(score, id, query.after)).map(([id]) => id)
      const records = ids.length === 0 ? [] : await this.#send<Array<string | null>>(['MGET', ...ids.map(KEYS.job)])
      const vanished: string[] = []
      let full = false
      for (let i = 0; i < ids.length && !full; i++) {
        const json = records[i]
        if (json == null) { vanished.push(ids[i] as string); continue }
        const job = JSON.parse(json) as StoredJob
        if (!matchesQuery(job, query)) continue
        if (jobs.length === query.limit) full = true
        else jobs.push(job)
      }
      // Evicted or expired before the trim saw them: drop them from the index now.
      if (vanished.length > 0) await this.#send(['ZREM', KEYS.created, ...vanished])
      if (full) return { jobs, hasMore: true }
      if (entries.length < batch) return { jobs, hasMore: false }
      // Continue at the last score seen; entries sharing it that were already read are skipped by offset.
      const lastScore = String((entries.at(-1) as [string, number])[1])
      offset = max === lastScore ? offset + entries.length : entries.filter(([, score]) => String(score) === lastScore).length
      max = lastScore
    }
  }

  async claim (leaseUntilMs: number): Promise<string | null> {
    return (await this.claimMany(leaseUntilMs, 1))[0] ?? null
  }

  async claimMany (leaseUntilMs: number, limit: number): Promise<string[]> {
    return await this.#script<string[]>(SCRIPTS.claim, [KEYS.pending, KEYS.delayed, KEYS.leases], [
      String(this.#now()), String(leaseUntilMs), String(PROMOTE_PER_CLAIM), String(limit)
    ])
  }

  async expiredLeases (nowMs: number, limit: number): Promise<string[]> {
    return await this.#send<string[]>(['ZRANGE', KEYS.leases, '-inf', `(${nowMs}`, 'BYSCORE', 'LIMIT', '0', String(limit)])
  }

  async dropLease (id: string): Promise<void> {
    await this.#send(['ZREM', KEYS.leases, id])
  }

  async queueDepth (): Promise<number> {
    return await this.#send<number>(['LLEN', KEYS.pending])
  }

  /** Counts come from the status sets (no scan of records); leases from the lease index. */
  async stats (nowMs: number): Promise<QueueStats> {
    const [queued, delayed, head, leased, ...counts] = await Promise.all([
      this.#send<number>(['LLEN', KEYS.pending]),
      this.#send<number>(['ZCARD', KEYS.delayed]),
      this.#send<string | null>(['LINDEX', KEYS.pending, '0']),
      this.#send<string[]>(['ZRANGE', KEYS.leases, String(nowMs), '+inf', 'BYSCORE']),
      ...STATUS_KEYS.map((key) => this.#send<number>(['ZCOUNT', key, String(nowMs), '+inf']))
    ])
    const result: QueueStats = { counts: emptyCounts(), queued, delayed, oldestQueuedAt: null, leasesByWorker: {} }
    JOB_STATUSES.forEach((status, i) => { result.counts[status] = counts[i] as number })
    if (head !== null) result.oldestQueuedAt = (await this.get(head))?.updated_at ?? null
    const holders = leased.length === 0 ? [] : await this.#send<Array<string | null>>(['MGET', ...leased.map(KEYS.job)])
    for (const json of holders) {
      const worker = json === null ? null : (JSON.parse(json) as StoredJob).worker
      if (worker !== null) result.leasesByWorker[worker] = (result.leasesByWorker[worker] ?? 0) + 1
    }
    return result
  }

  /** Counts one hit of `key` in a fixed window of `windowMs`; returns the count and the ms left. */
  async countInWindow (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    const [count, ttlMs] = await this.#script<[number, number]>(SCRIPTS.rateWindow, [`ratelimit:${key}`], [String(windowMs)])
    return { count, ttlMs }
  }

  /** Stores `value` under `key` unless it is taken; returns the holder's value when it is. */
  async claimOnce (key: string, value: string, ttlSeconds: number): Promise<string | null> {
    return await this.#script<string | null>(SCRIPTS.idempotency, [`idempotency:${key}`], [value, String(ttlSeconds)])
  }

  /** Releases a claim made by `claimOnce` (the request it guarded failed). */
  async releaseClaim (key: string): Promise<void> {
    await this.#send(['DEL', `idempotency:${key}`])
  }

  async ping (): Promise<number> {
    const started = performance.now()
    await this.#send(['PING'])
    return performance.now() - started
  }

  /** Index entries of expired records, dropped at most once a second (bounded per call). */
  async #trimIndexes (): Promise<void> {
    const now = this.#now()
    if (now - this.#lastTrimMs < 1000) return
    this.#lastTrimMs = now
    // A few seconds of slack: the record's own TTL (whole seconds) may outlive its index score.
    await this.#script(SCRIPTS.trim, [KEYS.created, KEYS.expiry, ...STATUS_KEYS], [String(now - 5000), '1000'])
  }

  #jobKeys (id: string): string[] {
    return [KEYS.job(id), KEYS.created, KEYS.expiry, KEYS.pending, KEYS.leases, KEYS.delayed, ...STATUS_KEYS, KEYS.events(id), KEYS.webhooksDue]
  }

  async #script<T> (script: LuaScript, keys: string[], args: string[]): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.#send<T>(['EVALSHA', script.sha, ...tail], script.name)
    } catch (err) {
      // A restarted Redis has an empty script cache; EVAL runs the script and caches it again.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await this.#send<T>(['EVAL', script.source, ...tail], script.name)
    }
  }

  async #send<T> (args: string[], label = args[0] as string): Promise<T> {
    if (this.#onCommand === undefined) return await this.#sendNow<T>(args)
    const started = performance.now()
    try {
      const reply = await this.#sendNow<T>(args)
      this.#onCommand(label, performance.now() - started, true)
      return reply
    } catch (err) {
      // NOSCRIPT is the expected first answer after a Redis restart, not a failure to report.
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) this.#onCommand(label, performance.now() - started, false)
      throw err
    }
  }

  async #sendNow<T> (args: string[]): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new RedisTimeoutError(`Redis did not answer ${args[0]} within ${this.#timeoutMs} ms`)), this.#timeoutMs)
    })
    try {
      // One plain timer per call: node-redis's own `timeout` option costs an AbortSignal and a
      // DOMException per command, a measurable share of a poll.
      return await Promise.race([this.#client.sendCommand(args) as Promise<T>, deadline])
    } finally {
      clearTimeout(timer)
    }
  }
}

/** ZRANGE WITHSCORES replies as [[member, score], ...] over RESP3 and flat [member, score, ...] over RESP2. */
function scoredMembers (reply: unknown[]): Array<[string, number]> {
  if (reply.length > 0 && Array.isArray(reply[0])) {
    return (reply as Array<[string, number | string]>).map(([member, score]) => [member, Number(score)])
  }
  return pairs(reply as string[]).map(([member, score]) => [member, Number(score)])
}

/** [a, b, c, d] as [[a, b], [c, d]] (RESP2 replies of field/value or member/score lists). */
function pairs (flat: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string])
  return out
}
