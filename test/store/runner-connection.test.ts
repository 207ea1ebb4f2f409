// The runner's connections (RedisJobStoreOptions.runnerClients): the runner's claims and the
// writes made under a claim go over connections of their own, in turn, while they are ready, and
// over the main connection while none is. Which connection sent what is read from Redis's MONITOR
// stream, which names the client address of every command.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { newJob } from '../../src/jobs/records.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { ShardedRedisJobStore } from '../../src/store/sharded.js'
import { type RedisClient, connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/app.js'
import { RedisTimeoutError } from '../../src/store/silence-deadline.js'

const server = await RedisServer.start()
t.teardown(() => server.stop())

async function connected (t: Test, url = server.url): Promise<{ client: RedisClient, address: string }> {
  const client = createRedisClient({ url, rejectUnauthorized: true, maxReconnectDelayMs: 50 })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  const info = String(await client.sendCommand(['CLIENT', 'INFO']))
  return { client, address: /\baddr=(\S+)/.exec(info)?.[1] as string }
}

/** Every command Redis runs while `work` runs, as [client address, command, first argument]. */
async function monitored (work: () => Promise<void>): Promise<Array<[string, string, string]>> {
  const monitor = await server.client()
  const lines: string[] = []
  await monitor.monitor((line: string) => lines.push(line))
  try {
    await work()
    // A marker sent last: every command before it has been seen once the marker is.
    const marker = await server.client()
    await marker.sendCommand(['ECHO', 'monitor-marker'])
    await marker.close()
    await waitFor('the marker', () => lines.some((line) => line.includes('monitor-marker')))
  } finally {
    await monitor.close().catch(() => monitor.destroy())
  }
  return lines.map((line) => /\[\d+ (\S+)\] "(\w+)"(?: "([^"]*)")?/.exec(line)).filter((m) => m !== null).map((m) => [m[1] as string, (m[2] as string).toUpperCase(), m[3] ?? ''])
}

const START = { worker: 'w', maxAttempts: 3, step: 'Starting research' }
/** A script's call: FCALL (a Redis Function) or EVALSHA (not the EVAL that follows a NOSCRIPT). */
const isScript = (command: string): boolean => command === 'FCALL' || command === 'EVALSHA'

t.test('the runner\'s claims, progress writes, lease renewals and writes under a claim go over its connection; creates and reads over the main one', async (t) => {
  const main = await connected(t)
  const runner = await connected(t)
  const store = new RedisJobStore(main.client, { ttlSeconds: 3600, timeoutMs: 1000, runnerClients: [runner.client] })
  // The functions loaded first (a claim of none): a call that finds them missing is sent again.
  await store.claim(60_000, 0, START)
  let created: StoredJob | undefined
  let done: StoredJob | undefined
  const commands = await monitored(async () => {
    const put = await store.put(newJob({ query: 'which connection carries what', depth: 'quick' }), 0, { enqueue: 'tail' })
    created = put.ok ? put.job : undefined
    const [claim] = await store.claim(60_000, 1, START)
    if (claim === undefined) throw new Error('nothing claimed')
    t.equal(await store.renewLease(claim.job.job_id, claim.fence, 60_000), 'renewed')
    const patched = await store.patchProgress(claim.job.job_id, claim.fence, claim.job.version, { progress: 40, step: 'Reading', now: Date.now() })
    t.equal(patched.outcome, 'written')
    const version = patched.outcome === 'written' ? patched.version : 0
    const final = await store.put({ ...claim.job, version, status: 'completed', progress: 100, current_step: 'Completed' }, version, { fence: claim.fence })
    t.ok(final.ok, 'the final write under the claim landed')
    done = (await store.read(claim.job.job_id)).job ?? undefined
  })
  t.equal(created?.status, 'pending')
  t.equal(done?.status, 'completed', 'the job ran to the end, its writes spread over both connections')
  const scripts = commands.filter(([, command]) => isScript(command))
  const byAddress = (address: string): number => scripts.filter(([from]) => from === address).length
  t.equal(scripts.length, 5, 'five scripts: the create, the claim, the renewal, the progress write and the final write')
  t.equal(byAddress(main.address), 1, 'the create over the main connection')
  t.equal(byAddress(runner.address), 4, 'the claim, the renewal, the progress write and the final write over the runner\'s')
  t.same(commands.filter(([, command]) => command === 'MGET').map(([from]) => from), [main.address], 'the read over the main connection')
})

/** Queues `count` jobs, then claims them one by one: which connection carried each claim. */
async function claimedOver (t: Test, store: RedisJobStore, count: number): Promise<string[]> {
  for (let i = 0; i < count; i++) await store.put(newJob({ query: `job ${i}`, depth: 'quick' }), 0, { enqueue: 'tail' })
  const commands = await monitored(async () => {
    for (let i = 0; i < count; i++) t.equal((await store.claim(60_000, 1, START)).length, 1)
  })
  return commands.filter(([, command]) => isScript(command) || command === 'EVAL').map(([from]) => from)
}

t.test('with two runner connections, the runner\'s calls take them in turn; while one is down, the other carries them all', async (t) => {
  const main = await connected(t)
  const first = await connected(t)
  const second = await connected(t)
  const store = new RedisJobStore(main.client, { ttlSeconds: 3600, timeoutMs: 1000, runnerClients: [first.client, second.client] })
  // Redis holds the functions first: a call that finds them missing is sent again, a call of its own.
  await store.claim(60_000, 1, START)
  const spread = await claimedOver(t, store, 4)
  t.same(new Set(spread), new Set([first.address, second.address]), 'both runner connections used, the main one not')
  t.same(spread, [spread[0], spread[1], spread[0], spread[1]], 'in turn')
  second.client.destroy()
  t.same(await claimedOver(t, store, 3), [first.address, first.address, first.address], 'the one left carries them all')
})

t.test('a call that timed out on one of two runner connections: the other carries the runner\'s calls, not the main one', async (t) => {
  const proxy = await TcpProxy.start(server.port)
  t.teardown(() => proxy.close())
  const main = await connected(t)
  const stalled = await connected(t, proxy.url)
  const healthy = await connected(t)
  const store = new RedisJobStore(main.client, { ttlSeconds: 3600, timeoutMs: 200, runnerClients: [stalled.client, healthy.client], runnerProbeMs: 60_000 })
  await store.claim(60_000, 1, START)
  proxy.stall()
  // The two are taken in turn: one of the next two calls goes over the stalled connection and times out.
  let timedOut = false
  for (let i = 0; i < 2 && !timedOut; i++) timedOut = await store.claim(60_000, 1, START).then(() => false, (err: unknown) => err instanceof RedisTimeoutError)
  t.ok(timedOut, 'a claim on the stalled connection timed out')
  t.same(await claimedOver(t, store, 3), [healthy.address, healthy.address, healthy.address], 'then every claim over the healthy one')
})

t.test('with REDIS_SHARDS above 1, the shards share the runner\'s connections: one that timed out on one shard is passed over by the others', async (t) => {
  const proxy = await TcpProxy.start(server.port)
  t.teardown(() => proxy.close())
  const main = await connected(t)
  const stalled = await connected(t, proxy.url)
  const healthy = await connected(t)
  const sharded = new ShardedRedisJobStore(main.client, { ttlSeconds: 3600, timeoutMs: 200, runnerClients: [stalled.client, healthy.client], runnerProbeMs: 60_000, shards: 2 })
  const [first, second] = sharded.shards as [RedisJobStore, RedisJobStore]
  // The claim script is cached first: a NOSCRIPT's retry would be a call of its own.
  await first.claim(60_000, 1, START)
  proxy.stall()
  const timeouts = async (shard: RedisJobStore, claims: number): Promise<number> => {
    let count = 0
    for (let i = 0; i < claims; i++) if (await shard.claim(60_000, 1, START).then(() => false, (err: unknown) => err instanceof RedisTimeoutError)) count++
    return count
  }
  t.equal(await timeouts(first, 2), 1, 'the first shard\'s claims, taking the two in turn, met the stalled one once')
  t.equal(await timeouts(second, 4), 0, 'the second shard\'s claims pass it over')
  t.equal(await timeouts(first, 4), 0, 'and so do the first\'s')
})

t.test('while the runner\'s connection is not ready, its calls go over the main connection, and the work goes on', async (t) => {
  const main = await connected(t)
  const runner = await connected(t)
  const store = new RedisJobStore(main.client, { ttlSeconds: 3600, timeoutMs: 1000, runnerClients: [runner.client] })
  runner.client.destroy()
  t.notOk(runner.client.isReady)
  let done: StoredJob | null = null
  const commands = await monitored(async () => {
    await store.put(newJob({ query: 'one connection left', depth: 'quick' }), 0, { enqueue: 'tail' })
    const [claim] = await store.claim(60_000, 1, START)
    if (claim === undefined) throw new Error('nothing claimed')
    const patched = await store.patchProgress(claim.job.job_id, claim.fence, claim.job.version, { progress: 40, step: 'Reading', now: Date.now() })
    const version = patched.outcome === 'written' ? patched.version : 0
    t.ok((await store.put({ ...claim.job, version, status: 'completed', progress: 100, current_step: 'Completed' }, version, { fence: claim.fence })).ok)
    done = (await store.read(claim.job.job_id)).job
  })
  t.equal((done as StoredJob | null)?.status, 'completed')
  const scripts = commands.filter(([, command]) => isScript(command))
  t.equal(scripts.length, 4)
  t.same([...new Set(scripts.map(([from]) => from))], [main.address], 'every script over the main connection')
})

t.test('while the runner\'s connection is reconnecting (open, not ready), its calls go over the main connection', async (t) => {
  const proxy = await TcpProxy.start(server.port)
  t.teardown(() => proxy.close())
  const main = await connected(t)
  const runner = await connected(t, proxy.url)
  const store = new RedisJobStore(main.client, { ttlSeconds: 3600, timeoutMs: 1000, runnerClients: [runner.client] })
  // The proxy goes away: the runner's connection drops and its reconnects are refused.
  await proxy.close()
  await waitFor('the runner\'s connection down', () => !runner.client.isReady)
  let status: string | undefined
  const commands = await monitored(async () => {
    await store.put(newJob({ query: 'reconnecting', depth: 'quick' }), 0, { enqueue: 'tail' })
    const [claim] = await store.claim(60_000, 1, START)
    status = claim?.job.status
  })
  t.equal(status, 'processing', 'claimed and begun')
  t.same([...new Set(commands.filter(([, command]) => isScript(command)).map(([from]) => from))], [main.address], 'over the main connection')
})

t.test('a call that timed out on the runner\'s connection (a stalled path it still counts as ready): the runner\'s calls use the main connection until a PING on the runner\'s is answered', async (t) => {
  const proxy = await TcpProxy.start(server.port)
  t.teardown(() => proxy.close())
  const main = await connected(t)
  const runner = await connected(t, proxy.url)
  const store = new RedisJobStore(main.client, { ttlSeconds: 3600, timeoutMs: 200, runnerClients: [runner.client], runnerProbeMs: 300 })
  await store.put(newJob({ query: 'stalled path', depth: 'quick' }), 0, { enqueue: 'tail' })
  proxy.stall()
  t.ok(runner.client.isReady, 'a stalled path still looks ready')
  await t.rejects(store.claim(60_000, 1, START), RedisTimeoutError, 'the claim on the stalled connection times out')
  const [claim] = await store.claim(60_000, 1, START)
  t.equal(claim?.job.status, 'processing', 'the next claim goes over the main connection and takes the job')
  await sleep(400)
  t.same(await store.claim(60_000, 1, START), [], 'past the probe interval a claim still goes over the main one, and sends a probe')
  // Nothing else is said meanwhile, so the probe on the stalled path times out (within 8 deadlines, however busy this process is).
  await sleep(1800)
  proxy.resume()
  // The next probe, a probe interval on, is answered.
  await sleep(400)
  const commands = await monitored(async () => {
    // Claims until one goes over the runner's connection again (a few at most; 3 s).
    for (let i = 0; i < 30; i++) {
      await store.claim(60_000, 1, START)
      await sleep(100)
    }
  })
  const claims = commands.filter(([, command]) => isScript(command)).map(([from]) => from)
  const back = claims.indexOf(runner.address)
  t.ok(back > 0, `the runner's calls went back to its connection, after ${back} over the main one`)
  t.same(claims.slice(0, back), Array(back).fill(main.address), 'before, over the main one')
  const ping = commands.findIndex(([from, command]) => command === 'PING' && from === runner.address)
  t.ok(ping >= 0 && ping < commands.findIndex(([from, command]) => isScript(command) && from === runner.address), 'a PING on the runner\'s connection was answered first')
})
