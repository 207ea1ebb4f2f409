// The shared cache's storage: bounded in Redis (closest to expiring out first, entries expire by their
// own ttl) and in this process (least recently used out first, by bytes), and a Redis that
// cannot answer is a miss, never an error.
import t from 'tap'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { RedisKeys } from '../../src/store/keys.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { SharedCache } from '../../src/store/shared-cache.js'
import { waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

t.test('in Redis the cache keeps at most CACHE_MAX_ENTRIES, those closest to expiring out first, each entry with its ttl', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  t.teardown(() => client.destroy())
  await waitFor('Redis connected', () => client.isReady)
  const store = new FallbackJobStore({
    memory: new MemoryJobStore({ ttlSeconds: 600, maxJobs: 10 }),
    redis: new RedisJobStore(client, { ttlSeconds: 600, timeoutMs: 1000 }),
    breakerMs: 100,
    cache: { maxEntries: 2, maxLocalBytes: 1024 }
  })
  t.teardown(() => store.close())
  await waitFor('the store on Redis', () => store.mode === 'redis')
  await store.cache.set('page:a', '"A"', 3600)
  await store.cache.set('llm:b', '"B"', 60)
  const admin = await server.client()
  t.teardown(() => admin.close())
  const keys = new RedisKeys()
  const ttl = await admin.ttl(keys.cacheEntry('llm:b'))
  t.ok(ttl > 0 && ttl <= 60, `an LLM answer lives its own ttl (${ttl} s)`)
  await store.cache.set('page:c', '"C"', 3600)
  t.equal(await store.cache.get('llm:b'), null, 'the entry closest to expiring made room for the third')
  t.equal(await store.cache.get('page:a'), '"A"')
  await store.cache.set('page:d', '"D"', 3600)
  t.equal(await store.cache.get('page:a'), null, 'then, of entries that live as long, the oldest')
  t.equal(await store.cache.get('page:c'), '"C"')
  t.equal(await store.cache.get('page:d'), '"D"')
  t.equal(store.cache.localBytes, 0, 'nothing was kept in this process')
  t.equal(await admin.zCard(keys.cacheIndex), 2)

  // Redis gone: a lookup is a miss and a write is kept here, never an error.
  await server.stop()
  t.equal(await store.cache.get('page:c'), null)
  await store.cache.set('page:e', '"E"', 3600)
  t.equal(await store.cache.get('page:e'), '"E"', 'kept in this process while Redis is away')
})

t.test('in this process the cache holds at most CACHE_MEMORY_MAX_BYTES, least recently used out first, and forgets expired entries', async (t) => {
  const cache = new SharedCache({ maxEntries: 100, maxLocalBytes: 30 })
  await cache.set('a', 'x'.repeat(10), 3600)
  await cache.set('b', 'y'.repeat(10), 3600)
  t.equal(await cache.get('a'), 'x'.repeat(10), 'a read moves a to the back')
  await cache.set('c', 'z'.repeat(10), 3600)
  t.equal(await cache.get('b'), null, 'b, least recently used, made room')
  t.equal(await cache.get('a'), 'x'.repeat(10))
  t.ok(cache.localBytes <= 30)
  await cache.set('huge', 'w'.repeat(100), 3600)
  t.equal(await cache.get('huge'), null, 'an entry larger than the whole bound is not kept')
  await cache.set('a', 'x', 3600)
  t.equal(await cache.get('a'), 'x', 'a write replaces the entry')
  await cache.set('gone', 'v', 0)
  t.equal(await cache.get('gone'), null, 'an expired entry is a miss')
  t.equal(cache.localBytes, 'a'.length + 1 + 'c'.length + 10)
})
