// A Redis claim that also began each job's attempt (one script per job): the runner's holder
// takes the attempt over as begun, and hands it back, uncounted, when it cannot run it.
import t from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { START_STEP, complete } from '../../src/lifecycle.js'
import { JobHolder } from '../../src/runner/job-holder.js'
import { ResearchRunner } from '../../src/runner/runner.js'
import { NoopEngine } from '../../src/research/noop.js'
import type { JobStore, PutOptions, PutResult, StoredJob } from '../../src/store/job-store.js'
import { RedisKeys } from '../../src/store/keys.js'
import { redisJobStore } from '../helpers/redis-store.js'
import { commandCalls, scriptCalls } from '../helpers/commandstats.js'
import { waitFor } from '../helpers/app.js'
import { recordingLogger } from '../helpers/logger.js'
import { StuckEngine } from '../helpers/engines.js'

const KEYS = new RedisKeys()
const { admin, store } = await redisJobStore(t)
const begin = { worker: 'worker-a', maxAttempts: 3, step: START_STEP }
const REPORT = await new NoopEngine(0).run({ query: 'q', depth: 'quick', options: newJob({ query: 'q', depth: 'quick' }).options }, { signal: AbortSignal.timeout(1000), progress: async () => {} })

/** The end of a run that completed: the runner's own transition. */
function completes (holder: JobHolder): (job: StoredJob, now: string) => StoredJob {
  return (job, now) => complete(job, holder.owner, REPORT, now)
}

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
  t.equal(scriptCalls(await admin.info('commandstats')), 0, 'no start write')
  t.equal(await holder.end('completed', completes(holder)), 'written')
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

t.test('the write that ends an attempt claims and begins the worker\'s next job; one that ends nothing, or is refused, claims none', async (t) => {
  const holder = await claimedAndBegun()
  const queued = await store.put(newJob({ query: 'next', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!queued.ok) throw new Error('create refused')
  const claimNext = { leaseMs: 60_000, limit: 1, start: begin }
  const created = await store.put(newJob({ query: 'a create asks for nothing', depth: 'quick' }), 0, { claimNext })
  t.match(created, { ok: true, claimed: undefined }, 'a write that ends no attempt claims nothing')
  const refused = await store.put({ ...holder.job, status: 'completed' }, holder.job.version, { fence: 'r999', claimNext })
  t.match(refused, { ok: false, reason: 'fenced' })
  t.same(await admin.zRange(KEYS.queue, 0, -1), [queued.job.job_id], 'a refused end claims nothing')
  await admin.configResetStat()
  t.equal(await holder.end('completed', completes(holder), undefined, claimNext), 'written')
  t.equal(scriptCalls(await admin.info('commandstats')), 1, 'one script')
  t.same(holder.handedOn.claims.map((c) => [c.job.job_id, c.job.status, c.job.attempts, c.started]), [[queued.job.job_id, 'processing', 1, true]])
  t.equal(await admin.zCard(KEYS.queue), 0)
  t.ok(await admin.zScore(KEYS.leases, queued.job.job_id), 'leased')
})

async function queue (count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const created = await store.put(newJob({ query: `job ${i}`, depth: 'quick' }), 0, { enqueue: 'tail' })
    if (!created.ok) throw new Error('create refused')
    ids.push(created.job.job_id)
  }
  return ids
}

const completed = async (ids: string[]): Promise<number> => (await admin.mGet(ids.map((id) => KEYS.job(id)))).filter((json) => json !== null && JSON.parse(json).status === 'completed').length

t.test('a busy runner pays one script per job: each job\'s final write claims and begins the next', async (t) => {
  const ids = await queue(40)
  await admin.configResetStat()
  const runner = new ResearchRunner({ store, engine: new NoopEngine(0), logger: recordingLogger(), concurrency: 1, workerId: 'w-1', pollIntervalMs: 10_000 })
  runner.start()
  t.teardown(() => runner.stop(1000))
  await waitFor('every job completed', async () => await completed(ids) === ids.length)
  const scripts = scriptCalls(await admin.info('commandstats'))
  t.ok(scripts <= ids.length + 3, `${scripts} scripts for ${ids.length} jobs (with a claim, a start write and a final write each: ${ids.length * 3})`)
  const first = JSON.parse(await admin.get(KEYS.job(ids[1] as string)) as string)
  t.match(first.attempt_history, [{ attempt: 1, worker: 'w-1', outcome: 'completed' }], 'each run as one attempt')
})

t.test('a claim that begins its job keeps its token in the record alone: renewals and step saves check it there, and a stale token is refused', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  t.notOk(await admin.hExists(KEYS.fences, id), 'no entry in the fences hash')
  t.equal(await store.renewLease(id, holder.fence, 60_000), 'renewed')
  t.equal(await store.renewLease(id, 'r999', 60_000), 'lost', 'another token renews nothing')
  t.ok(await store.saveStep(id, holder.fence, 'plan', '{}'))
  t.notOk(await store.saveStep(id, 'r999', 'plan', '{}'), 'nor saves a step')
  t.match(await store.put({ ...holder.job, progress: 50 }, holder.job.version, { fence: 'r999' }), { ok: false, reason: 'fenced' }, 'nor writes the record')
  t.equal(await holder.end('completed', completes(holder)), 'written')
  t.equal(await store.renewLease(id, holder.fence, 60_000), 'lost', 'the claim ends with the run')
  t.equal(await admin.hLen(KEYS.fences), 0)
  t.equal(await admin.zCard(KEYS.leases), 0)
})

