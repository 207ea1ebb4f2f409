// REDIS_SHARDS on one real Redis: jobs spread over hash tags, and everything that reads across
// them (claims, lists, stats, the epoch) sees every shard. The same on a Cluster is in
// test/cluster/cluster.test.ts.
import t from 'tap'
import { RedisKeys } from '../../src/store/keys.js'
import { shardOf, shardPrefix } from '../../src/store/sharded.js'
import { createJob, json, listAllJobIds, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'

t.test('shard prefixes number the hash tag; a job id always hashes to the same shard, and ids spread', async (t) => {
  t.equal(shardPrefix('dr:{0}:', 3), 'dr:{3}:')
  t.equal(shardPrefix('team-a:{x}:', 0), 'team-a:{0}:')
  const counts = [0, 0, 0, 0]
  for (let i = 0; i < 4000; i++) counts[shardOf(crypto.randomUUID(), 4)]! += 1
  for (const count of counts) t.ok(count > 800 && count < 1200, `about a quarter each (${counts.join(', ')})`)
  t.equal(shardOf('01a231e0-8e9e-725c-b770-fde35c2f10fb', 6), shardOf('01a231e0-8e9e-725c-b770-fde35c2f10fb', 6))
})

t.test('REDIS_SHARDS=4: jobs land on every shard, run, list in one order across shards, count in stats', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const config = { REDIS_URL: redis.url, REDIS_SHARDS: 4, RUNNER_CONCURRENCY: 8 }
  const a = await startApp(t, config, { engine: new PacedEngine(0) })
  const b = await startApp(t, config, { engine: new PacedEngine(0) })
  await waitFor('on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  t.match(json(await a.inject({ method: 'GET', url: '/health' })), { status: 'ok', redis: { topology: { kind: 'single', shards: 4 } } })
  const ids: string[] = []
  for (let i = 0; i < 24; i++) ids.push((await createJob(i % 2 === 0 ? a : b, { query: `sharded job ${i}: how do leases work?`, depth: 'quick' })).job_id)
  for (const id of ids) t.match(await pollJob(i(id) % 2 === 0 ? b : a, id), { status: 'completed' })

  const admin = await redis.client()
  t.teardown(() => admin.close())
  for (let shard = 0; shard < 4; shard++) {
    const keys = new RedisKeys(shardPrefix('dr:{0}:', shard))
    const mine = ids.filter((id) => shardOf(id, 4) === shard)
    t.ok(mine.length > 0, `shard ${shard} got jobs`)
    for (const id of mine) t.not(await admin.get(keys.job(id)), null, `job ${id} is under ${keys.prefix}`)
    t.equal(await admin.zCard(keys.created), mine.length, `shard ${shard}'s index holds its own jobs only`)
  }

  const seen = await listAllJobIds(a, 5)
  t.same(seen, [...ids].reverse(), 'pages of 5 walk all 24 jobs across the shards, newest first, each once')
  t.match(json(await b.inject({ method: 'GET', url: '/v1/stats' })), { counts: { completed: 24, pending: 0 }, queue_depth: 0 })
})

t.test('one shard losing its data is noticed (its epoch), and the copies held put its jobs back', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const app = await startApp(t, { REDIS_URL: redis.url, REDIS_SHARDS: 3 }, { engine: new PacedEngine(0) })
  await waitFor('on Redis', () => app.store.mode === 'redis')
  const ids: string[] = []
  // Twelve jobs at least, and on until one lands on shard 1 (twelve random ids all miss it once in 130 runs).
  for (let i = 0; i < 12 || !ids.some((id) => shardOf(id, 3) === 1); i++) ids.push((await createJob(app, { query: `loss job ${i}`, depth: 'quick' })).job_id)
  for (const id of ids) await pollJob(app, id)
  await app.store.reconcile()
  const admin = await redis.client()
  t.teardown(() => admin.close())
  const lost = shardPrefix('dr:{0}:', 1)
  const victims = ids.filter((id) => shardOf(id, 3) === 1)
  // Shard 1's keys vanish, as on a Cluster master that restarted empty; the other shards keep theirs.
  for await (const batch of admin.scanIterator({ MATCH: `${lost}*`, COUNT: 1000 })) if (batch.length > 0) await admin.del(batch)
  // Twice: a call joins a check already under way, which the reconciler's own timer may have
  // begun before the keys went (it then finds nothing wrong); the second is a check of its own.
  await app.store.reconcile()
  await app.store.reconcile()
  t.ok(app.store.health.recovering, 'the loss was noticed')
  await waitFor('shard 1 re-seeded', async () => (await Promise.all(victims.map(async (id) => await admin.get(new RedisKeys(lost).job(id))))).every((raw) => raw !== null))
  for (const id of victims) t.match(await pollJob(app, id), { status: 'completed' }, 'finished as it was')
})

function i (id: string): number {
  return id.charCodeAt(id.length - 1)
}
