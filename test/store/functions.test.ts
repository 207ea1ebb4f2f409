// The job scripts a job calls most (put, claim, progress) run as Redis Functions, loaded once per
// Redis (src/store/lua-functions.ts) rather than sent and defined whole on every call (issue #29:
// that definition was a sixth to a fifth of a job's Redis instructions). Counted with INFO
// commandstats on a Redis of the test's own; the ways a Redis can lack them are each driven.
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { newJob } from '../../src/jobs/records.js'
import { START_STEP } from '../../src/lifecycle.js'
import { ErrorReply } from 'redis'
import { type FunctionLibrary, StoredFunctions, isFunctionMissing } from '../../src/store/lua-functions.js'
import { RedisTimeoutError } from '../../src/store/silence-deadline.js'
import { RedisJobStore, type RedisJobStoreOptions, functionLibraries } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { waitFor } from '../helpers/app.js'
import { commandCalls } from '../helpers/commandstats.js'
import { RedisServer } from '../helpers/redis-server.js'

type Admin = Awaited<ReturnType<RedisServer['client']>>
/** put, put_admit, progress, claim. */
const FUNCTION_COUNT = 4

async function setUp (t: Test, url?: (server: RedisServer, admin: Admin) => Promise<string>, options: Partial<RedisJobStoreOptions> = {}): Promise<{ server: RedisServer, admin: Admin, store: RedisJobStore, failed: string[] }> {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const admin = await server.client()
  t.teardown(() => admin.close())
  const client = createRedisClient({ url: url === undefined ? server.url : await url(server, admin), rejectUnauthorized: true })
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  const failed: string[] = []
  const store = new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 2000, onCommand: (command, _ms, ok) => { if (!ok) failed.push(command) }, ...options })
  await admin.sendCommand(['CONFIG', 'RESETSTAT'])
  return { server, admin, store, failed }
}

