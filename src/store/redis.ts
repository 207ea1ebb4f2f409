import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ErrorReply } from 'redis'
import type { RedisClient } from './redis-client.js'
import { JOB_STATUSES } from '../schemas/job.js'
import {
  type Claim, type ClaimStart, type JobStore, type LeaseRenewal, type PatchResult, type ProgressPatch, type PutOptions, type WebhookOutbox, type ListPage, type ListQuery, type PutResult, type QueueStats, type StoredJob,
  PATCH_STALE, addTenantLoad, createdMs, emptyCounts, isAfterCursor, matchesQuery, serializeJob, stampWrite, webhookDue
} from './job-store.js'
import { dropOldest } from './bounded.js'
import { type JobEvent, type JobEventType, keptEventData, withJobId } from '../schemas/events.js'
import { type Roster, parseRoster } from './roster.js'
import { RedisKeys, type ScriptKeyName, declaredKeys, luaPrelude } from './keys.js'
import { sendNear } from './redis-client.js'
import { libraryFor } from './lua-library.js'
import { type FunctionLibrary, type FunctionSpec, StoredFunctions, functionLibrary, isFunctionMissing } from './lua-functions.js'
import { SilenceDeadline } from './silence-deadline.js'
import { RunnerConnections } from './runner-connections.js'
import { MemoryLimitReading } from './memory-limit.js'
import { type RunningLimits, tenantOf } from './tenant-queues.js'
import { nameRedisScript, sendingScript } from '../telemetry/redis-spans.js'
import { isoTime } from '../iso-time.js'

/** Parsed records remembered for repeated reads (about 2 KB each). */
const PARSED_KEPT = 1000
/** Retries moved from the delayed set into the queue by one claim, at most. */
const PROMOTE_PER_CLAIM = 100

/** A claimed job as claim_jobs returns it: id, fence, record JSON, 1 when its attempt began. */
type ClaimRow = [string, string, string, number?]

function claimOf ([, fence, json, started]: ClaimRow): Claim {
  const job = JSON.parse(json) as StoredJob
  return started === 1 ? { job, fence, started: true } : { job, fence }
}

/** claim_jobs's options (lib/job.lua); the start's texts are JSON, spliced into the record as they are. */
interface ClaimArgs {
  lease_ms: number
  limit: number
  /** Due retries moved into the queue first, at most. */
  promote: number
  /** The highest write counter this store saw: Redis below it went back in time, and claims nothing. */
  floor?: number
  start?: { worker: string, step: string, now: string, expires: string, max_attempts: number, ttl: number, max_events: number }
  /** Per-tenant limits on running jobs (RunningLimits): a tenant at its limit is passed over. */
  running?: RunningLimits
}

/** put.lua's options (ARGV[1]), as its header lists them. */
interface PutArgs {
  /** The version the write expects (0: the record must not exist). */
  expected: number
  ttl: number
  created_ms: number
  status: StoredJob['status']
  enqueue: '' | 'tail' | 'head' | 'delayed'
  retry_in_ms: number
  /** The event's data as kept (keptEventData: without the job id). */
  event: string
  max_events: number
  /** A final record with a webhook to deliver: queued with the write. */
  webhook: boolean
  amend_final: boolean
  fence?: string
  lease_ms?: number
  takeover: boolean
  claim_next?: ClaimArgs
  /** See ClaimArgs.floor: a write to a Redis that went back is refused. */
  floor: number
  /** A create: refused when Redis is too full for the jobs accepted to finish. */
  admit?: { percent: number, reserve: number }
  /** The job's owner ('' for none): the queue it waits in (fair share, see lib/job.lua) and its tenant's indexes. */
  tenant: string
  /** A create: refused when the tenant has this many jobs queued. */
  max_queued?: number
}

const readLua = (path: string): string => readFileSync(new URL(`./lua/${path}.lua`, import.meta.url), 'utf8')
/** Shared by the job scripts; each gets the part of it that it uses (see libraryFor). */
const JOB_LIBRARY = readLua('lib/job')

class LuaScript {
  readonly name: string
  readonly source: string
  readonly sha: string
  /** The KEYS a job script declares in its header, in order (none for the others). */
  readonly keyNames: readonly ScriptKeyName[]
  /** Its Redis Function's name (see lua-functions.ts), for the scripts called as one. */
  readonly functionName: string | undefined
  /**
   * `jobScript`: gets the keys its header declares (see declaredKeys), named by the generated
   * prelude, with job.lua, and publishes its notices with `publish` (SPUBLISH on a Cluster: the
   * notice stays on the shard that holds the job, where its subscribers listen).
   */
  constructor (name: string, jobScript = true, publish = 'PUBLISH', functionName?: string) {
    const own = readLua(name)
    this.name = name
    this.functionName = functionName
    this.keyNames = jobScript ? declaredKeys(name, own) : []
    this.source = jobScript ? [luaPrelude(this.keyNames), `local PUBLISH = '${publish}'`, libraryFor(own, JOB_LIBRARY), own].join('\n') : own
    this.sha = createHash('sha1').update(this.source).digest('hex')
    nameRedisScript(name, this.sha, this.source)
  }
}

/**
 * The scripts a job calls most, run as Redis Functions (see lua-functions.ts), each past
 * maxmemory as it ran when sent whole. put and progress write first with an INCR, which Redis
 * refuses then, so they are refused upfront. A create that the memory admission checks runs put
 * as `put_admit`, which Redis lets run: it refuses on its own, with the cause, before any write
 * (Redis's OOM test counts less memory than INFO's used_memory that the admission reads, so a
 * create admitted is never one Redis would refuse). A claim sent whole ran past maxmemory when
 * its first write was taking from the queue (ZPOPMIN frees memory, and Redis lets the rest of a
 * script follow its first write): allowed as a function, an idle runner's claims stay quiet, and
 * queued jobs are begun, as they were (due retries are moved too, where an INCR came first).
 */
