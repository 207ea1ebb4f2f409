// The create admission (docs/guarantees.md, rule 12) costs Redis an INFO inside every create's
// script; without a maxmemory there is nothing to check against. Real redis-server, counted with
// INFO commandstats.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/app.js'

const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())

async function admittingStore (trustUnlimitedMs = 1000): Promise<RedisJobStore> {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  return new RedisJobStore(client, { ttlSeconds: 86400, timeoutMs: 500, admission: { percent: 80, reserveBytes: 65536, trustUnlimitedMs } })
}

const create = async (store: RedisJobStore, query: string): Promise<Awaited<ReturnType<RedisJobStore['put']>>> =>
  await store.put(newJob({ query, depth: 'quick' }), 0, { enqueue: 'tail', admit: true })

/** A store whose first create had Redis asked, and Redis said it has no maxmemory. */
async function storeThatReadNoLimit (): Promise<RedisJobStore> {
  await admin.configSet('maxmemory', '0')
  const store = await admittingStore()
  if (!(await create(store, 'read: no limit')).ok) throw new Error('the first create was refused')
  await sleep(50)
  return store
}

/** A maxmemory above the memory in use (Redis itself accepts writes), but whose 80% is past. */
async function setLimitPastAdmission (): Promise<void> {
  const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
  await admin.configSet('maxmemory', String(used + 100 * 1024))
}

const infoCalls = async (): Promise<number> => Number(/cmdstat_info:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0)

t.test('without a maxmemory, creates run no INFO once the store has read that Redis has none: one reading a second, not one per create', async (t) => {
  await admin.configSet('maxmemory', '0')
  const store = await admittingStore()
  t.ok((await create(store, 'the first create is checked and has Redis asked')).ok)
  await sleep(50)
  await admin.configResetStat()
  const started = performance.now()
  for (let i = 0; i < 50; i++) t.ok((await create(store, `create ${i}`)).ok)
  // Each second past, one reading, and the one create sent while it is asked checks in its script.
  const seconds = Math.ceil((performance.now() - started) / 1000)
  t.ok(await infoCalls() <= 2 * seconds, `${await infoCalls()} INFO for 50 creates in ${seconds} s`)
})

t.test('a store told to trust no reading (a Cluster, where INFO reaches one master) checks every create', async (t) => {
  await admin.configSet('maxmemory', '0')
  const store = await admittingStore(0)
  await admin.configResetStat()
  for (let i = 0; i < 5; i++) t.ok((await create(store, `create ${i}`)).ok)
  t.equal(await infoCalls(), 5)
})

t.test('a maxmemory set at runtime applies to creates within a second, and a Redis with one is checked on every create', async (t) => {
  const store = await storeThatReadNoLimit()
  await setLimitPastAdmission()
  await sleep(1100)
  const refused = await create(store, 'past the limit')
  t.match(refused, { ok: false, reason: 'unavailable', full: true }, 'refused as full a second after the limit was set')
  await admin.configResetStat()
  for (let i = 0; i < 5; i++) t.match(await create(store, `still past ${i}`), { ok: false, full: true })
  t.equal(await infoCalls(), 5, 'with a maxmemory, each create reads memory in the step that stores it')
  await admin.configSet('maxmemory', '0')
})

t.test('the reconnect\'s reading (memoryPolicy) drops what was read before: a maxmemory found then applies to the next create', async (t) => {
  const store = await storeThatReadNoLimit()
  await setLimitPastAdmission()
  t.equal(await store.memoryPolicy(), 'noeviction')
  t.match(await create(store, 'past the limit'), { ok: false, full: true }, 'refused at once, not a second later')
  await admin.configSet('maxmemory', '0')
})
