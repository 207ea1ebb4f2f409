// A deployment for the chaos suite: one real Redis (or a Cluster endpoint, or a master with an
// asynchronous replica behind one endpoint that a failover moves), replicas of the built service
// as child processes (optionally behind a stall-able TCP proxy, or with a clock running ahead),
// clients that create and poll jobs, and the checks made from what they saw, from what Redis holds
// at the end, and from the replicas' own logs.
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createCluster } from 'redis'
import { RedisKeys } from '../../src/store/keys.ts'
import { shardOf, shardPrefix } from '../../src/store/sharded.ts'
import { RedisCluster } from '../../test/helpers/redis-cluster.ts'
import { RedisServer } from '../../test/helpers/redis-server.ts'
import { TcpProxy } from '../../test/helpers/tcp-proxy.ts'
import { freePort, until } from './processes.mjs'

const FINAL = new Set(['completed', 'failed', 'cancelled'])
/** How long a replica sent SIGTERM may take to exit before it is killed: far above the suite's SHUTDOWN_TIMEOUT_MS. */
const STOP_GRACE_MS = 30_000
/** `npm run chaos:cluster`: every fault's Redis is a 3+3 Cluster (see startRedis). */
export const ON_CLUSTER = process.env.CHAOS_REDIS === 'cluster'
/** The replicas run with the default REDIS_KEY_PREFIX. */
export const KEYS = new RedisKeys()
const SKEW_PRELOAD = new URL('../../test/helpers/skewed-clock.mjs', import.meta.url).pathname

export class Deployment {
  /** @param {{ name: string, work: string, processes: import('./processes.mjs').Processes, env?: Record<string, string>, maxAttempts?: number }} options */
  constructor (options) {
    /** @type {any} a client for assertions on what Redis holds (single or Cluster), made on first use */
    this.adminClient = undefined
    this.name = options.name
    this.dir = join(options.work, options.name)
    mkdirSync(this.dir, { recursive: true })
    this.processes = options.processes
    this.maxAttempts = options.maxAttempts ?? 3
    this.env = options.env ?? {}
    /** @type {Map<string, any>} */
    this.replicas = new Map()
    /** Accepted jobs: id -> creating replica. */
    this.accepted = new Map()
    this.refused = {}
    this.polls = { total: 0, byStatus: {}, regressions: [], confident404: [], other5xx: [], stopping503: 0 }
    this.started = Date.now()
    this.redis = null
    /** Every Redis server started here, stopped by close() (this.redis is the master of the moment). */
    this.servers = []
    this.proxies = []
  }

  /**
   * One Redis; or, under `npm run chaos:cluster` (CHAOS_REDIS=cluster), a 3+3 Cluster with the jobs
   * over 6 shards, whose first master stands in as "the Redis" a fault restarts or pauses (it
   * keeps an AOF, as every node of the Cluster does).
   */
  async startRedis (options = {}) {
    if (ON_CLUSTER) {
      await this.startCluster(6)
      this.redis = this.cluster.server(this.cluster.masters()[0].port)
      return this.redis
    }
    this.redis = await RedisServer.start(options)
    this.servers.push(this.redis)
    return this.redis
  }

  /**
   * A master and its asynchronous replica, as a managed Redis with failover is: the replication
   * link goes through a proxy the suite can stall (the replica lagging behind), and the service
   * replicas reach the master through one front proxy standing in for the managed endpoint,
   * which promoteReplica() moves.
   */
  async startRedisWithReplica () {
    this.redis = await RedisServer.start()
    this.replicationLink = await TcpProxy.start(this.redis.port)
    this.redisReplica = await RedisServer.start({ replicaOf: this.replicationLink.port })
    this.front = await TcpProxy.start(this.redis.port)
    this.servers.push(this.redis, this.redisReplica)
    this.proxies.push(this.replicationLink, this.front)
    return this.redis
  }

  /**
   * The failover: the replica becomes the master with whatever it had received, and the endpoint
   * moves to it (open connections dropped, the service replicas reconnect to it).
   */
  async promoteReplica () {
    await this.redisReplica.promote()
    this.redis = this.redisReplica
    this.redisReplica = null
    this.front.retarget(this.redis.port)
  }