const FUNCTIONS: Array<Pick<FunctionSpec, 'name' | 'script' | 'flags'>> = [
  { name: 'put', script: 'put', flags: [] },
  { name: 'put_admit', script: 'put', flags: ['allow-oom'] },
  { name: 'progress', script: 'progress', flags: [] },
  { name: 'claim', script: 'claim', flags: ['allow-oom'] }
]

function libraryOf (publish: 'PUBLISH' | 'SPUBLISH'): FunctionLibrary {
  return functionLibrary(FUNCTIONS.map((f) => {
    const source = readLua(f.script)
    return { ...f, source, keyNames: declaredKeys(f.script, source) }
  }), JOB_LIBRARY, publish)
}

function scriptSet (publish: 'PUBLISH' | 'SPUBLISH', library: FunctionLibrary) {
  const job = (name: string, functionName?: string): LuaScript => new LuaScript(name, true, publish, functionName === undefined ? undefined : library.functionName(functionName))
  return {
    put: job('put', 'put'),
    putAdmit: job('put', 'put_admit'),
    progress: job('progress', 'progress'),
    sync: job('sync'),
    delete: job('delete'),
    events: job('events'),
    trim: job('trim'),
    claim: job('claim', 'claim'),
    renew: job('renew'),
    expiredLeases: job('expired-leases'),
    liveLeases: job('live-leases'),
    dropLease: job('drop-lease'),
    sweepOrphans: job('sweep-orphans'),
    webhookClaim: job('webhook-claim'),
    webhookSchedule: job('webhook-schedule'),
    epoch: job('epoch'),
    stepSave: job('step-save'),
    cacheSet: new LuaScript('cache-set', false),
    heartbeat: new LuaScript('heartbeat', false),
    rateWindow: new LuaScript('rate-window', false),
    idempotency: new LuaScript('idempotency', false)
  }
}

const LIBRARIES = { PUBLISH: libraryOf('PUBLISH'), SPUBLISH: libraryOf('SPUBLISH') }
const SCRIPT_SETS = { PUBLISH: scriptSet('PUBLISH', LIBRARIES.PUBLISH), SPUBLISH: scriptSet('SPUBLISH', LIBRARIES.SPUBLISH) }
type Scripts = ReturnType<typeof scriptSet>

/** Every script as Redis receives it, in both sets: what a test compiles to check their names. */
export function composedScripts (): Array<{ name: string, set: string, source: string }> {
  return Object.entries(SCRIPT_SETS).flatMap(([set, scripts]) => {
    // put and putAdmit are one script, two functions.
    const bySource = new Map(Object.values(scripts).map((script) => [script.source, script]))
    return [...bySource.values()].map((script) => ({ name: script.name, set, source: script.source }))
  })
}

/** The function library of each set, as FUNCTION LOAD receives it. */
export function functionLibraries (): Array<{ set: string, library: FunctionLibrary }> {
  return Object.entries(LIBRARIES).map(([set, library]) => ({ set, library }))
}

export interface RedisJobStoreOptions {
  ttlSeconds: number
  /**
   * How long Redis may stay silent before a call fails with RedisTimeoutError. A call waiting
   * behind a backlog that Redis is still answering is not failed (up to 8 such deadlines).
   */
  timeoutMs: number
  /** Most events kept per job in its log (default 500). */
  maxEvents?: number
  keys?: RedisKeys
  /** Notices go out with SPUBLISH (a Redis Cluster: they stay on the job's shard) instead of PUBLISH. */
  shardedNotices?: boolean
  /**
   * false: every script is sent whole (EVALSHA), none called as a Redis Function. Default true;
   * a Redis before 7, or an ACL that forbids FCALL or FUNCTION, is found out at the first call.
   */
  functions?: boolean
  /** Told about every round trip: the command (a script's EVALSHA or FCALL is named by the script), its time, success. */
  onCommand?: (command: string, ms: number, ok: boolean) => void
  /**
   * Admission of creates when Redis has a maxmemory: refused once the memory in use plus
   * `reserveBytes` per unfinished job passes `percent` of it. Absent: no admission check.
   */
  admission?: {
    percent: number
    reserveBytes: number
    /**
     * How long a reading of "no maxmemory" (INFO memory, asked by this store) is taken as still
     * true: creates leave the check out meanwhile (see MemoryLimitReading). 0 or absent: every
     * create is checked. Only for a store whose keyless commands reach the Redis its scripts run
     * on (not a Cluster, whose INFO goes to one master).
     */
    trustUnlimitedMs?: number
  }
  /** Per-tenant limits on jobs running at once (see RunningLimits); none without. */
  runningLimits?: RunningLimits
  /**
   * More connections to the same Redis for the runner's calls (claims, and the writes and lease
   * renewals made under a claim), taken in turn, each while it is ready and not suspect (see
   * RunnerConnections); the main connection when none is.
   * node-redis writes what was sent on a connection in one batch per turn of the event loop, so
   * on one connection Redis waits while this process reads a batch of replies and prepares the
   * next, and this process waits while Redis runs a batch. With the runner's calls on
   * connections of their own, and spread over two or more, one side works on one connection's
   * batch while the other works on another's. It changes no outcome: every write still carries
   * the fence and the write counter's floor, which hold across connections (see #watchCounter).
   */
  runnerClients?: RedisClient[]
  /** After a call timed out on one of the runner's connections, how often it is probed (default RUNNER_CONNECTION_PROBE_MS). */
  runnerProbeMs?: number
  /**
   * What stores that call one Redis share (the shards of ShardedRedisJobStore): the deadlines of
   * its calls, and the runner's connections (then `runnerClients` and `runnerProbeMs` are not read).
   */
  sharedDeadline?: SilenceDeadline
  sharedRunners?: RunnerConnections
}

