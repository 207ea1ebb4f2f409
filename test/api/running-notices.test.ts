// Notices of running records (a job's start and its progress, most of its writes) reach only the
// replicas where a reader waits (issue #29: every replica was sent, and parsed, every progress
// write of every other): one with no reader hears of a job's creation and end alone; one with a
// stream open hears each step at once; a long poll there answers at its deadline when nothing
// changed (not when the process began to listen) and at once at a change.
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { ON_CLUSTER, type TestContext, createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine, StuckEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'
import { readEvents } from '../helpers/sse.js'

const redis = await RedisServer.start()
t.teardown(() => redis.stop())
const admin = await redis.client()
t.teardown(() => admin.close())
t.beforeEach(async () => { await admin.flushAll() })

let deployments = 0

/**
 * A replica that runs jobs and one that only serves the API (no runner), on the same Redis (under
 * `npm run test:cluster`, the same prefix on the Cluster, sharded: a channel of each kind per
 * shard); polling only every 10 s.
 */
async function replicas (t: TestContext, engine: PacedEngine | StuckEngine): Promise<{ writer: FastifyInstance, reader: FastifyInstance }> {
  deployments += 1
  const shared = ON_CLUSTER
    ? { REDIS_URL: process.env.TEST_REDIS_CLUSTER_URL as string, REDIS_CLUSTER: true, REDIS_SHARDS: 6, REDIS_KEY_PREFIX: `rn${process.pid}-${deployments}:{0}:` }
    : { REDIS_URL: redis.url }
  const config = { ...shared, SSE_POLL_MS: 10_000, SSE_HEARTBEAT_MS: 60_000 }
  const writer = await startApp(t, config, { engine })
  const reader = await startApp(t, { ...config, ROLE: 'api' as const })
  await waitFor('both subscribed', () => writer.store.notices.live && reader.store.notices.live)
  return { writer, reader }
}

t.test('a replica with no reader waiting hears of the jobs another runs when they are created and when they end, not of each step', async (t) => {
  const engine = new PacedEngine(0)
  const { writer, reader } = await replicas(t, engine)
  const heard: string[] = []
  reader.store.notices.onNotice(({ status }) => heard.push(status))
  let steps = 0
  writer.store.notices.onNotice(({ status }) => { if (status === 'processing') steps++ })
  const jobs = [await createJob(writer, { query: 'What is a lease?', depth: 'quick' }), await createJob(writer, { query: 'How does AOF work?', depth: 'quick' })]
  for (const job of jobs) await pollJob(writer, job.job_id)
  await waitFor('the ends heard', () => heard.filter((status) => status === 'completed').length === jobs.length)
  t.ok(steps >= 2 * jobs.length, `the jobs had their steps (${steps} written)`)
  t.same(heard.filter((status) => status === 'processing'), [], 'no notice of a running record')
  t.same([...new Set(heard)].sort(), ['completed', 'pending'])
})

t.test('a replica where a stream waits hears each step of a job another runs as it happens, and no reader waits there once the stream ended (its unsubscribing, after a linger: notice-subscriber.test.ts)', async (t) => {
  const engine = new PacedEngine(300)
  const { writer, reader } = await replicas(t, engine)
  const job = await createJob(writer, { query: 'What is a lease?', depth: 'quick' })
  const base = await reader.listen({ port: 0, host: '127.0.0.1' })
  const arrived: Array<{ event: string, at: number }> = []
  const read = await readEvents(`${base}/v1/jobs/${job.job_id as string}/events`, { timeoutMs: 30_000, onEvent: (e) => arrived.push({ event: e.event, at: performance.now() }) })
  t.equal(read.events.at(-1)?.event, 'completed', 'the stream ended with the job')
  const progress = arrived.filter((e) => e.event === 'progress')
  t.ok(progress.length >= 3, `${progress.length} progress events`)
  const end = arrived.at(-1)?.at as number
  // Paced 300 ms a step: read only when the end's notice came, they would all arrive with it.
  t.ok(end - (progress[0]?.at as number) >= 500, `the first step arrived ${Math.round(end - (progress[0]?.at as number))} ms before the end`)
  t.equal(reader.store.notices.watching, 0, 'no reader waits once the stream ended')
})

t.test('a long poll on a replica that was listening to no running record waits on through the resync until its deadline', async (t) => {
  const { writer, reader } = await replicas(t, new StuckEngine())
  const job = await createJob(writer, { query: 'long polls', depth: 'quick' })
  await pollJob(writer, job.job_id, (j) => j.status === 'processing' && j.current_step === 'Working')
  const etag = (await reader.inject({ url: `/v1/jobs/${job.job_id as string}` })).headers.etag as string
  const started = performance.now()
  const quiet = await reader.inject({ url: `/v1/jobs/${job.job_id as string}?wait=1`, headers: { 'if-none-match': etag } })
  const quietMs = performance.now() - started
  t.equal(quiet.statusCode, 304, 'nothing changed')
  t.ok(quietMs >= 900, `answered at the deadline, not when it began to listen: ${Math.round(quietMs)} ms`)
  const waiting = reader.inject({ url: `/v1/jobs/${job.job_id as string}?wait=10`, headers: { 'if-none-match': etag } })
  await waitFor('waiting', () => reader.store.notices.watching === 1)
  t.equal((await writer.inject({ method: 'POST', url: `/v1/jobs/${job.job_id as string}/cancel` })).statusCode, 200)
  t.equal(json(await waiting).status, 'cancelled', 'a change answers it at once')
})