t.test('a claim that does not begin its job keeps its token in the fences hash until the start write moves it into the record', async (t) => {
  const created = await store.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create refused')
  const [claim] = await store.claim(60_000, 1)
  if (claim === undefined) throw new Error('nothing claimed')
  const id = claim.job.job_id
  t.equal(await admin.hGet(KEYS.fences, id), claim.fence, 'a pending record carries no token: the hash holds it')
  t.equal(await store.renewLease(id, claim.fence, 60_000), 'renewed')
  t.equal(await store.renewLease(id, 'r999', 60_000), 'lost')
  const holder = new JobHolder(store, claim, 'worker-a', 60_000, performance.now())
  t.equal(await holder.start(3), 'started')
  t.notOk(await admin.hExists(KEYS.fences, id), 'the start write moved the token into the record')
  t.match(JSON.parse(await admin.get(KEYS.job(id)) as string), { status: 'processing', fence: claim.fence })
  t.equal(await store.renewLease(id, claim.fence, 60_000), 'renewed', 'and renewals find it there')
  t.equal(await store.renewLease(id, 'r999', 60_000), 'lost')
  t.equal(await holder.end('completed', completes(holder)), 'written')
  t.equal(await admin.hLen(KEYS.fences), 0)
})

t.test('a takeover of a begun claim clears an entry an older version kept beside the record\'s token', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  await admin.hSet(KEYS.fences, id, holder.fence)
  await admin.zAdd(KEYS.leases, { score: 1, value: id })
  const taken = await store.put({ ...holder.job, status: 'pending', worker: null }, holder.job.version, { takeover: true, enqueue: 'head' })
  t.ok(taken.ok, 'taken over')
  t.equal(await admin.hLen(KEYS.fences), 0)
  t.equal(await store.renewLease(id, holder.fence, 60_000), 'lost', 'the old claim renews nothing')
})

t.test('an expired lease of a job Redis still holds running is left to a takeover: dropping it would free the claim its record carries', async (t) => {
  const holder = await claimedAndBegun()
  const id = holder.job.job_id
  await admin.zAdd(KEYS.leases, { score: 1, value: id })
  await store.dropLease(id)
  t.equal(await admin.zScore(KEYS.leases, id), 1, 'the lease stays')
  t.same(await store.expiredLeases(10), [id], 'for the reaper to take over')
})

t.test('a claim not begun and handed back, or cancelled, leaves nothing in the fences hash', async (t) => {
  const created = await store.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create refused')
  const [claim] = await store.claim(60_000, 1)
  if (claim === undefined) throw new Error('nothing claimed')
  t.ok((await store.put({ ...claim.job, status: 'cancelled', completed_at: new Date().toISOString() }, claim.job.version)).ok, 'cancelled')
  t.equal(await admin.hLen(KEYS.fences), 0)
  t.equal(await admin.zCard(KEYS.leases), 0)
})

