// What one progress write costs each side, alone: this process's CPU and Redis's per write, and
// the script call's own time in Redis (INFO commandstats), away from HTTP and the rest of a job.
//   node bench/progress-write.mjs [service|peer]   (after `npm run build`)
// `service`: 16 jobs created and claimed through the service's own store (FallbackJobStore over
// RedisJobStore, on one connection), then 300 progress writes each through JobHolder, the path a
// running job's reports take (16 at a time, as RUNNER_CONCURRENCY=16 in the bench), each with a
// percent and a step; `peer`: 16 BullMQ jobs and 300 `job.updateProgress(percent)` calls each.
// 20 rounds, the first 5 left out (V8 warming up); prints the best and the median round, and the
// script call's mean over the timed writes of those 15 (the creates, claims and ends between
// them not counted). Starts its own redis-server on a free port. REDIS_SERVER="<command>" runs
// another, such as `valgrind --tool=callgrind --callgrind-out-file=<file> redis-server` (a build
// of Redis's source, for its symbols) to see which of Redis's functions a write goes to
// (docs/benchmark.md); without --callgrind-out-file its counts land in this checkout's folder.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { Processes, cleanUpOnSignals, freePort, redisCli, redisCpuSeconds, until } from '../scripts/lib/processes.mjs'

const system = process.argv[2] ?? 'service'
if (!['service', 'peer'].includes(system)) throw new Error(`system: service or peer, not ${system}`)
const CONCURRENCY = 16
const WRITES_PER_JOB = 300
const ROUNDS = 20
const WARM_UP_ROUNDS = 5
const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'progress-write-'))
const processes = new Processes(root)
const cleanup = async () => { await processes.killAll(); rmSync(work, { recursive: true, force: true }) }
cleanUpOnSignals(cleanup)
const redisPort = await freePort()
const [command, ...prefix] = (process.env.REDIS_SERVER ?? 'redis-server').trim().split(/\s+/)
const redisChild = processes.start(command, [...prefix, '--port', String(redisPort), '--bind', '127.0.0.1', '--dir', work, '--save', '', '--appendonly', 'no'])
try {
  await until('redis-server', async () => redisCli(redisPort, 'PING') === 'PONG', 60_000)
  await measure()
} finally {
  await cleanup()
}

/** Calls of the script command a write is (FCALL or EVALSHA) and their µs so far, its own commands included. */
function scriptCalls () {
  const rows = [...redisCli(redisPort, 'INFO', 'commandstats').matchAll(/cmdstat_(?:fcall|evalsha):calls=(\d+),usec=(\d+)/g)]
  return { calls: rows.reduce((sum, m) => sum + Number(m[1]), 0), micros: rows.reduce((sum, m) => sum + Number(m[2]), 0) }
}

/** Rounds of writes, their CPU on each side, and the script call's time in commandstats. */
async function measure () {
  const { jobs, close } = system === 'service' ? await serviceJobs() : await peerJobs()
  const perRound = { node: [], redis: [] }
  const timedScripts = { calls: 0, micros: 0 }
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const writers = await jobs()
      const scriptsBefore = scriptCalls()
      const redisBefore = redisCpuSeconds(redisPort)
      const nodeBefore = process.cpuUsage()
      await Promise.all(writers.map(async (write) => { for (let i = 1; i <= WRITES_PER_JOB; i++) await write(Math.min(99, i), `step ${i}`) }))
      const node = process.cpuUsage(nodeBefore)
      const redis = redisCpuSeconds(redisPort) - redisBefore
      const scriptsAfter = scriptCalls()
      if (round < WARM_UP_ROUNDS) continue
      timedScripts.calls += scriptsAfter.calls - scriptsBefore.calls
      timedScripts.micros += scriptsAfter.micros - scriptsBefore.micros
      const writes = CONCURRENCY * WRITES_PER_JOB
      perRound.node.push((node.user + node.system) / writes)
      perRound.redis.push(redis * 1e6 / writes)
    }
  } finally {
    await close()
  }
  const script = timedScripts.micros / timedScripts.calls
  // Shut down rather than killed, so a redis-server under callgrind writes its counts (killed
  // with the rest if it has not stopped within a minute).
  try { redisCli(redisPort, 'SHUTDOWN', 'NOSAVE') } catch { /* it closes the connection as it goes */ }
  await Promise.race([redisChild.exited, new Promise((resolve) => setTimeout(resolve, 60_000).unref())])

  const best = (values) => Math.min(...values).toFixed(1)
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)].toFixed(1)
  console.log(`${system}: a progress write costs this process ${best(perRound.node)} µs of CPU (median ${median(perRound.node)}) and Redis ${best(perRound.redis)} µs (median ${median(perRound.redis)}); its script call ${script.toFixed(1)} µs in Redis's commandstats, the mean over them (${ROUNDS - WARM_UP_ROUNDS} rounds of ${CONCURRENCY} jobs x ${WRITES_PER_JOB} writes)`)
}

