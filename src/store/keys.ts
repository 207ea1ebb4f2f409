import { FINAL_STATUSES, JOB_STATUSES, type JobStatusName } from '../schemas/job.js'

/**
 * The names a job script may declare in its header (`-- KEYS (n): name ...`) and know its keys
 * by (`K.name`). `status_*` stands for every status set, in JOB_STATUSES order; `job_prefix` is
 * the prefix of every job's key, for scripts that reach jobs they find in an index (the Lua
 * prelude builds their keys with `job_key(id)` and `log_key(id)`, made from the templates here).
 */
export const SCRIPT_KEY_NAMES = [
  'job', 'events', 'steps', 'job_prefix', 'created', 'owner_created', 'queue', 'tenants', 'leases', 'fences', 'delayed', 'seq', 'webhooks', 'epoch', 'notices',
  ...JOB_STATUSES.map((status) => `status_${status}` as const)
] as const

export type ScriptKeyName = typeof SCRIPT_KEY_NAMES[number]

/** The suffix of a job's event log after its record's key (`job:<id>` + this). */
const LOG_SUFFIX = ':log'
/** The suffix of a job's checkpointed steps after its record's key. */
const STEPS_SUFFIX = ':steps'
/** The suffix of the running records' notice channel after the notices' (see RedisKeys.runningNotices). */
const RUNNING_NOTICES_SUFFIX = ':running'

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
  /** Sorted set: the tenants with queued jobs, in the order claims serve them (see lib/job.lua). */
  readonly tenants: string
  /** Hash: the fencing token of each claim. */
  readonly fences: string
  readonly delayed: string
  /** Counter behind queue positions and fencing tokens. */
  readonly seq: string
  readonly webhooks: string
  /** This Redis's data generation: a new value means the data was lost (restart without persistence, a flush of every key). */
  readonly epoch: string
  /**
   * Pub/sub channel: every record write publishes `<id> <version> <status>` on it ('deleted' for
   * a delete), but for a running record's (see runningNotices).
   */
  readonly notices: string
  /**
   * Pub/sub channel of the notices of a record written as running (its start, its progress): a
   * process listens to it only while a reader of its waits (an event stream, a long poll), so
   * a progress write costs the others nothing. Every other listener (the runner, the copies of
   * finished jobs) needs only the rest.
   */
  readonly runningNotices: string

  constructor (prefix = DEFAULT_KEY_PREFIX) {
    this.prefix = prefix
    this.created = `${prefix}jobs:created`
    this.queue = `${prefix}jobs:queue`
    this.tenants = `${prefix}jobs:tenants`
    this.leases = `${prefix}jobs:leases`
    this.fences = `${prefix}jobs:fences`
    this.delayed = `${prefix}jobs:delayed`
    this.seq = `${prefix}jobs:seq`
    this.webhooks = `${prefix}webhooks:due`
    this.epoch = `${prefix}epoch`
    this.notices = `${prefix}jobs:notices`
    this.runningNotices = `${this.notices}${RUNNING_NOTICES_SUFFIX}`
  }

  /** The prefix of every job's record key (the record of `id` is this + id). */
  get jobPrefix (): string {
    return `${this.prefix}job:`
  }

  job (id: string): string {
    return `${this.jobPrefix}${id}`
  }

  /** List of a job's events ("<id> <type> <data>"). */
  events (id: string): string {
    return `${this.jobPrefix}${id}${LOG_SUFFIX}`
  }

  /** Hash of a job's checkpointed steps: step name -> its result as JSON (see job-steps.ts). */
  steps (id: string): string {
    return `${this.jobPrefix}${id}${STEPS_SUFFIX}`
  }

  /** One entry of the shared cache of pages and LLM answers (see shared-cache.ts), by its digest. */
  cacheEntry (digest: string): string {
    return `${this.prefix}cache:${digest}`
  }

  /** Sorted set of the cache's entries by when they were written (Redis clock, microseconds): its size bound. */
  get cacheIndex (): string {
    return `${this.prefix}cache:index`
  }

  /** Hash: each replica's last heartbeat (see heartbeat.lua). */
  get replicas (): string {
    return `${this.prefix}replicas`
  }

  /** One tenant's jobs by creation time: its list costs its own jobs, not everyone's. */
  ownerCreated (owner: string): string {
    return `${this.prefix}jobs:created:owner:${owner}`
  }

  /** 'done' once the tenants' status indexes hold the records written before they existed (sweep-orphans.lua). */
  get ownerStatusBackfill (): string {
    return `${this.created}:owner-status-backfill`
  }

  /** Tenants at their limit of running jobs, out of the ring (see lib/job.lua). */
  get parkedTenants (): string {
    return `${this.tenants}:parked`
  }

  /** One tenant's jobs in one status by creation time: its status-filtered lists cost their page. */
  ownerStatus (owner: string, status: JobStatusName): string {
    return `${this.ownerCreated(owner)}:${status}`
  }

  /** Sorted set of the live records in one status, scored by when each expires (ms): also the expiry index. */
  status (status: JobStatusName): string {
    return `${this.prefix}jobs:status:${status}`
  }

  /** One tenant's queue (see `tenants`); '' is the open API's tenant. */
  tenantQueue (tenant: string): string {
    return `${this.queue}:owner:${tenant}`
  }

  rateLimit (key: string): string {
    return `${this.prefix}ratelimit:${key}`
  }

  idempotency (key: string): string {
    return `${this.prefix}idempotency:${key}`
  }

  /** The KEYS of a job script, in the order its header declares them; `id` and `owner` for the job it is about. */
  forScript (names: readonly ScriptKeyName[], id: string | null, owner: string | null = null): string[] {
    return names.map((name) => {
      switch (name) {
        case 'job': return this.job(id ?? '')
        case 'events': return this.events(id ?? '')
        case 'steps': return this.steps(id ?? '')
        case 'job_prefix': return this.jobPrefix
        case 'owner_created': return this.ownerCreated(owner ?? '')
        case 'created': case 'queue': case 'tenants': case 'leases': case 'fences': case 'delayed': case 'seq': case 'webhooks': case 'epoch': case 'notices':
          return this[name]
        default: return this.status(name.slice('status_'.length) as JobStatusName)
      }
    })
  }
}

