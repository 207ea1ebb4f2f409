// A Redis claim that also began each job's attempt (one script per job): the runner's holder
// takes the attempt over as begun, and hands it back, uncounted, when it cannot run it.
import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { JobHolder, START_STEP } from '../../src/runner/job-holder.js'
import { RedisKeys } from '../../src/store/keys.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/app.js'

const KEYS = new RedisKeys()
const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())
const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
connectInBackground(client)
await waitFor('Redis ready', () => client.isReady)
t.teardown(() => client.destroy())
const store = new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 1000 })
const begin = { worker: 'worker-a', maxAttempts: 3, step: START_STEP }

t.beforeEach(async () => { await admin.flushAll() })

async function claimedAndBegun (): Promise<JobHolder> {
  const created = await store.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create refused')
  const [claim] = await store.claim(60_000, 1, begin)
  if (claim?.started !== true) throw new Error('the claim did not begin the attempt')
  return new JobHolder(store, claim, begin.worker, 60_000, performance.now())
}

t.test('a holder of a begun claim runs attempt 1 without a start write, and ends it under the claim', async (t) => {
  const holder = await claimedAndBegun()
  t.equal(holder.attempt, 1, 'the attempt the claim began, not one more')
  await admin.configResetStat()
  t.equal(await holder.start(3), 'started')
  t.notMatch(await admin.info('commandstats'), /cmdstat_evalsha/, 'no start write')
  t.equal(await holder.end('completed', null, (job) => ({ ...job, status: 'completed', progress: 100 })), 'written')
  const stored = JSON.parse(await admin.get(KEYS.job(holder.job.job_id)) as string)
  t.match(stored, { status: 'completed', attempts: 1, worker: null, attempt_history: [{ attempt: 1, worker: 'worker-a', outcome: 'completed' }] })
})

t.test('a begun claim released at shutdown goes back to the head of the queue, pending, its attempt not counted', async (t) => {
  const holder = await claimedAndBegun()
  const other = await store.put(newJob({ query: 'queued behind', depth: 'quick' }), 0, { enqueue: 'tail' })
  t.equal(await holder.release(), 'written')
  const stored = JSON.parse(await admin.get(KEYS.job(holder.job.job_id)) as string)
  t.match(stored, { status: 'pending', attempts: 0, worker: null, attempt_history: [{ attempt: 1, outcome: 'handed_back' }] })
  t.same(await admin.zRange(KEYS.queue, 0, -1), [holder.job.job_id, other.ok ? other.job.job_id : ''], 'first in line')
  t.equal(await admin.zCard(KEYS.leases), 0, 'its lease released')
  const [again] = await store.claim(60_000, 1, begin)
  t.equal(again?.job.attempts, 1, 'claimed again as attempt 1')
})