/** The service's store, as a worker builds it but on one connection; each round, 16 claimed jobs and their holders' progress writes. */
async function serviceJobs () {
  // Specifiers built at run time: dist/ is not there to type-check against before a build.
  const dist = (path) => import(new URL(`../dist/${path}`, import.meta.url).href)
  const [{ defaultConfig }, { MemoryJobStore }, { RedisKeys }, { RedisJobStore }, { FallbackJobStore }, { createRedisClient }, { JobHolder }, { newJob }, { ServiceMetrics }] = await Promise.all([
    dist('config.js'), dist('store/memory.js'), dist('store/keys.js'), dist('store/redis.js'), dist('store/fallback.js'),
    dist('store/redis-client.js'), dist('runner/job-holder.js'), dist('jobs/records.js'), dist('metrics/service-metrics.js')
  ])
  const config = defaultConfig()
  const keys = new RedisKeys(config.REDIS_KEY_PREFIX)
  const client = createRedisClient({ url: `redis://127.0.0.1:${redisPort}`, cluster: false, homeKey: keys.epoch, rejectUnauthorized: true, onError: () => {} })
  await client.connect()
  const metrics = new ServiceMetrics()
  const redis = new RedisJobStore(client, {
    keys,
    ttlSeconds: config.JOB_TTL_SECONDS,
    maxEvents: config.JOB_EVENTS_MAX,
    timeoutMs: config.REDIS_TIMEOUT_MS,
    onCommand: (name, ms, ok) => metrics.redisCommand(name, ms, ok)
  })
  const memory = new MemoryJobStore({ ttlSeconds: config.JOB_TTL_SECONDS, maxJobs: config.MEMORY_MAX_JOBS })
  const store = new FallbackJobStore({ memory, redis, breakerMs: config.REDIS_BREAKER_MS, readWaitMs: 0, visibilityGraceMs: config.JOB_VISIBILITY_GRACE_MS })
  let holders = []
  return {
    jobs: async () => {
      for (const holder of holders) await holder.end('completed', (job, now) => ({ ...job, status: 'completed', completed_at: now, updated_at: now }))
      for (let i = 0; i < CONCURRENCY; i++) {
        const created = await store.put(newJob({ query: 'How do Redis streams trim their entries at scale?', depth: 'standard' }), 0, { enqueue: 'tail' })
        if (!created.ok) throw new Error(`create refused: ${JSON.stringify(created)}`)
      }
      const claims = await store.claim(config.JOB_LEASE_MS, CONCURRENCY, { worker: 'bench', maxAttempts: config.JOB_MAX_ATTEMPTS, step: 'Starting' })
      if (claims.length !== CONCURRENCY) throw new Error(`claimed ${claims.length} jobs of ${CONCURRENCY}`)
      holders = claims.map((claim) => new JobHolder(store, claim, 'bench', config.JOB_LEASE_MS, performance.now()))
      return holders.map((holder) => async (percent, step) => {
        const outcome = await holder.progress(percent, step)
        if (outcome !== 'written') throw new Error(`progress write: ${outcome}`)
      })
    },
    close: async () => { client.destroy() }
  }
}

/** BullMQ's queue; each round, 16 new jobs and their `updateProgress` calls. */
async function peerJobs () {
  const connection = new Redis({ port: redisPort, maxRetriesPerRequest: null })
  const queue = new Queue('research', { connection })
  return {
    jobs: async () => {
      const jobs = await Promise.all(Array.from({ length: CONCURRENCY }, async () => await queue.add('research', { query: 'How do Redis streams trim their entries at scale?', depth: 'standard' })))
      return jobs.map((job) => async (percent) => { await job.updateProgress(percent) })
    },
    close: async () => { await queue.close(); await connection.quit() }
  }
}
