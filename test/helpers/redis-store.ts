import type { Test } from 'tap'
import { RedisJobStore, type RedisJobStoreOptions } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { RedisServer } from './redis-server.js'
import { waitFor } from './app.js'

/**
 * A Redis server of the test's own, an admin client for looking at its keys, and a RedisJobStore
 * over its own connection, all stopped when `t` ends.
 */
export async function redisJobStore (t: Test, options: Partial<RedisJobStoreOptions> = {}) {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const admin = await server.client()
  t.teardown(() => admin.close())
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  const store = new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 1000, ...options })
  return { server, admin, client, store }
}