  /** A local Redis Cluster (3 masters, 3 replicas) instead; the replicas get REDIS_CLUSTER and `shards`. */
  async startCluster (shards) {
    this.cluster = await RedisCluster.start()
    this.shards = shards
    this.env = { ...this.env, REDIS_CLUSTER: 'true', REDIS_SHARDS: String(shards) }
    return this.cluster
  }

  async admin () {
    if (this.cluster !== undefined) {
      // Every node as a root: the suite kills masters, and the first node may be one of them.
      if (this.adminClient === undefined) {
        this.adminClient = createCluster({ rootNodes: this.cluster.servers.map((server) => ({ url: server.url })) })
        // Node errors (a killed master) are expected here; a read that fails says so itself.
        this.adminClient.on('error', () => {})
      }
      if (!this.adminClient.isOpen) await this.adminClient.connect()
      return this.adminClient
    }
    if (this.adminOf !== this.redis) {
      // A client of a master since failed over would read a dead or stale server.
      this.adminClient?.destroy()
      this.adminClient = await this.redis.client()
      this.adminOf = this.redis
    }
    return this.adminClient
  }

  /** The key of a job's record, on its shard. */
  jobKey (id) {
    const shards = this.shards ?? 1
    return shards === 1 ? KEYS.job(id) : new RedisKeys(shardPrefix(KEYS.prefix, shardOf(id, shards))).job(id)
  }

  /**
   * Starts a replica; `proxy`: reach Redis through a TCP proxy the suite can stall; `skewMs`: its
   * wall clock runs ahead; `role`: ROLE (a `worker` takes no client traffic).
   */
  async startReplica (name, { proxy = false, skewMs = 0, role = 'all', env = {} } = {}) {
    let redisUrl = this.front?.url ?? this.cluster?.url ?? this.redis.url
    let tcpProxy = null
    if (proxy) {
      tcpProxy = await TcpProxy.start(this.redis.port)
      this.proxies.push(tcpProxy)
      redisUrl = tcpProxy.url
    }
    const port = await freePort()
    const args = skewMs !== 0 ? ['--import', SKEW_PRELOAD, 'dist/server.js'] : ['dist/server.js']
    const child = this.processes.start('node', args, {
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      WORKER_ID: name,
      CLOCK_SKEW_MS: String(skewMs),
      REDIS_URL: redisUrl,
      REDIS_TIMEOUT_MS: '500',
      REDIS_BREAKER_MS: '200',
      REDIS_READ_WAIT_MS: '2000',
      JOB_LEASE_MS: '2000',
      JOB_MAX_ATTEMPTS: String(this.maxAttempts),
      JOB_RETRY_BASE_MS: '200',
      RUNNER_CONCURRENCY: '4',
      RESEARCH_STEP_DELAY_MS: '60',
      SHUTDOWN_TIMEOUT_MS: '2000',
      RATE_LIMIT_ENABLED: 'false',
      ROLE: role,
      ...this.env,
      ...env
    }, join(this.dir, `${name}.log`))
    const replica = { name, port, child, url: `http://127.0.0.1:${port}`, live: false, skewMs, role, proxy: tcpProxy, killedAt: null }
    this.replicas.set(name, replica)
    await until(`${name} to answer /health`, async () => (await fetch(`${replica.url}/health`)).ok, 30_000)
    replica.live = true
    return replica
  }