/** Redis came back with a write counter below one this store had seen: it went back in time. */
export interface WentBack {
  seen: number
  found: number
}

/** What the epoch check found (see epoch.lua). */
export interface EpochCheck {
  epoch: string
  /** This check founded the epoch (none was stored) or moved it (Redis went back in time). */
  founded: boolean
  /** Redis's write counter was below the highest one this store saw. */
  wentBack: WentBack | null
}

/** A read of one job, with what else the same round trip tells. */
export interface RedisRead {
  job: StoredJob | null
  /** The record was deleted (a tombstone stands in its place). */
  deleted: boolean
  /** This Redis's data generation (null: none stored, so the data may have been lost). */
  epoch: string | null
}

/** Memory of the Redis the jobs live on, from INFO memory, and the create admission's limit. */
export interface RedisMemory {
  usedBytes: number
  /** maxmemory; 0 when unlimited. */
  maxBytes: number
  /** Creates are refused past this (used plus the room kept for unfinished jobs); null when unlimited. */
  admitLimitBytes: number | null
}

export interface SyncOptions {
  mode: 'outage' | 'create' | 'reseed'
  /** For 'outage': the version Redis held when this copy diverged (0: nothing). */
  base?: number
  /** Queue the job in Redis (a pending job that nobody runs). */
  queue: boolean
  /** Queue it only after this long. */
  delayMs?: number
  /** A claim held by this process on the job: it moves to Redis with the record. */
  claim?: { fence: string, leaseMs: number }
}

/** Pub/sub channels of record-change notices (see RedisKeys.notices and runningNotices). */
export interface NoticeChannels { all: string[], running: string[] }

/** What the fallback store needs of Redis: one key space (RedisJobStore) or shards of it (ShardedRedisJobStore). */
export interface RedisStore {
  readonly client: RedisClient
  /** The channels record-change notices are published on: `all` but a running record's, which go on `running`. */
  readonly noticeChannels: NoticeChannels
  /** Hash tags the jobs are spread over (REDIS_SHARDS). */
  readonly shardCount: number
  get (id: string): Promise<StoredJob | null>
  read (id: string): Promise<RedisRead>
  put (job: StoredJob, expectedVersion: number, options?: PutOptions): Promise<PutResult>
  sync (job: StoredJob, options: SyncOptions): Promise<boolean>
  delete (id: string): Promise<boolean>
  events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]>
  claim (leaseMs: number, limit: number, start?: ClaimStart): Promise<Claim[]>
  renewLease (id: string, fence: string, leaseMs: number): Promise<LeaseRenewal>
  patchProgress (id: string, fence: string, version: number, patch: ProgressPatch): Promise<PatchResult>
  expiredLeases (limit: number): Promise<string[]>
  dropLease (id: string): Promise<void>
  sweepOrphans (limit: number): Promise<number>
  claimWebhooks (leaseMs: number, limit: number): Promise<string[]>
  scheduleWebhook (id: string, delayMs: number | null): Promise<void>
  list (query: ListQuery): Promise<ListPage>
  queueDepth (): Promise<number>
  stats (): Promise<QueueStats>
  /** The epoch check (see epoch.lua); `holdMs`: how long jobs queued or leased wait after Redis went back in time. */
  epoch (candidate: string, holdMs?: number): Promise<EpochCheck>
  /** Called when a reply shows Redis went back in time (its write counter below one seen before). */
  onWentBack (listener: (wentBack: WentBack) => void): void
  memoryPolicy (): Promise<string | null>
  memory (): Promise<RedisMemory>
  countInWindow (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }>
  claimOnce (key: string, value: string, ttlSeconds: number): Promise<string | null>
  releaseClaim (key: string): Promise<void>
  /** The checkpointed steps of a job: name -> result JSON (see job-steps.ts). */
  loadSteps (id: string): Promise<Map<string, string>>
  /** Keeps a step's result while `fence` is the job's claim; false when the claim moved on. */
  saveStep (id: string, fence: string, name: string, json: string): Promise<boolean>
  /** A cache entry by its digest (see shared-cache.ts), or null. */
  cacheGet (digest: string): Promise<string | null>
  /** Writes a cache entry; the cache keeps at most `maxEntries` (per shard), oldest out first. */
  cacheSet (digest: string, value: string, ttlSeconds: number, bound: CacheBound): Promise<void>
  /** This replica is here (see replica-roster.ts); the replicas heard from within `graceMs`. */
  heartbeat (replica: string, held: number, wallMs: number, graceMs: number, skewMs: number): Promise<Roster>
  /** Takes a replica off the roster. */
  leaveRoster (replica: string): Promise<void>
  ping (): Promise<number>
}

/** The shared cache's bound in Redis: most entries (per shard). */
export interface CacheBound { maxEntries: number }

/**
 * Jobs in Redis, every key under one prefix (RedisKeys): `job:<id>` holds the record as JSON
 * written with SETEX; indexes list it without KEYS; `jobs:queue` is the FIFO of work to run; claims are leases and fencing tokens
 * kept and timed by Redis. Every multi-key change is one Lua script, so no state is ever
 * half-written, and every decision about time uses Redis's clock.
 */
