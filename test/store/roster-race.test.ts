// A read of a job no store holds answers a certain 404 only when every replica accounts for its
// id. What the roster says must be no newer than what the read found: CI saw a healthy replica
// answer 404 for a job another replica had just handed over (test/faults/replicas.test.ts). Its
// read found nothing, then a heartbeat reply processed before the answer said the other replica
// held nothing any more: by then because the job was in Redis, which the read had not seen.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

const GRACE_MS = 300_000

async function redisStore (t: Test, server: RedisServer): Promise<RedisJobStore> {
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  connectInBackground(client)
  t.teardown(() => client.destroy())
  await waitFor('Redis connected', () => client.isReady)
  return new RedisJobStore(client, { ttlSeconds: 600, timeoutMs: 1000 })
}

t.test('a read that found no job, answered after a newer heartbeat: not a certain absence, because the job may have reached Redis after the read', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const redisA = await redisStore(t, server)
  const redisB = await redisStore(t, server)
  const store = new FallbackJobStore({ memory: new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100 }), redis: redisA, breakerMs: 100, visibilityGraceMs: GRACE_MS, roster: { replica: 'a', everyMs: 50 } })
  t.teardown(() => store.close())
  await waitFor('the store on Redis', () => store.mode === 'redis')

  // Replica b accepted a job while cut off, and holds it alone; it says so every 50 ms.
  const job = newJob({ query: 'accepted while cut off', depth: 'quick' })
  const mistyped = newJob({ query: 'never created', depth: 'quick' }).job_id
  const b = { held: 1 }
  await redisB.heartbeat('b', b.held, Date.now(), GRACE_MS, 0)
  // A heartbeat still on its way when the test's clients are destroyed fails, harmlessly.
  const beats = setInterval(() => { redisB.heartbeat('b', b.held, Date.now(), GRACE_MS, 0).catch(() => {}) }, 50)
  t.teardown(() => clearInterval(beats))
  // Past the clock slack the roster allows for, so that b's next heartbeat counts as after the id.
  await sleep(1200)
  t.same(await store.lookup(job.job_id), { job: null, absenceConfirmed: false }, 'while b holds a job, no absence is certain')

  // A's read finds nothing; before its answer is given, b hands the job over and says it holds
  // nothing, and a's roster hears it.
  const read = redisA.read.bind(redisA)
  redisA.read = async (id: string) => {
    const found = await read(id)
    if (id === job.job_id) {
      await redisB.put(job, 0)
      b.held = 0
      await sleep(300)
    }
    return found
  }
  const lookup = await store.lookup(job.job_id)
  t.equal(lookup.job, null, 'the read saw no job')
  t.equal(lookup.absenceConfirmed, false, 'and its absence is not certain: the job is in Redis now')
  redisA.read = read
  t.equal((await store.lookup(job.job_id)).job?.job_id, job.job_id, 'the next read finds it')
  // Once both replicas' heartbeats are fresh (a loaded machine may hold one back a moment).
  await waitFor('a certain absence for an id no replica holds (a 404)', async () => (await store.lookup(mistyped)).absenceConfirmed, 5000)
})