  /**
   * After Redis lost data: whether a replica's /health reported it (degraded, `recovering`, and
   * what was lost) within 5 s. Returns the summary field, and a problem when none did.
   */
  async lossReported () {
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) {
      for (const replica of this.serving()) {
        const health = await (await fetch(`${replica.url}/health`)).json().catch(() => null)
        if (health?.status === 'degraded' && health.redis.recovering === true && typeof health.redis.data_loss === 'string') {
          return { health_reported: true }
        }
      }
      await sleep(50)
    }
    return { health_reported: false, problems: ['no replica\'s /health reported the loss within 5 s'] }
  }

  live () {
    return [...this.replicas.values()].filter((r) => r.live)
  }

  /** The live replicas a load balancer sends clients to (workers serve no API). */
  serving () {
    return this.live().filter((r) => r.role !== 'worker')
  }

  /**
   * Signals a replica and waits for it to exit. One that has not exited STOP_GRACE_MS after a
   * gentler signal is killed: a replica stuck in its shutdown (or in Node's own exit, see
   * nodejs/node#54918) fails its scenario, through the SIGKILL its exit reports, instead of
   * stalling the suite.
   */
  async kill (name, signal = 'SIGKILL') {
    const replica = this.replicas.get(name)
    replica.live = false
    replica.killedAt = Date.now()
    replica.child.kill(signal)
    if (signal === 'SIGKILL') return await replica.child.exited
    const stuck = setTimeout(() => replica.child.kill('SIGKILL'), STOP_GRACE_MS)
    try { return await replica.child.exited } finally { clearTimeout(stuck) }
  }

  /**
   * POSTs `count` jobs round-robin over the live replicas, 20 at a time; refusals are counted by
   * status. `bodyOf(i)`: the body of the i-th job instead of the default one.
   */
  async create (count, label = 'job', bodyOf = undefined) {
    const rotation = this.serving()
    let made = 0
    for (let i = 0; i < count; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, count - i) }, async (_v, k) => {
        const replica = rotation[(i + k) % rotation.length]
        const res = await fetch(`${replica.url}/v1/research`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(bodyOf?.(i + k) ?? { query: `${this.name} ${label} ${i + k}: how do leases and retries keep jobs alive when workers die?`, depth: 'standard' })
        })
        const body = await res.json()
        if (res.status === 202) {
          this.accepted.set(body.job_id, replica.name)
          made++
        } else {
          this.refused[`${res.status} ${body.error}`] = (this.refused[`${res.status} ${body.error}`] ?? 0) + 1
        }
      }))
    }
    return made
  }

  /**
   * Clients behind a load balancer: each polls random accepted jobs on random live replicas and
   * keeps its own view of each job, so it notices a job going back from a final state, or being
   * denied (a confident 404) after it was accepted.
   */
  startPolling (clients = 6) {
    this.polling = true
    this.pollers = Promise.all(Array.from({ length: clients }, async (_v, client) => {
      const seen = new Map()
      while (this.polling) {
        const ids = [...this.accepted.keys()]
        const replicas = this.serving()
        if (ids.length === 0 || replicas.length === 0) { await sleep(50); continue }
        const id = ids[Math.floor(Math.random() * ids.length)]
        const replica = replicas[Math.floor(Math.random() * replicas.length)]
        try {
          const res = await fetch(`${replica.url}/v1/jobs/${id}`)
          const body = await res.json()
          this.polls.total++
          if (res.status === 503 && replica.killedAt !== null && (body.code === 'shutting_down' || /closing|shutting down/i.test(String(body.message)))) {
            // Sent just before this replica left the rotation, answered while it shuts down: the
            // 503 a load balancer retries elsewhere (like a refused connection, below), counted apart.
            this.polls.stopping503++
            continue
          }
          this.polls.byStatus[res.status] = (this.polls.byStatus[res.status] ?? 0) + 1
          if (res.status === 404) this.polls.confident404.push(`${replica.name} ${id}`)
          else if (res.status >= 500 && res.status !== 503) this.polls.other5xx.push(`${replica.name} ${res.status}`)
          if (res.status === 200) {
            const before = seen.get(id)
            if (FINAL.has(before) && before !== body.status) this.polls.regressions.push(`client ${client}: ${id} ${before} -> ${body.status} on ${replica.name}`)
            seen.set(id, body.status)
          }
        } catch {
          // A replica taken out of rotation a moment ago: the load balancer's problem, not an HTTP answer.
        }
        await sleep(15)
      }
    }))
  }

  async stopPolling () {
    this.polling = false
    await this.pollers
  }

  /** Waits until every accepted job (but those known to be lost) is final in Redis; returns the jobs that are not. */
  async drain (expectedLost = [], timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs
    const lost = new Set(expectedLost)
    for (;;) {
      const records = await this.records()
      const open = [...this.accepted.keys()].filter((id) => !lost.has(id) && !FINAL.has(records.get(id)?.status))
      if (open.length === 0 || Date.now() > deadline) return open
      await sleep(250)
    }
  }

  /** What Redis holds for every accepted job. */
  async records () {
    if (this.cluster === undefined) return await this.#readRecords(await this.admin())
    // The suite's own Cluster client may still route to a master killed moments ago: read again
    // with a fresh one (a new discovery of the slots) rather than fail the fault on the harness.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#readRecords(await this.admin())
      } catch (err) {
        if (attempt >= 20) throw err
        this.adminClient?.destroy()
        this.adminClient = undefined
        await sleep(250)
      }
    }
  }

  async #readRecords (admin) {
    const ids = [...this.accepted.keys()]
    const out = new Map()
    for (let i = 0; i < ids.length; i += 200) {
      const batch = ids.slice(i, i + 200)
      // One GET per key on a Cluster: a batch's keys live in different slots.
      const raw = this.cluster === undefined ? await admin.mGet(batch.map((id) => this.jobKey(id))) : await Promise.all(batch.map(async (id) => await admin.get(this.jobKey(id))))
      batch.forEach((id, k) => { if (raw[k] !== null) out.set(id, JSON.parse(raw[k])) })
    }
    return out
  }

  /**
   * Runs of the engine as the replicas logged them ("job started" .. "job run ended"), on one
   * clock (each replica's skew taken off); a run open when its replica was killed ends then.
   */
  runs () {
    const spans = []
    for (const replica of this.replicas.values()) {
      const open = new Map()
      for (const { entry, time } of this.#logEntries(replica)) {
        const key = `${entry.job_id}#${entry.attempt}`
        if (entry.msg === 'job started') open.set(key, { job: entry.job_id, worker: replica.name, attempt: entry.attempt, start: time, end: Infinity })
        if (entry.msg === 'job run ended' && open.has(key)) {
          spans.push({ ...open.get(key), end: time })
          open.delete(key)
        }
      }
      for (const span of open.values()) spans.push({ ...span, end: replica.killedAt ?? Infinity })
    }
    return spans
  }

  /**
   * Runs whose engine finished the work, as the replicas logged them ("job finished"), on one
   * clock; `written`: the completion reached the store (written: true, status completed).
   */
  finishes () {
    const done = []
    for (const replica of this.replicas.values()) {
      for (const { entry, time } of this.#logEntries(replica)) {
        if (entry.msg === 'job finished') done.push({ job: entry.job_id, worker: replica.name, attempt: entry.attempt, time, written: entry.written === true && entry.status === 'completed' })
      }
    }
    return done
  }

  /** How many lines the replicas (those of the moment and those gone; or the one named) logged with message `msg`. */
  logged (msg, name = undefined) {
    let count = 0
    for (const replica of this.replicas.values()) {
      if (name !== undefined && replica.name !== name) continue
      for (const { entry } of this.#logEntries(replica)) if (entry.msg === msg) count++
    }
    return count
  }

  /** A replica's JSON log lines, each with its time with the replica's clock skew taken off. */
  * #logEntries (replica) {
    for (const line of readFileSync(join(this.dir, `${replica.name}.log`), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue
      const entry = JSON.parse(line)
      yield { entry, time: entry.time - replica.skewMs }
    }
  }

  /**
   * The summary of this fault: what the issue counts, and the problems found. `expectedLost`:
   * jobs only a dead replica held, which no design that keeps accepting during an outage can
   * save (some may survive: a create whose reply was lost may have reached Redis). They are
   * counted apart; losing any other job is a problem.
   */
  async report (extra = {}, expectedLost = []) {
    const records = await this.records()
    const open = [...this.accepted.keys()].filter((id) => !FINAL.has(records.get(id)?.status))
    const lost = []
    for (const id of open) {
      if (records.has(id)) continue
      const answers = await Promise.all(this.serving().map(async (r) => (await fetch(`${r.url}/v1/jobs/${id}`)).status))
      if (!answers.includes(200)) lost.push(id)
    }
    const finals = [...records.values()].filter((job) => FINAL.has(job.status))
    const spans = this.runs()
    const concurrent = []
    const byJob = new Map()
    for (const span of spans) byJob.set(span.job, [...(byJob.get(span.job) ?? []), span])
    for (const [job, list] of byJob) {
      list.sort((a, b) => a.start - b.start)
      for (let i = 1; i < list.length; i++) {
        if (list[i].start < list[i - 1].end) concurrent.push(`${job}: ${list[i - 1].worker}#${list[i - 1].attempt} and ${list[i].worker}#${list[i].attempt}`)
      }
    }
    // A job completed and written twice, and a run started after one was written: finished work
    // the store forgot (Redis back in time) or threw away, done again. Apart, runs started after
    // one whose finished work was never written (its write refused, or its lease gone meanwhile):
    // counted, a problem only where the fault says the work must be kept (strictReruns).
    const finishes = this.finishes()
    const finishTimes = (written) => {
      const times = new Map()
      for (const f of finishes) if (f.written === written) times.set(f.job, [...(times.get(f.job) ?? []), f.time])
      return times
    }
    const written = finishTimes(true)
    const unwritten = finishTimes(false)
    const startsAfter = (times, span) => span.start > Math.min(...(times.get(span.job) ?? [Infinity]))
    const twice = [...written.values()].filter((times) => times.length > 1)
    const reruns = spans.filter((span) => startsAfter(written, span))
    const rerunsUnwritten = spans.filter((span) => !startsAfter(written, span) && startsAfter(unwritten, span))
    const knownLoss = new Set(expectedLost)
    const unexpectedLoss = lost.filter((id) => !knownLoss.has(id))
    const summary = {
      accepted: this.accepted.size,
      refused: Object.values(this.refused).reduce((a, b) => a + b, 0),
      completed: finals.filter((j) => j.status === 'completed').length,
      failed: finals.filter((j) => j.status === 'failed').length,
      lost: unexpectedLoss.length,
      ...(expectedLost.length > 0 ? { lost_held_only_by_dead_replica: `${lost.length - unexpectedLoss.length}/${knownLoss.size}` } : {}),
      stuck: open.length - lost.length,
      concurrent: concurrent.length,
      over_max: finals.filter((j) => j.attempts > this.maxAttempts).length,
      regressions: this.polls.regressions.length,
      completed_twice: twice.length,
      reruns: reruns.length,
      reruns_unwritten: rerunsUnwritten.length,
      confident_404: this.polls.confident404.length,
      polls: this.polls.total,
      polls_503: this.polls.byStatus[503] ?? 0,
      polls_503_stopping: this.polls.stopping503,
      other_5xx: this.polls.other5xx.length,
      runs: spans.length,
      time_s: ((Date.now() - this.started) / 1000).toFixed(1),
      ...extra
    }
    const problems = []
    for (const key of ['failed', 'lost', 'stuck', 'concurrent', 'over_max', 'regressions', 'completed_twice', 'reruns', 'confident_404', 'other_5xx']) {
      if (summary[key] > 0) problems.push(`${key}=${summary[key]}`)
    }
    if (concurrent.length > 0) problems.push(`concurrent runs, e.g. ${concurrent.slice(0, 3).join(' | ')}`)
    if (this.polls.regressions.length > 0) problems.push(`regressions, e.g. ${this.polls.regressions.slice(0, 3).join(' | ')}`)
    if (reruns.length > 0) problems.push(`runs after the job was written completed, e.g. ${reruns.slice(0, 3).map((r) => `${r.job} ${r.worker}#${r.attempt}`).join(' | ')}`)
    if (this.polls.confident404.length > 0) problems.push(`confident 404s, e.g. ${this.polls.confident404.slice(0, 3).join(' | ')}`)
    if (unexpectedLoss.length > 0) problems.push(`lost, e.g. ${unexpectedLoss.slice(0, 3).join(' ')}`)
    return { summary, problems }
  }

  async close () {
    await this.adminClient?.close().catch(() => {})
    for (const proxy of this.proxies) await proxy.close()
    for (const server of this.servers) await server.stop()
    await this.cluster?.stop()
  }
}

/** One line per fault, in the form the issue asks for. */
export function summaryLine (name, summary) {
  return `chaos[${name}]: ${Object.entries(summary).map(([k, v]) => `${k}=${v}`).join(' ')}`
}