/**
 * The key names a job script declares in its first header line, `-- KEYS (<count>): <name> ...`
 * (`status_*` expanded); throws when the header is missing, names an unknown key or miscounts.
 */
export function declaredKeys (name: string, source: string): ScriptKeyName[] {
  const header = /^-- KEYS \((\d+)\): ([a-z_* ]+)$/m.exec(source)
  if (header === null) throw new Error(`${name}.lua declares no KEYS header`)
  const names = (header[2] as string).trim().split(/\s+/).flatMap((key) => key === 'status_*' ? JOB_STATUSES.map((status) => `status_${status}`) : [key])
  const unknown = names.filter((key) => !(SCRIPT_KEY_NAMES as readonly string[]).includes(key))
  if (unknown.length > 0) throw new Error(`${name}.lua declares unknown keys: ${unknown.join(', ')}`)
  if (names.length !== Number(header[1])) throw new Error(`${name}.lua declares ${names.length} keys but counts ${header[1]}`)
  return names as ScriptKeyName[]
}

/** Touching a key a script did not declare is an error naming it, not a nil key. */
export const LUA_KEY_GUARD = "{ __index = function (_, name) error('this script does not declare the key ' .. name .. ' in its KEYS header') end }"

/**
 * The Lua prelude of a job script: `K` naming its declared KEYS (see LUA_KEY_GUARD), then
 * luaShared's statuses and key builders.
 */
export function luaPrelude (names: readonly ScriptKeyName[]): string {
  const table = names.map((name, i) => `${name} = KEYS[${i + 1}]`).join(', ')
  return [`local K = setmetatable({ ${table} }, ${LUA_KEY_GUARD})`, luaShared()].join('\n')
}

/** The statuses, and the key builders of jobs found in an index (from K.job_prefix), for lib/job.lua. */
export function luaShared (): string {
  return [
    `local STATUSES = { ${JOB_STATUSES.map((status) => `'${status}'`).join(', ')} }`,
    `local FINAL = { ${[...FINAL_STATUSES].map((status) => `${status} = true`).join(', ')} }`,
    `local RUNNING_NOTICES_SUFFIX = '${RUNNING_NOTICES_SUFFIX}'`,
    'local function job_key(id) return K.job_prefix .. id end',
    `local function log_key(id) return K.job_prefix .. id .. '${LOG_SUFFIX}' end`
  ].join('\n')
}