/** A job's life through the store: create, claim (its attempt begun), a progress write, the final write. */
async function runJob (store: RedisJobStore): Promise<void> {
  const created = await store.put(newJob({ query: 'functions', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create refused')
  const [claim] = await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: START_STEP })
  if (claim === undefined) throw new Error('nothing claimed')
  const progress = await store.patchProgress(claim.job.job_id, claim.fence, claim.job.version, { progress: 40, step: 'Reading', now: Date.now() })
  if (progress.outcome !== 'written') throw new Error(`progress ${progress.outcome}`)
  const final = await store.put({ ...claim.job, version: progress.version, status: 'completed', progress: 100 }, progress.version, { fence: claim.fence })
  if (!final.ok) throw new Error(`final write refused: ${JSON.stringify(final)}`)
}

/** A user allowed everything but `rule` (an ACL rule such as -fcall): the URL the store connects with. */
function userWithout (rule: string): (server: RedisServer, admin: Admin) => Promise<string> {
  return async (server, admin) => {
    await admin.sendCommand(['ACL', 'SETUSER', 'narrow', 'on', '>secret', '~*', '&*', '+@all', rule])
    return `redis://narrow:secret@127.0.0.1:${server.port}`
  }
}

const calls = async (admin: Admin): Promise<Map<string, number>> => commandCalls(await admin.info('commandstats'))
/** Calls of `command` Redis refused before running it (ACL, OOM). */
const rejected = async (admin: Admin, command: string): Promise<number> => Number(new RegExp(`^cmdstat_${command}:.*rejected_calls=(\\d+)`, 'm').exec(await admin.info('commandstats'))?.[1] ?? 0)

t.test('a job\'s create, claim, progress write and final write are four FCALLs of a library loaded once, no script sent whole', async (t) => {
  const { admin, store, failed } = await setUp(t)
  await runJob(store)
  await runJob(store)
  const stats = await calls(admin)
  t.equal(stats.get('fcall'), 1 + 8, 'one FCALL found the library missing, then four a job')
  t.equal(stats.get('function|load'), 1, 'loaded once')
  t.equal(stats.get('evalsha') ?? 0, 0, 'no EVALSHA')
  t.equal(stats.get('eval') ?? 0, 0, 'no EVAL')
  t.same(failed, [], 'the missing library is not reported as a failed call')
  const libraries = await admin.sendCommand(['FUNCTION', 'LIST', 'LIBRARYNAME', 'deep_research_*']) as unknown[]
  t.equal(libraries.length, 1, 'one library of this service\'s')
})

t.test('a Redis that lost its functions (flushed, or restarted without them) gets them loaded again at the next call, which succeeds', async (t) => {
  const { admin, store, failed } = await setUp(t)
  await runJob(store)
  await admin.sendCommand(['FUNCTION', 'FLUSH'])
  await runJob(store)
  const stats = await calls(admin)
  t.equal(stats.get('function|load'), 2, 'loaded again')
  t.equal(stats.get('fcall'), 2 + 8, 'a missing library found twice, then four a job')
  t.equal(stats.get('evalsha') ?? 0, 0, 'no script sent whole')
  t.same(failed, [])
})

t.test('calls that find the library missing at once share one load', async (t) => {
  const { admin, store } = await setUp(t)
  await Promise.all(Array.from({ length: 8 }, async () => await runJob(store)))
  t.equal((await calls(admin)).get('function|load'), 1)
})

t.test('a user whose ACL forbids FCALL: every script is sent whole, and works', async (t) => {
  const { admin, store } = await setUp(t, userWithout('-fcall'))
  await runJob(store)
  await runJob(store)
  const stats = await calls(admin)
  t.equal(stats.get('fcall') ?? 0, 0, 'no FCALL ran')
  t.equal(stats.get('function|load') ?? 0, 0)
  t.ok((stats.get('evalsha') ?? 0) >= 8, 'sent whole')
  t.equal(await rejected(admin, 'fcall'), 1, 'refused once, then not asked again')
})

t.test('a user allowed FCALL but not FUNCTION LOAD: every script is sent whole after the one refusal, and works', async (t) => {
  const { admin, store } = await setUp(t, userWithout('-function'))
  await runJob(store)
  await runJob(store)
  const stats = await calls(admin)
  t.equal(stats.get('fcall'), 1, 'the one FCALL that found the library missing')
  t.ok((stats.get('evalsha') ?? 0) >= 8, 'then sent whole')
})

t.test('a load Redis refuses for now (past maxmemory) sends that call whole, with the refusal\'s own cause, and the next call loads', async (t) => {
  const { admin, store } = await setUp(t, undefined, { admission: { percent: 80, reserveBytes: 1000 } })
  await admin.set('ballast', 'x'.repeat(2 * 1024 * 1024))
  await admin.configSet('maxmemory', '1mb')
  const refused = await store.put(newJob({ query: 'past maxmemory', depth: 'quick' }), 0, { enqueue: 'tail', admit: true })
  t.match(refused, { ok: false, full: true }, 'the admission\'s refusal, as with functions loaded')
  t.equal((await calls(admin)).get('eval'), 1, 'sent whole')
  await admin.del('ballast')
  await admin.configSet('maxmemory', '0')
  await runJob(store)
  const stats = await calls(admin)
  t.equal(await rejected(admin, 'function\\|load'), 1, 'refused')
  t.equal(stats.get('function|load'), 1, 'then loaded')
})

t.test('with functions turned off (RedisJobStoreOptions.functions: false) every script is sent whole', async (t) => {
  const { admin, store } = await setUp(t, undefined, { functions: false })
  await runJob(store)
  const stats = await calls(admin)
  t.equal(stats.get('fcall') ?? 0, 0)
  t.ok((stats.get('evalsha') ?? 0) >= 4)
})

t.test('every local of lib/job.lua that its functions assign is set again by begin_call, which each Redis Function runs first', async (t) => {
  const library = readFileSync(new URL('../../src/store/lua/lib/job.lua', import.meta.url), 'utf8')
  const values = [...library.matchAll(/^local (?!function )([A-Za-z_]\w*)/gm)].map((m) => m[1] as string)
  // Assigned, a field of it set, or a table.insert or remove on it, anywhere in a line.
  const assigned = values.filter((name) => new RegExp(`(?:^|[^.\\w])${name}(?:\\.\\w+|\\[[^\\]]*\\])?\\s*=[^=]|table\\.(?:insert|remove)\\(${name}\\b`).test(library.replace(new RegExp(`^local ${name} = .*$`, 'm'), '')))
  t.same(assigned.sort(), ['SEQ', 'UNSPENT', 'slots'].sort(), 'the per-call state')
  const begin = /^local function begin_call\(\)\n([\s\S]*?)^end$/m.exec(library)?.[1] ?? ''
  t.same([...begin.matchAll(/^\s+(\w+) = /gm)].map((m) => m[1]).sort(), assigned.sort(), 'each set again')
  for (const { library: { text } } of functionLibraries()) {
    t.equal(text.split('\nbegin_call()\n').length - 1, FUNCTION_COUNT, 'run first by every function')
  }
})

t.test('StoredFunctions.recover: a call again that still finds no function, or whose load was not answered, is sent whole; a Redis before 7 turns functions off; any other error reaches the caller', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const admin = await server.client()
  t.teardown(() => admin.close())
  const library = functionLibraries()[0]?.library as FunctionLibrary
  const missing = async (): Promise<unknown> => await admin.sendCommand(['FCALL', 'deep_research_none', '0'])
  const missingError = await missing().catch((err: unknown) => err)
  t.ok(isFunctionMissing(missingError), 'Redis\'s answer to an FCALL of no function')
  const whole = async (): Promise<unknown> => 'sent whole'

  // Loaded, then flushed before the call again (another process's FUNCTION FLUSH in between).
  const flushedMeanwhile = new StoredFunctions(library, true, async () => {
    await admin.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', library.text])
    await admin.sendCommand(['FUNCTION', 'FLUSH'])
  })
  t.equal(await flushedMeanwhile.recover(missingError, undefined, async () => await admin.sendCommand(['FCALL', library.functionName('claim'), '0']), whole), 'sent whole')
  t.ok(flushedMeanwhile.on, 'functions stay on: the next call loads again')

  const loaded = new StoredFunctions(library, true, async () => await admin.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', library.text]))
  // claim without its keys: the script's own error (a key it was not given), not one about functions.
  await t.rejects(loaded.recover(missingError, undefined, async () => await admin.sendCommand(['FCALL', library.functionName('claim'), '0', '{}']), whole), /ERR/, 'a script error on the call again is thrown')

  const unanswered = new StoredFunctions(library, true, async () => { throw new RedisTimeoutError('Redis did not answer FUNCTION LOAD in time') })
  t.equal(await unanswered.recover(missingError, undefined, missing, whole), 'sent whole', 'a load not answered in time: the call is sent whole, and fails or not on its own')
  t.ok(unanswered.on, 'functions stay on')

  // Redis 6's answer to FCALL, which no Redis here gives (they are all 7).
  const redis6 = new StoredFunctions(library, true, async () => { throw new Error('not asked') })
  t.equal(await redis6.recover(new ErrorReply('ERR unknown command `FCALL`, with args beginning with: `deep_research_x_put`, `19`, '), undefined, missing, whole), 'sent whole')
  t.notOk(redis6.on, 'a Redis before 7: scripts sent whole from then on')
  // A user kept from a key is kept from it however the script is sent: not a reason to stop calling functions.
  await t.rejects(loaded.recover(new ErrorReply('NOPERM this user has no permissions to access one of the keys used as arguments'), undefined, missing, whole), /NOPERM/)
  t.ok(loaded.on)
  await t.rejects(loaded.recover(new Error('not a reply'), undefined, missing, whole), /not a reply/, 'an error that is not Redis\'s reply is the caller\'s')
})

t.test('past maxmemory a claim runs as it did sent whole: an idle one answers none, not an error, and a queued job is claimed and begun; a progress write is refused (OOM)', async (t) => {
  const { admin, store } = await setUp(t)
  await runJob(store)
  const created = await store.put(newJob({ query: 'queued before Redis filled up', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create refused')
  const [other] = await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: START_STEP })
  if (other === undefined) throw new Error('nothing claimed')
  const queued = await store.put(newJob({ query: 'queued too', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!queued.ok) throw new Error('create refused')
  await admin.set('ballast', 'x'.repeat(2 * 1024 * 1024))
  await admin.configSet('maxmemory', '1mb')
  t.teardown(async () => { await admin.configSet('maxmemory', '0') })
  const [claim] = await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: START_STEP })
  t.equal(claim?.job.job_id, queued.job.job_id, 'claimed')
  t.equal(claim?.job.status, 'processing', 'and begun')
  t.same(await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: START_STEP }), [], 'an idle claim: none')
  await t.rejects(store.patchProgress(other.job.job_id, other.fence, other.job.version, { progress: 40, step: 'Reading', now: Date.now() }), /^OOM/, 'a progress write is refused, as its INCR was')
})