t.test('a job costs at most 35 Redis commands from create to completed on a busy runner, a create 13 (the Fastify + BullMQ peer of the bench: 35 a job)', async (t) => {
  await admin.configResetStat()
  const ids = await queue(40)
  const creates = commandCalls(await admin.info('commandstats'))
  const runner = new ResearchRunner({ store, engine: new NoopEngine(0), logger: recordingLogger(), concurrency: 1, workerId: 'w-1', pollIntervalMs: 10_000 })
  runner.start()
  t.teardown(() => runner.stop(1000))
  await waitFor('every job completed', async () => await completed(ids) === ids.length)
  const calls = commandCalls(await admin.info('commandstats'))
  // The test's own CONFIG RESETSTAT and INFO are not the job's.
  const counted = (counts: Map<string, number>): Array<[string, number]> => [...counts].filter(([name]) => !/^(config|info)/.test(name))
  const total = (counts: Map<string, number>): number => counted(counts).reduce((sum, [, n]) => sum + n, 0)
  const perJob = total(calls) / ids.length
  const describe = (counts: Map<string, number>): string => counted(counts).map(([name, n]) => `${name}:${(n / ids.length).toFixed(2)}`).join(' ')
  t.comment(`per create: ${describe(creates)}`)
  t.comment(`per job: ${describe(calls)}`)
  t.ok(total(creates) / ids.length <= 13.1, `${(total(creates) / ids.length).toFixed(2)} commands per create, the script's call included`)
  t.ok(perJob <= 35, `${perJob.toFixed(2)} commands per job`)
  t.equal(await admin.hLen(KEYS.fences), 0, 'no claim token left behind')
})

t.test('a job claimed by a final write while the runner stops is handed straight back, its attempt not counted', async (t) => {
  const [first, second] = await queue(2) as [string, string]
  // The runner stops while the final write of the first job (which claims the second) is on its way.
  const put = async (job: StoredJob, expected: number, options?: PutOptions): Promise<PutResult> => {
    if (options?.claimNext !== undefined) void runner.stop(2000)
    return await store.put(job, expected, options)
  }
  const stopping = new Proxy(store, {
    get: (target, name) => name === 'put' ? put : (Reflect.get(target, name) as (...args: unknown[]) => unknown).bind(target)
  }) as JobStore
  const runner = new ResearchRunner({ store: stopping, engine: new NoopEngine(0), logger: recordingLogger(), concurrency: 1, workerId: 'w-1', pollIntervalMs: 10_000 })
  runner.start()
  t.teardown(() => runner.stop(1000))
  await waitFor('the first job completed', async () => await completed([first]) === 1)
  await waitFor('the second handed back', async () => JSON.parse(await admin.get(KEYS.job(second)) as string).status === 'pending')
  t.match(JSON.parse(await admin.get(KEYS.job(second)) as string), { status: 'pending', attempts: 0, attempt_history: [{ attempt: 1, outcome: 'handed_back' }] })
  t.same(await admin.zRange(KEYS.queue, 0, -1), [second], 'first in line again')
  t.equal(await admin.zCard(KEYS.leases), 0)
})

t.test('due retries: a claim of none only moves them into the queue; a final write\'s claim leaves them alone', async (t) => {
  const holder = await claimedAndBegun()
  const retry = await store.put(newJob({ query: 'retry', depth: 'quick' }), 0, { enqueue: { retryInMs: 0 } })
  if (!retry.ok) throw new Error('create refused')
  await admin.configResetStat()
  await holder.end('completed', completes(holder), undefined, { leaseMs: 60_000, limit: 1, start: begin })
  t.same(holder.handedOn.claims, [], 'nothing queued to hand on')
  t.notMatch(await admin.info('commandstats'), /cmdstat_zrangebyscore/, 'the delayed set is not read')
  t.same(await admin.zRange(KEYS.delayed, 0, -1), [retry.job.job_id])
  t.same(await store.claim(60_000, 0), [], 'a claim of none claims none')
  t.same(await admin.zRange(KEYS.queue, 0, -1), [retry.job.job_id], 'and moves the due retry into the queue')
  t.equal(await admin.zCard(KEYS.delayed), 0)
})

t.test('a busy runner moves retries that fall due into the queue while its slots stay full', async (t) => {
  const [slow] = await queue(1) as [string]
  const runner = new ResearchRunner({ store, engine: new StuckEngine(), logger: recordingLogger(), concurrency: 1, workerId: 'w-1', pollIntervalMs: 20 })
  runner.start()
  t.teardown(() => runner.stop(1000))
  await waitFor('the slow job running', async () => JSON.parse(await admin.get(KEYS.job(slow)) as string).status === 'processing')
  const retry = await store.put(newJob({ query: 'falls due while the runner is busy', depth: 'quick' }), 0, { enqueue: { retryInMs: 50 } })
  if (!retry.ok) throw new Error('create refused')
  await waitFor('the due retry queued', async () => (await admin.zRange(KEYS.queue, 0, -1)).includes(retry.job.job_id), 3000)
  t.equal(JSON.parse(await admin.get(KEYS.job(slow)) as string).status, 'processing', 'while the only slot is still taken')
})
