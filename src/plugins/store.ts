import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { type Config, redactUrl, runnerConnections } from '../config.js'
import { FallbackJobStore } from '../store/fallback.js'
import { RedisKeys } from '../store/keys.js'
import { LocalEventLog } from '../store/job-events.js'
import { MemoryJobStore } from '../store/memory.js'
import { NoticeSubscriber } from '../store/notice-subscriber.js'
import { defaultWorkerId } from '../runner/runner.js'
import { RedisJobStore, type RedisStore } from '../store/redis.js'
import { ShardedRedisJobStore } from '../store/sharded.js'
import type { RunningLimits } from '../store/tenant-queues.js'
import { type RedisClient, connectInBackground, createRedisClient } from '../store/redis-client.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: FallbackJobStore
  }
}

const SWEEP_INTERVAL_MS = 60_000
const ERROR_LOG_INTERVAL_MS = 30_000
/** How long a replica takes Redis's "no maxmemory" as still true: its creates skip the memory admission meanwhile. */
const TRUST_UNLIMITED_MS = 1000

/** The job store: Redis when REDIS_URL is set (connected in the background), always the Map. */
const storePlugin: FastifyPluginAsync<{ config: Config, runningLimits?: RunningLimits }> = async (app, { config, runningLimits }) => {
  const log = app.log.child({ component: 'store' })
  const memory = new MemoryJobStore({ ttlSeconds: config.JOB_TTL_SECONDS, maxJobs: config.MEMORY_MAX_JOBS, runningLimits })
  let client: RedisClient | undefined
  const runnerClients: RedisClient[] = []
  let redis: RedisStore | undefined
  let subscriber: NoticeSubscriber | undefined
  let lastErrorLog = 0
  if (config.REDIS_URL !== '') {
    const keys = new RedisKeys(config.REDIS_KEY_PREFIX)
    client = createRedisClient({
      url: config.REDIS_URL,
      cluster: config.REDIS_CLUSTER,
      homeKey: keys.epoch,
      rejectUnauthorized: config.REDIS_TLS_REJECT_UNAUTHORIZED,
      onError: (err) => {
        store.health.noteError(err)
        // A down Redis reports an error on every reconnect attempt; log it now and then.
        if (Date.now() - lastErrorLog > ERROR_LOG_INTERVAL_MS) {
          lastErrorLog = Date.now()
          log.warn({ err: err.message, redis: redactUrl(config.REDIS_URL) }, 'Redis connection error; serving from memory until it is back')
        }
      }
    })
    client.on('ready', () => log.info({ redis: redactUrl(config.REDIS_URL) }, 'Redis ready'))
    // The Cluster client already holds a connection per master.
    if (config.REDIS_RUNNER_CONNECTION && config.ROLE !== 'api' && !config.REDIS_CLUSTER) {
      for (let i = 0; i < runnerConnections(config); i++) {
        const runnerClient = client.duplicate()
        runnerClient.on('error', () => { /* the main client reports Redis errors; the runner's calls use another connection meanwhile */ })
        runnerClients.push(runnerClient)
      }
    }
    const options = {
      keys,
      shardedNotices: config.REDIS_CLUSTER,
      ttlSeconds: config.JOB_TTL_SECONDS,
      maxEvents: config.JOB_EVENTS_MAX,
      timeoutMs: config.REDIS_TIMEOUT_MS,
      // On a Cluster, INFO reaches one master, not each shard's: every create is checked there.
      admission: { percent: config.REDIS_ADMIT_MEMORY_PERCENT, reserveBytes: config.REDIS_JOB_RESERVE_BYTES, trustUnlimitedMs: config.REDIS_CLUSTER ? 0 : TRUST_UNLIMITED_MS },
      runningLimits,
      runnerClients,
      onCommand: (command: string, ms: number, ok: boolean) => app.metrics.redisCommand(command, ms, ok)
    }
    redis = config.REDIS_SHARDS > 1 ? new ShardedRedisJobStore(client, { ...options, shards: config.REDIS_SHARDS }) : new RedisJobStore(client, options)
  } else {
    log.info('REDIS_URL is not set: jobs live in this process only')
  }
  const store = new FallbackJobStore({
    memory,
    redis,
    breakerMs: config.REDIS_BREAKER_MS,
    readWaitMs: config.REDIS_READ_WAIT_MS,
    visibilityGraceMs: config.JOB_VISIBILITY_GRACE_MS,
    reseedHoldMs: config.JOB_LEASE_MS,
    events: new LocalEventLog({ maxEvents: config.JOB_EVENTS_MAX, maxJobs: config.MEMORY_MAX_JOBS, ttlSeconds: config.JOB_TTL_SECONDS }),
    logger: log,
    onFallback: (operation) => app.metrics.fallback(operation),
    steps: { ttlSeconds: config.JOB_TTL_SECONDS, maxLocalBytes: config.STEPS_MEMORY_MAX_BYTES },
    // One entry per process, even where replicas share a WORKER_ID (a live twin must not speak for a
    // cut-off one). Workers take no creates, so they hold nothing a client could ask for: not on it.
    roster: config.ROLE === 'worker' ? undefined : { replica: config.WORKER_ID === '' ? defaultWorkerId() : `${config.WORKER_ID}-${randomBytes(3).toString('hex')}`, everyMs: config.REPLICA_HEARTBEAT_MS },
    cache: { maxEntries: config.CACHE_MAX_ENTRIES, maxLocalBytes: config.CACHE_MEMORY_MAX_BYTES }
  })
  if (client !== undefined && redis !== undefined) {
    connectInBackground(client)
    for (const runnerClient of runnerClients) connectInBackground(runnerClient)
    subscriber = new NoticeSubscriber(client, redis.noticeChannels, store.notices, { logger: log })
  }

  const sweeper = setInterval(() => memory.sweep(), SWEEP_INTERVAL_MS)
  sweeper.unref()
  app.decorate('store', store)
  // Before the server waits for requests in flight: none of them should be waiting for Redis.
  app.addHook('preClose', async () => { store.stopWaiting() })
  app.addHook('onClose', async () => {
    clearInterval(sweeper)
    store.close()
    subscriber?.destroy()
    if (client === undefined) return
    // Last chance to hand what only this process holds to Redis.
    await store.syncToRedis()
    await store.leaveRoster()
    await Promise.all([client, ...runnerClients].map(async (connection) => { await closeWithin(connection, config.REDIS_TIMEOUT_MS) }))
  })
}

/**
 * Lets written replies arrive, but never waits on a dead Redis past the store's deadline. The
 * timer is not unref'd: a close() that waits for replies that never come (seen with Redis
 * killed mid-run) would otherwise leave a test process with no work left mid-close.
 */
async function closeWithin (connection: RedisClient, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      connection.close(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('close timed out')), ms) })
    ])
  } catch {
    connection.destroy()
  } finally {
    clearTimeout(timer)
  }
}

export default fp(storePlugin, { name: 'store', dependencies: ['metrics'] })
