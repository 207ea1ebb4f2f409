import t, { type Test } from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { NoopEngine } from '../../src/research/noop.js'
import type { Report, ResearchRequest, RunContext } from '../../src/research/engine.js'
import { ResearchRunner } from '../../src/runner/runner.js'
import { FallbackJobStore } from '../../src/store/fallback.js'
import { MemoryJobStore } from '../../src/store/memory.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { RedisKeys } from '../../src/store/keys.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import type { StoredJob } from '../../src/schemas/job.js'
import { waitFor } from '../helpers/app.js'
import { recordingLogger } from '../helpers/logger.js'
import { RedisServer } from '../helpers/redis-server.js'

/** A replica's store: Redis first, with its own in-process copies. */
async function replicaStore (t: Test, url: string, sent: string[] = []): Promise<FallbackJobStore> {
  const client = createRedisClient({ url, rejectUnauthorized: true })
  connectInBackground(client)
  t.teardown(() => client.destroy())
  await waitFor('Redis ready', () => client.isReady)
  return new FallbackJobStore({
    memory: new MemoryJobStore({ ttlSeconds: 600, maxJobs: 100 }),
    redis: new RedisJobStore(client, { ttlSeconds: 600, timeoutMs: 1000, onCommand: (command) => sent.push(command) }),
    breakerMs: 100
  })
}

class RecordingEngine extends NoopEngine {
  readonly ran: string[] = []
  override async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    this.ran.push(request.query)
    return await super.run(request, context)
  }
}

async function written (result: Promise<{ ok: boolean, job?: StoredJob }>): Promise<StoredJob> {
  const r = await result
  if (!r.ok || r.job === undefined) throw new Error('write refused')
  return r.job
}

t.test('a runner starts a job from the record its claim read in Redis, never from a stale copy of its own', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const sentByA: string[] = []
  const a = await replicaStore(t, server.url, sentByA)
  const b = await replicaStore(t, server.url)

  const cancelled = await written(a.put(newJob({ query: 'cancelled on replica B', depth: 'quick' }), 0, { enqueue: 'tail' }))
  const edited = await written(a.put(newJob({ query: 'edited on replica B', depth: 'quick' }), 0, { enqueue: 'tail' }))
  const untouched = await written(a.put(newJob({ query: 'untouched', depth: 'quick' }), 0, { enqueue: 'tail' }))
  await written(b.put({ ...cancelled, status: 'cancelled', current_step: 'Cancelled', completed_at: new Date().toISOString() }, cancelled.version))
  await written(b.put({ ...edited, current_step: 'Queued (edited on B)' }, edited.version))
  t.equal(a.memory.peek(cancelled.job_id)?.status, 'pending', 'replica A still holds its pending copy of the cancelled job')
  t.equal(a.memory.peek(edited.job_id)?.version, edited.version, 'and an older version of the edited one')

  sentByA.length = 0
  const engine = new RecordingEngine()
  const runner = new ResearchRunner({ store: a, engine, logger: recordingLogger(), pollIntervalMs: 20 })
  runner.start()
  t.teardown(() => runner.stop(1000))
  await waitFor('both queued jobs to complete', async () => (await b.get(edited.job_id))?.status === 'completed' && (await b.get(untouched.job_id))?.status === 'completed')
  await waitFor('the runner to be idle', () => runner.stats().running === 0)

  t.notOk(sentByA.includes('GET') || sentByA.includes('MGET'), `the claim brought each record: no read before starting: ${sentByA.join(' ')}`)
  t.same(engine.ran.sort(), ['edited on replica B', 'untouched'], 'the job cancelled elsewhere never ran')
  t.equal((await b.get(cancelled.job_id))?.status, 'cancelled')
  const done = await b.get(edited.job_id)
  t.equal(done?.attempts, 1)
  t.equal(done?.version, edited.version + 4, 'B\'s edit, then start, progress and completion: nothing of B\'s was overwritten')
  t.equal(await b.queueDepth(), 0)
  const admin = await server.client()
  t.teardown(() => admin.close())
  t.equal(await admin.zCard(new RedisKeys().leases), 0, 'no lease left behind, the cancelled job\'s included')
})
