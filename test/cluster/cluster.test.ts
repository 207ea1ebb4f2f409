// The service on a real local Redis Cluster (3 masters, 3 replicas): the API end to end, a manual
// failover and a killed master with jobs in flight.
import t from 'tap'
import type { StoredJob } from '../../src/store/job-store.js'
import { RedisKeys } from '../../src/store/keys.js'
import { newJob } from '../../src/jobs/records.js'
import { RedisJobStore, type WentBack } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { ShardedRedisJobStore, shardOf, shardPrefix } from '../../src/store/sharded.js'
import { createJob, json, listAllJobIds, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { RedisCluster } from '../helpers/redis-cluster.js'

const KEYS = new RedisKeys()
const FAST = { REDIS_TIMEOUT_MS: 300, REDIS_BREAKER_MS: 200, REDIS_READ_WAIT_MS: 5000, JOB_LEASE_MS: 2000 }

const cluster = await RedisCluster.start()
t.teardown(() => cluster.stop())

t.test('the API on a Redis Cluster: create, poll, list, cancel, delete, events, limits and idempotency work; every key is on one slot\'s master', async (t) => {
  const config = { REDIS_URL: cluster.url, REDIS_CLUSTER: true, ...FAST }
  const a = await startApp(t, { ...config, RATE_LIMIT_ENABLED: true, RATE_LIMIT_CREATE_MAX: 5 }, { engine: new PacedEngine(0) })
  const b = await startApp(t, config, { engine: new PacedEngine(0) })
  await waitFor('both on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  const health = json(await a.inject({ method: 'GET', url: '/health' }))
  t.match(health, { status: 'ok', store: 'redis', redis: { connected: true, topology: { kind: 'cluster', shards: 1, failing_nodes: [] } } })

  const job = await createJob(a, { query: 'How does Redis AOF persistence protect jobs?', depth: 'quick' })
  const done = await pollJob(b, job.job_id)
  t.match(done, { status: 'completed', progress: 100 }, 'created on one replica, finished and answered by the other')
  t.match(done.result.markdown, /AOF/i)
  t.equal(json(await b.inject({ method: 'GET', url: '/v1/jobs' })).jobs[0]?.job_id, job.job_id, 'listed')
  const stream = await b.inject({ method: 'GET', url: `/v1/jobs/${job.job_id}/events` })
  t.match(stream.body, /event: completed/, 'its events stream from the cluster')

  const headers = { 'idempotency-key': 'cluster-key-1' }
  const first = await a.inject({ method: 'POST', url: '/v1/research', headers, payload: { query: 'What is a hash tag?', depth: 'quick' } })
  const again = await a.inject({ method: 'POST', url: '/v1/research', headers, payload: { query: 'What is a hash tag?', depth: 'quick' } })
  t.equal(json(again).job_id, json(first).job_id, 'an idempotent retry gets the same job')
  const doomed = await createJob(a, { query: 'What is a slot?', depth: 'deep' })
  const cancelled = await b.inject({ method: 'POST', url: `/v1/jobs/${doomed.job_id}/cancel` })
  t.ok([200, 409].includes(cancelled.statusCode), `cancelled or already finished (${cancelled.statusCode})`)
  t.equal((await b.inject({ method: 'DELETE', url: `/v1/jobs/${doomed.job_id}` })).statusCode, 204)
  // A replica that saw the job finish answers it from its copy until the delete's notice arrives (docs/guarantees.md, FinalCopies).
  await waitFor('deleted everywhere', async () => (await a.inject({ method: 'GET', url: `/v1/jobs/${doomed.job_id}` })).statusCode === 404)
  t.equal((await a.inject({ method: 'GET', url: `/v1/jobs/${doomed.job_id}` })).statusCode, 404, 'deleted everywhere')
  // Four creates so far (an idempotent replay counts): one more fits the budget of five.
  await createJob(a, { query: 'the fifth create', depth: 'quick' })
  t.equal((await a.inject({ method: 'POST', url: '/v1/research', payload: { query: 'a sixth', depth: 'quick' } })).statusCode, 429, 'the create budget is counted in the cluster')

  const sizes = cluster.dbsizes()
  const home = cluster.masterOf(KEYS.epoch)
  t.ok((sizes[home.port] ?? 0) > 5, `the hash tag's master holds the keys (${JSON.stringify(sizes)})`)
  for (const [port, size] of Object.entries(sizes)) if (Number(port) !== home.port) t.equal(size, 0, `master ${port} holds none (one shard)`)
})

t.test('a manual failover of the master holding the jobs, mid-run: no job lost, none stuck, polls never see a 500', async (t) => {
  const config = { REDIS_URL: cluster.url, REDIS_CLUSTER: true, ...FAST, RUNNER_CONCURRENCY: 4 }
  const a = await startApp(t, config, { engine: new PacedEngine(40) })
  const b = await startApp(t, config, { engine: new PacedEngine(40) })
  await waitFor('both on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  const jobs = []
  for (let i = 0; i < 16; i++) jobs.push(await createJob(i % 2 === 0 ? a : b, { query: `failover job ${i}: what do leases do?`, depth: 'quick' }))
  await waitFor('some running', async () => (await a.store.stats()).counts.processing > 0)
  // Clients keep polling through the failover, as they would.
  const answers = new Map<number, number>()
  const run = { polling: true }
  const poller = (async () => {
    for (let i = 0; run.polling; i++) {
      const job = jobs[i % jobs.length] as { job_id: string }
      const status = (await (i % 2 === 0 ? a : b).inject({ method: 'GET', url: `/v1/jobs/${job.job_id}` })).statusCode
      answers.set(status, (answers.get(status) ?? 0) + 1)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()
  const promoted = await cluster.failover(cluster.masterOf(KEYS.epoch))
  t.equal(cluster.masterOf(KEYS.epoch).port, promoted.port, 'the replica now serves the slot')
  for (const job of jobs) t.match(await pollJob(a, job.job_id, (j) => j.status === 'completed', 30_000), { status: 'completed' })
  run.polling = false
  await poller
  t.ok((answers.get(200) ?? 0) > 20, `polled throughout (${JSON.stringify(Object.fromEntries(answers))})`)
  t.same([...answers.keys()].filter((status) => status >= 500 && status !== 503), [], 'no 5xx but a 503 with Retry-After')
})

t.test('a killed master: its replica takes over, /health names the failing node meanwhile, every job completes', async (t) => {
  const config = { REDIS_URL: cluster.url, REDIS_CLUSTER: true, ...FAST, RUNNER_CONCURRENCY: 4 }
  const a = await startApp(t, config, { engine: new PacedEngine(40) })
  await waitFor('on Redis', () => a.store.mode === 'redis')
  const jobs = []
  for (let i = 0; i < 8; i++) jobs.push(await createJob(a, { query: `kill job ${i}: what is a replica?`, depth: 'quick' }))
  const master = cluster.masterOf(KEYS.epoch)
  await cluster.waitReplicasSynced()
  await cluster.server(master.port).kill()
  await waitFor('the failing node shows in /health', async () => {
    const health = json(await a.inject({ method: 'GET', url: '/health' }))
    return health.status === 'degraded' && health.redis.topology.failing_nodes.includes(`127.0.0.1:${master.port}`)
  }, 15_000)
  await waitFor('a replica promoted', () => { try { return cluster.masterOf(KEYS.epoch).port !== master.port } catch { return false } }, 15_000)
  await cluster.waitHealthy()
  for (const job of jobs) t.match(await pollJob(a, job.job_id, (j) => ['completed', 'failed'].includes(j.status), 60_000), { status: 'completed' })
})

t.test('REDIS_SHARDS=6 on the cluster: keys on every master, jobs complete through a failover of one of them, lists walk every shard', async (t) => {
  const config = { REDIS_URL: cluster.url, REDIS_CLUSTER: true, REDIS_SHARDS: 6, REDIS_KEY_PREFIX: 'sharded:{0}:', ...FAST, RUNNER_CONCURRENCY: 6 }
  const a = await startApp(t, config, { engine: new PacedEngine(30) })
  const b = await startApp(t, config, { engine: new PacedEngine(30) })
  await waitFor('both on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  t.match(json(await a.inject({ method: 'GET', url: '/health' })), { status: 'ok', redis: { topology: { kind: 'cluster', shards: 6 } } })
  const ids: string[] = []
  for (let i = 0; i < 30; i++) ids.push((await createJob(i % 2 === 0 ? a : b, { query: `shard job ${i}: what is a hash slot?`, depth: 'quick' })).job_id)
  const masters = cluster.masters().map((m) => m.port)
  const before = cluster.dbsizes('sharded:*')
  for (const port of masters) t.ok((before[port] ?? 0) > 0, `master ${port} holds keys of this deployment (${JSON.stringify(before)})`)
  await cluster.failover(cluster.masterOf(new RedisKeys(shardPrefix('sharded:{0}:', 2)).epoch))
  for (const id of ids) t.match(await pollJob(b, id, (j) => ['completed', 'failed'].includes(j.status), 30_000), { status: 'completed' })
  const seen = await listAllJobIds(a, 7)
  t.same([...seen].sort(), [...ids].sort(), 'every job listed once across the 6 shards')
  t.match(json(await a.inject({ method: 'GET', url: '/v1/stats' })), { counts: { completed: 30 } })
  // The job scripts ran as Redis Functions on every master (each shard's store loaded them where
  // its keys live), and replication gave them to the replicas, the promoted one included (the
  // master an earlier test killed is left out).
  for (const node of cluster.nodes().filter((n) => !n.failed && cluster.server(n.port).running)) {
    const client = await cluster.server(node.port).client()
    const libraries = await client.sendCommand(['FUNCTION', 'LIST', 'LIBRARYNAME', 'deep_research_*']) as unknown[]
    await client.close()
    t.equal(libraries.length, 1, `${node.role} ${node.port} has the function library`)
  }
})

t.test('the write counter on a Cluster: replies on 6 shards, polls and writes interleaved, never look like Redis going back; a shard whose counter did go back is told by its next reply', async (t) => {
  const client = createRedisClient({ url: cluster.url, rejectUnauthorized: true, cluster: true, homeKey: 'counter:{0}:epoch' })
  connectInBackground(client)
  await waitFor('cluster ready', () => client.isReady)
  t.teardown(() => client.destroy())
  const store = new ShardedRedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 2000, shards: 6, shardedNotices: true, keys: new RedisKeys('counter:{0}:') })
  const told: WentBack[] = []
  store.onWentBack((wentBack) => told.push(wentBack))
  await store.epoch('first')

  // A poll's MGET takes more steps inside node-redis's Cluster client than a script does, so
  // its reply can reach us after the reply of a write Redis ran later.
  const jobs = await Promise.all(Array.from({ length: 60 }, async (_v, i) => {
    const job = newJob({ query: `counter job ${i}`, depth: 'quick' })
    t.ok((await store.put(job, 0, { enqueue: 'tail' })).ok)
    return job
  }))
  // Pollers and writers each at their own pace, as clients and runners are.
  let writes = 0
  const poller = async (): Promise<void> => {
    for (let i = 0; i < 400; i++) await store.read((jobs[(i * 7) % jobs.length] as StoredJob).job_id)
  }
  const writer = async (job: StoredJob): Promise<void> => {
    for (let round = 1; round <= 20; round++) {
      if ((await store.put({ ...job, progress: round }, round)).ok) writes++
    }
  }
  await Promise.all([...Array.from({ length: 8 }, poller), ...jobs.map(writer)])
  t.equal(writes, jobs.length * 20, 'every write landed')
  t.same(told, [], 'no false alarm')

  // A restart of one shard's master from an older snapshot, as the store sees it.
  const shard = 3
  const keys = new RedisKeys(shardPrefix('counter:{0}:', shard))
  const admin = await cluster.server(cluster.masterOf(keys.seq).port).client()
  t.teardown(() => admin.close())
  const seen = (store.shards[shard] as RedisJobStore).highWater
  await admin.set(keys.seq, '1')
  const onShard = jobs.find((job) => shardOf(job.job_id, 6) === shard)
  t.ok(onShard !== undefined)
  await store.read(onShard?.job_id as string)
  t.same(told, [{ seen, found: 1 }], 'told by the first reply below the mark')
})