export class RedisJobStore implements JobStore, WebhookOutbox, RedisStore {
  readonly #client: RedisClient
  readonly #ttlSeconds: number
  readonly #maxEvents: number
  readonly keys: RedisKeys
  readonly #scripts: Scripts
  /** The last record read per job, with the JSON it came from (most recently read last). */
  readonly #parsed = new Map<string, { json: string, job: StoredJob }>()
  /**
   * Deadlines for the calls on every connection: a reply on any shows the same Redis
   * answering, so a call waiting behind a burst on one is not failed for the other's quiet.
   */
  readonly #deadline: SilenceDeadline
  /** The runner's connections (see RedisJobStoreOptions.runnerClients). */
  readonly #runners: RunnerConnections
  readonly #onCommand: RedisJobStoreOptions['onCommand']
  readonly #sweep = { pending: 0, processing: 0 }
  readonly #admission: RedisJobStoreOptions['admission']
  /** Absent: every create is checked (see RedisJobStoreOptions.admission.trustUnlimitedMs). */
  readonly #memoryLimit: MemoryLimitReading | undefined
  readonly #runningLimits: RunningLimits | undefined
  #lastTrimMs = 0
  #ownerStatusBuilt = false
  /** The highest write counter a reply carried (see behind_else_tick in lib/job.lua). */
  #highWater = 0
  /** The epoch this store last read, to tell epoch.lua which one it knows. */
  #knownEpoch: string | null = null
  #onWentBack: (wentBack: WentBack) => void = () => {}
  readonly #functions: StoredFunctions

  constructor (client: RedisClient, options: RedisJobStoreOptions) {
    this.#client = client
    this.#ttlSeconds = options.ttlSeconds
    this.#maxEvents = options.maxEvents ?? 500
    this.#deadline = options.sharedDeadline ?? new SilenceDeadline(options.timeoutMs)
    this.#runners = options.sharedRunners ?? new RunnerConnections(options.runnerClients ?? [], this.#deadline, options.runnerProbeMs)
    this.#onCommand = options.onCommand
    this.#admission = options.admission
    const trustMs = options.admission?.trustUnlimitedMs ?? 0
    this.#memoryLimit = trustMs > 0 ? new MemoryLimitReading(trustMs, async () => (await this.memory()).maxBytes) : undefined
    this.#runningLimits = options.runningLimits
    this.keys = options.keys ?? new RedisKeys()
    const set = options.shardedNotices === true ? 'SPUBLISH' : 'PUBLISH'
    this.#scripts = SCRIPT_SETS[set]
    const load = ['FUNCTION', 'LOAD', 'REPLACE', LIBRARIES[set].text]
    this.#functions = new StoredFunctions(LIBRARIES[set], options.functions !== false, async (nearKey) => await this.#deadline.wait(sendNear(this.#client, nearKey, load), 'FUNCTION'))
  }

  get client (): RedisClient {
    return this.#client
  }

  get noticeChannels (): NoticeChannels {
    return { all: [this.keys.notices], running: [this.keys.runningNotices] }
  }

  get shardCount (): number {
    return 1
  }

  async get (id: string): Promise<StoredJob | null> {
    return (await this.read(id)).job
  }

  onWentBack (listener: (wentBack: WentBack) => void): void {
    this.#onWentBack = listener
  }

  /** The highest write counter seen so far. */
  get highWater (): number {
    return this.#highWater
  }

  /**
   * What claims and writes hold Redis to: the highest counter seen, once this store tracks
   * Redis's generations (its first epoch check; the fallback store's reconciler makes it at
   * connect). A store used without them (a tool, a test that flushes Redis) is held to nothing.
   */
  get #floor (): number {
    return this.#knownEpoch === null ? 0 : this.#highWater
  }

  /** One round trip: the record, the epoch and the write counter. */
  async read (id: string): Promise<RedisRead> {
    const [json, epoch] = await this.#send<[string | null, string | null, string | null]>(['MGET', this.keys.job(id), this.keys.epoch, this.keys.seq], 'MGET', (reply) => Number(reply[2] ?? 0))
    if (json === null) {
      this.#parsed.delete(id)
      return { job: null, deleted: false, epoch }
    }
    // Pollers read the same unchanged record again and again: parse each version once. Records
    // are never mutated in place (every change is a new object), so sharing one is safe.
    const hit = this.#parsed.get(id)
    if (hit !== undefined && hit.json === json) return { job: hit.job, deleted: false, epoch }
    const job = JSON.parse(json) as StoredJob
    if ((job.status as string) === 'deleted') return { job: null, deleted: true, epoch }
    this.#parsed.delete(id)
    this.#parsed.set(id, { json, job })
    if (this.#parsed.size > PARSED_KEPT) dropOldest(this.#parsed, PARSED_KEPT / 10)
    return { job, deleted: false, epoch }
  }

  async put (job: StoredJob, expectedVersion: number, options: PutOptions = {}): Promise<PutResult> {
    const written = stampWrite(job, expectedVersion, this.#ttlSeconds)
    const { enqueue, claimNext } = options
    const args: PutArgs = {
      expected: expectedVersion,
      ttl: this.#ttlSeconds,
      created_ms: createdMs(written),
      status: written.status,
      enqueue: enqueue === undefined ? '' : typeof enqueue === 'string' ? enqueue : 'delayed',
      retry_in_ms: typeof enqueue === 'object' ? Math.max(0, Math.round(enqueue.retryInMs)) : 0,
      event: keptEventData(written),
      max_events: this.#maxEvents,
      webhook: webhookDue(written),
      amend_final: options.amendFinal === true,
      fence: options.fence,
      lease_ms: options.leaseMs,
      takeover: options.takeover === true,
      // A final write's claim leaves due retries to the claims a runner makes itself (see claim).
      claim_next: claimNext === undefined ? undefined : this.#claimOptions(claimNext.leaseMs, claimNext.limit, claimNext.start, 0),
      floor: this.#floor,
      admit: options.admit === true && this.#admission !== undefined && this.#memoryLimit?.createNeedsCheck() !== false ? { percent: this.#admission.percent, reserve: this.#admission.reserveBytes } : undefined,
      tenant: tenantOf(job.owner),
      max_queued: options.quota?.maxQueued
    }
    type PutReply = [number, (string | null | ClaimRow[])?, (string | number | null)?, number?, number?]
    const script = args.admit !== undefined && args.expected === 0 ? this.#scripts.putAdmit : this.#scripts.put
    const reply = await this.#script<PutReply>(script, [JSON.stringify(args), serializeJob(written), job.job_id], { id: job.job_id, owner: job.owner, runner: options.fence !== undefined },
      (r) => r[0] === 1 ? Number(r[2]) : r[2] === 'behind' ? Number(r[3]) : null)
    if (reply[0] === 1) return Array.isArray(reply[1]) ? { ok: true, job: written, authoritative: true, claimed: reply[1].map(claimOf) } : { ok: true, job: written, authoritative: true }
    if (reply[2] === 'behind') return { ok: false, reason: 'unavailable', applied: 'no', cause: 'Redis went back in time (it lost writes this replica saw land); replicas are putting their copies back' }
    if (reply[2] === 'full') return { ok: false, reason: 'unavailable', applied: 'no', cause: `Redis is too full to take more jobs (${reply[3] as number} bytes in use and kept for unfinished jobs, limit ${reply[4] as number})`, full: true }
    if (reply[2] === 'quota') {
      const limit = options.quota?.maxQueued as number
      return { ok: false, reason: 'unavailable', applied: 'no', cause: `the tenant has ${reply[3] as number} jobs queued; its quota is ${limit}`, quota: { name: 'queued', limit } }
    }
    const current = typeof reply[1] === 'string' ? parseLive(reply[1]) : null
    return { ok: false, reason: reply[2] === 'fenced' ? 'fenced' : 'conflict', current }
  }

  /** Copies a record this process holds into Redis (see sync.lua); false when Redis's record wins. */
  async sync (job: StoredJob, options: SyncOptions): Promise<boolean> {
    const ttlMs = Date.parse(job.expires_at) - Date.now()
    if (ttlMs <= 0) return false
    const [copied] = await this.#script<[number, number]>(this.#scripts.sync, [JSON.stringify({
      mode: options.mode,
      base: options.base ?? 0,
      version: job.version,
      ttl_ms: ttlMs,
      created_ms: createdMs(job),
      status: job.status,
      queue: options.queue,
      delay_ms: options.delayMs ?? 0,
      webhook: webhookDue(job),
      fence: options.claim?.fence,
      lease_ms: options.claim?.leaseMs,
      tenant: tenantOf(job.owner)
    }), serializeJob({ ...job, fence: options.claim?.fence }), job.job_id], { id: job.job_id, owner: job.owner }, (reply) => reply[1])
    return copied === 1
  }

  /** None while Redis is behind what this store saw (it went back in time): the epoch check sets it right first. */
  async claim (leaseMs: number, limit: number, start?: ClaimStart): Promise<Claim[]> {
    const [rows] = await this.#script<[ClaimRow[] | null, number]>(this.#scripts.claim, [JSON.stringify({ ...this.#claimOptions(leaseMs, limit, start), floor: this.#floor })], { runner: true }, (reply) => reply[1])
    return rows === null ? [] : rows.map(claimOf)
  }

  #claimOptions (leaseMs: number, limit: number, start: ClaimStart | undefined, promote = PROMOTE_PER_CLAIM): ClaimArgs {
    const now = Date.now()
    return {
      lease_ms: leaseMs,
      limit,
      promote,
      running: this.#runningLimits,
      start: start === undefined
        ? undefined
        : {
            worker: JSON.stringify(start.worker),
            step: JSON.stringify(start.step),
            now: JSON.stringify(isoTime(now)),
            expires: JSON.stringify(isoTime(now + this.#ttlSeconds * 1000)),
            max_attempts: start.maxAttempts,
            ttl: this.#ttlSeconds,
            max_events: this.#maxEvents
          }
    }
  }

  /** Patches the running record's head in Redis (progress.lua): 5 commands, no record sent. */
  async patchProgress (id: string, fence: string, version: number, patch: ProgressPatch): Promise<PatchResult> {
    const reply = await this.#script<[number, number | false, string?, number?]>(this.#scripts.progress, [
      id, String(version), fence, String(patch.progress), JSON.stringify(patch.step), JSON.stringify(isoTime(patch.now)),
      String(Math.round(patch.now)), String(this.#maxEvents), String(this.#ttlSeconds), String(this.#floor)
    ], { id, runner: true }, (r) => r[0] === 1 ? Number(r[2]) : r[2] === 'behind' ? Number(r[3]) : null)
    if (reply[0] === 1) return { outcome: 'written', version: Number(reply[1]) }
    return reply[2] === 'behind' ? { outcome: 'unavailable' } : PATCH_STALE
  }

  async renewLease (id: string, fence: string, leaseMs: number): Promise<LeaseRenewal> {
    return await this.#script<number>(this.#scripts.renew, [id, fence, String(leaseMs)], { id, runner: true }) === 1 ? 'renewed' : 'lost'
  }

  async expiredLeases (limit: number): Promise<string[]> {
    return await this.#script<string[]>(this.#scripts.expiredLeases, [String(limit)])
  }

  async dropLease (id: string): Promise<void> {
    await this.#script(this.#scripts.dropLease, [id], { id })
  }

  async sweepOrphans (limit: number): Promise<number> {
    const [pending, processing, repaired] = await this.#script<[number, number, number]>(this.#scripts.sweepOrphans, [JSON.stringify({
      pending_from: this.#sweep.pending, processing_from: this.#sweep.processing, count: limit
    })])
    this.#sweep.pending = pending
    this.#sweep.processing = processing
    return repaired
  }

  async claimWebhooks (leaseMs: number, limit: number): Promise<string[]> {
    return await this.#script<string[]>(this.#scripts.webhookClaim, [String(leaseMs), String(limit)])
  }

  async scheduleWebhook (id: string, delayMs: number | null): Promise<void> {
    if (delayMs === null) await this.#send(['ZREM', this.keys.webhooks, id])
    else await this.#script(this.#scripts.webhookSchedule, [id, String(Math.max(0, Math.round(delayMs)))])
  }

  /** The job's events after `afterId` (exclusive), oldest first, from its log (events.lua). */
  async events (id: string, afterId: string | null, limit: number): Promise<JobEvent[]> {
    const rows = await this.#script<Array<[string, string, string]>>(this.#scripts.events, [afterId ?? '', String(limit)], { id })
    return rows.map(([eventId, type, data]) => ({ id: eventId, type: type as JobEventType, data: withJobId(id, data) }))
  }

  async delete (id: string): Promise<boolean> {
    this.#parsed.delete(id)
    return await this.#script<number>(this.#scripts.delete, [id], { id }) === 1
  }

  /** From the tenant's own index when the query names one, so one tenant's list never scans another's jobs. */
  async list (query: ListQuery): Promise<ListPage> {
    await this.#trimIndexes()
    const index = query.owner === undefined
      ? this.keys.created
      : query.status === undefined || !await this.#ownerStatusReady() ? this.keys.ownerCreated(query.owner) : this.keys.ownerStatus(query.owner, query.status)
    const jobs: StoredJob[] = []
    const batch = Math.min(Math.max(query.limit * 2, 20), 500)
    let max = query.after === undefined ? '+inf' : String(query.after.createdMs)
    let offset = 0
    for (;;) {
      const entries = scoredMembers(await this.#send<unknown[]>(['ZRANGE', index, max, '-inf', 'BYSCORE', 'REV', 'LIMIT', String(offset), String(batch), 'WITHSCORES']))
      if (entries.length === 0) return { jobs, hasMore: false }
      const ids = entries.filter(([id, score]) => isAfterCursor(score, id, query.after)).map(([id]) => id)
      const records = ids.length === 0 ? [] : await this.#send<Array<string | null>>(['MGET', ...ids.map((id) => this.keys.job(id))])
      const vanished: string[] = []
      let full = false
      for (let i = 0; i < ids.length && !full; i++) {
        const json = records[i]
        const job = json == null ? null : parseLive(json)
        // Expired, evicted or deleted: a tenant's index is cleaned here, as it is read.
        if (job === null) { vanished.push(ids[i] as string); continue }
        if (!matchesQuery(job, query)) continue
        if (jobs.length === query.limit) full = true
        else jobs.push(job)
      }
      // Evicted or expired before the trim saw them: drop them from the index now.
      if (vanished.length > 0) await this.#send(['ZREM', index, ...vanished])
      if (full) return { jobs, hasMore: true }
      if (entries.length < batch) return { jobs, hasMore: false }
      // Continue at the last score seen; entries sharing it that were already read are skipped by offset.
      const lastScore = String((entries.at(-1) as [string, number])[1])
      offset = max === lastScore ? offset + entries.length : entries.filter(([, score]) => String(score) === lastScore).length
      max = lastScore
    }
  }

  /** Whether the tenants' status indexes hold every record (built for older ones by the orphan sweep); once true, it stays. */
  async #ownerStatusReady (): Promise<boolean> {
    if (!this.#ownerStatusBuilt) this.#ownerStatusBuilt = await this.#send<string | null>(['GET', this.keys.ownerStatusBackfill]) === 'done'
    return this.#ownerStatusBuilt
  }

  /** Jobs one tenant has queued (see lib/job.lua's fair share). */
  async queuedOf (tenant: string): Promise<number> {
    return await this.#send<number>(['ZCARD', this.keys.tenantQueue(tenant)])
  }

  async queueDepth (): Promise<number> {
    return await this.#send<number>(['ZCARD', this.keys.queue])
  }

  /** Counts come from the status sets (no scan of records), trimmed first; leases from the lease index. */
  async stats (): Promise<QueueStats> {
    this.#lastTrimMs = 0
    await this.#trimIndexes()
    const [queued, delayed, head, leased, ring, parked, ...counts] = await Promise.all([
      this.#send<number>(['ZCARD', this.keys.queue]),
      this.#send<number>(['ZCARD', this.keys.delayed]),
      this.#send<string[]>(['ZRANGE', this.keys.queue, '0', '0']),
      this.#script<string[]>(this.#scripts.liveLeases, ['10000']),
      this.#send<string[]>(['ZRANGE', this.keys.tenants, '0', String(STATS_TENANTS - 1)]),
      this.#send<string[]>(['ZRANGE', this.keys.parkedTenants, '0', String(STATS_TENANTS - 1)]),
      ...JOB_STATUSES.map((status) => this.#send<number>(['ZCARD', this.keys.status(status)]))
    ])
    const result: QueueStats = { counts: emptyCounts(), queued, delayed, oldestQueuedAt: null, leasesByWorker: {}, byTenant: {} }
    JOB_STATUSES.forEach((status, i) => { result.counts[status] = counts[i] as number })
    // Tenants with queued jobs: in the ring, or parked at their limit of running jobs.
    const tenants = [...new Set([...ring, ...parked])].slice(0, STATS_TENANTS)
    const queuedOf = await Promise.all(tenants.map(async (tenant) => await this.queuedOf(tenant)))
    // A tenant whose queue emptied leaves the ring at the next claim: only those with jobs count.
    tenants.forEach((tenant, i) => { if ((queuedOf[i] as number) > 0) addTenantLoad(result, tenant, { queued: queuedOf[i] as number }) })
    if (head[0] !== undefined) result.oldestQueuedAt = (await this.get(head[0]))?.updated_at ?? null
    const holders = leased.length === 0 ? [] : await this.#send<Array<string | null>>(['MGET', ...leased.map((id) => this.keys.job(id))])
    for (const json of holders) {
      const job = json === null ? null : parseLive(json)
      if (job === null) continue
      if (job.worker !== null) result.leasesByWorker[job.worker] = (result.leasesByWorker[job.worker] ?? 0) + 1
      addTenantLoad(result, tenantOf(job.owner), { running: 1 })
    }
    return result
  }

  /**
   * Reads this Redis's data generation, founding it with `candidate` when none is stored, and
   * checks that Redis did not go back behind the write counter this store saw (see epoch.lua).
   */
  async epoch (candidate: string, holdMs = 0): Promise<EpochCheck> {
    const floor = this.#floor
    const options = { candidate, floor, known: this.#knownEpoch ?? undefined, hold_ms: holdMs }
    // The counter as the check leaves it is what this store has seen from now on, also when it is lower.
    const [epoch, founded, found] = await this.#script<[string, number, number, number]>(this.#scripts.epoch, [JSON.stringify(options)], {}, (reply) => reply[3], true)
    this.#knownEpoch = epoch
    return { epoch, founded: founded === 1, wentBack: found < floor ? { seen: floor, found } : null }
  }

  /** INFO memory, with the create admission's limit. */
  async memory (): Promise<RedisMemory> {
    const info = await this.#memoryInfo()
    const usedBytes = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0)
    const maxBytes = maxMemoryIn(info)
    const admitLimitBytes = maxBytes === 0 || this.#admission === undefined ? null : Math.floor(maxBytes * this.#admission.percent / 100)
    return { usedBytes, maxBytes, admitLimitBytes }
  }

  /** `maxmemory-policy` from INFO (managed Redis often refuses CONFIG GET); null when not reported. */
  async memoryPolicy (): Promise<string | null> {
    // Read at every connect: the Redis may be another one, so what was read of its maxmemory is not trusted.
    this.#memoryLimit?.forget()
    const info = await this.#memoryInfo()
    return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? null
  }

  /** INFO memory, whose maxmemory is noted for the create admission (see MemoryLimitReading). */
  async #memoryInfo (): Promise<string> {
    const askedAt = performance.now()
    const info = await this.#send<string>(['INFO', 'memory'])
    this.#memoryLimit?.noted(maxMemoryIn(info), askedAt)
    return info
  }

  /** Counts one hit of `key` in a fixed window of `windowMs`; returns the count and the ms left. */
  async countInWindow (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    const [count, ttlMs] = await this.#evalsha<[number, number]>(this.#scripts.rateWindow, [this.keys.rateLimit(key)], [String(windowMs)])
    return { count, ttlMs }
  }

  /** Stores `value` under `key` unless it is taken; returns the holder's value when it is. */
  async claimOnce (key: string, value: string, ttlSeconds: number): Promise<string | null> {
    return await this.#evalsha<string | null>(this.#scripts.idempotency, [this.keys.idempotency(key)], [value, String(ttlSeconds)])
  }

  /** Releases a claim made by `claimOnce` (the request it guarded failed). */
  async releaseClaim (key: string): Promise<void> {
    await this.#send(['DEL', this.keys.idempotency(key)])
  }

  async loadSteps (id: string): Promise<Map<string, string>> {
    const reply = await this.#send<Record<string, string> | string[]>(['HGETALL', this.keys.steps(id)])
    return new Map(Array.isArray(reply) ? pairs(reply) : Object.entries(reply))
  }

  async saveStep (id: string, fence: string, name: string, json: string): Promise<boolean> {
    return await this.#script<number>(this.#scripts.stepSave, [id, fence, name, json, String(this.#ttlSeconds)], { id }) === 1
  }

  async cacheGet (digest: string): Promise<string | null> {
    return await this.#send<string | null>(['GET', this.keys.cacheEntry(digest)])
  }

  async cacheSet (digest: string, value: string, ttlSeconds: number, bound: CacheBound): Promise<void> {
    await this.#evalsha(this.#scripts.cacheSet, [this.keys.cacheEntry(digest), this.keys.cacheIndex], [value, String(ttlSeconds), String(bound.maxEntries)])
  }

  async heartbeat (replica: string, held: number, wallMs: number, graceMs: number, skewMs: number): Promise<Roster> {
    const args = [replica, String(held), String(Math.round(wallMs)), String(graceMs), String(Math.round(skewMs))]
    return parseRoster(await this.#evalsha<Array<number | string>>(this.#scripts.heartbeat, [this.keys.replicas], args))
  }

  async leaveRoster (replica: string): Promise<void> {
    // Marked, not deleted (see heartbeat.lua): the heartbeats drop the mark once the grace has passed.
    await this.#evalsha<number[]>(this.#scripts.heartbeat, [this.keys.replicas], [replica, '0', '0', '0', '0', '1'])
  }

  async ping (): Promise<number> {
    const started = performance.now()
    await this.#send(['PING'])
    return performance.now() - started
  }

  /** Index entries of expired records, dropped at most once a second (bounded per call). */
  async #trimIndexes (): Promise<void> {
    const now = Date.now()
    if (now - this.#lastTrimMs < 1000) return
    this.#lastTrimMs = now
    await this.#script(this.#scripts.trim, ['1000'])
  }

  // #script, #evalsha, #send and #sendNow hand their promises on rather than await them: each
  // async step costs a promise and a resumption more, on every Redis call of every job. Only
  // #sendNow, where the command is sent, turns a throw into a rejected promise; the others build
  // arguments from the store's own fixed names.
  /**
   * A job script, with the keys of the job (and tenant) it is about, if any. `counterOf`: where
   * its reply carries the write counter (see #send). `runner`: a call of the runner's, sent on
   * its connections when there are some (see RedisJobStoreOptions.runnerClients).
   */
  #script<T> (script: LuaScript, args: string[], about: { id?: string, owner?: string | null, runner?: boolean } = {}, counterOf?: CounterOf<T>, resets = false): Promise<T> {
    return this.#evalsha<T>(script, this.keys.forScript(script.keyNames, about.id ?? null, about.owner ?? null), args, counterOf, resets, about.runner)
  }

  #evalsha<T> (script: LuaScript, keys: string[], args: string[], counterOf?: CounterOf<T>, resets = false, runner = false): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args]
    const fn = script.functionName
    if (fn === undefined || !this.#functions.on) return this.#whole(script, tail, counterOf, resets, runner)
    const call = (): Promise<T> => sendingScript(script.name, () => this.#send<T>(['FCALL', fn, ...tail], script.name, counterOf, resets, runner))
    return call().catch(async (err: unknown) => await this.#functions.recover(err, keys[0], call, async () => await this.#whole(script, tail, counterOf, resets, runner)))
  }

  /** A script sent as its text's SHA1, or whole (EVAL) when Redis has not cached it. */
  #whole<T> (script: LuaScript, tail: string[], counterOf?: CounterOf<T>, resets = false, runner = false): Promise<T> {
    return this.#send<T>(['EVALSHA', script.sha, ...tail], script.name, counterOf, resets, runner).catch(async (err: unknown) => {
      // A restarted Redis has an empty script cache; EVAL runs the script and caches it again.
      if (!(err instanceof ErrorReply) || !err.message.startsWith('NOSCRIPT')) throw err
      return await this.#send<T>(['EVAL', script.source, ...tail], script.name, counterOf, resets, runner)
    })
  }

  /**
   * A reply's write counter is held to the mark this store had when it sent the command: Redis
   * ran the command after every reply already seen, so a lower value means it went back in time.
   * Comparing with the mark at send time, not with the replies that happen to resolve first,
   * keeps the watch true where replies resolve out of Redis's order (node-redis's Cluster client
   * takes more steps for an MGET than for a script). `resets`: the reply is the epoch check's,
   * which set the counter right; it is the new mark either way.
   */
  #watchCounter<T> (reply: Promise<T>, counterOf: CounterOf<T>, resets: boolean): void {
    const markAtSend = this.#highWater
    reply.then((value) => {
      const counter = counterOf(value)
      if (counter === null || Number.isNaN(counter)) return
      if (resets) {
        this.#highWater = Math.max(counter, 0)
        return
      }
      if (counter < markAtSend && this.#knownEpoch !== null) this.#onWentBack({ seen: markAtSend, found: counter })
      this.#highWater = Math.max(this.#highWater, counter)
    }, () => {})
  }

  #send<T> (args: string[], label = args[0] as string, counterOf?: CounterOf<T>, resets = false, runner = false): Promise<T> {
    const onCommand = this.#onCommand
    if (onCommand === undefined) return this.#sendNow<T>(args, counterOf, resets, runner)
    const started = performance.now()
    return this.#sendNow<T>(args, counterOf, resets, runner).then((reply) => {
      onCommand(label, performance.now() - started, true)
      return reply
    }, (err: unknown) => {
      // NOSCRIPT, or a function not found, is the expected first answer after a Redis restart, not a failure to report.
      if (!(err instanceof ErrorReply && err.message.startsWith('NOSCRIPT')) && !isFunctionMissing(err)) onCommand(label, performance.now() - started, false)
      throw err
    })
  }

  /**
   * One command under a deadline on Redis's silence (see SilenceDeadline); a runner's call on
   * the next of the runner's connections that is ready and not suspect. A connection that is not
   * ready (connecting, or reconnecting after a drop), or suspect after a call on it timed out, is
   * passed over; with none left, the main connection carries the call.
   */
  #sendNow<T> (args: string[], counterOf?: CounterOf<T>, resets = false, runner = false): Promise<T> {
    try {
      const connection = runner ? this.#runners.take() : undefined
      const reply = (connection ?? this.#client).sendCommand(args) as Promise<T>
      if (counterOf !== undefined) this.#watchCounter(reply, counterOf, resets)
      return this.#deadline.wait(reply, args[0] as string, connection === undefined ? undefined : () => { this.#runners.timedOut(connection) })
    } catch (err) {
      // Whatever goes wrong, the caller gets a rejected promise, as from an async function.
      return Promise.reject(err)
    }
  }
}

/** Tenants listed by stats at most (the ring's first, the next to be served, then parked ones). */
const STATS_TENANTS = 1000

/** Where a reply carries Redis's write counter (null: this reply does not). */
type CounterOf<T> = (reply: T) => number | null

/** A stored record, or null for a tombstone. */
function parseLive (json: string): StoredJob | null {
  const job = JSON.parse(json) as StoredJob
  return (job.status as string) === 'deleted' ? null : job
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

/** Redis's maxmemory from an INFO memory reply; 0 when unlimited or not reported. */
function maxMemoryIn (info: string): number {
  return Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0)
}
