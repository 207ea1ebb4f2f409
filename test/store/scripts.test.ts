// The job scripts' contract: each declares, in a header, exactly the keys it (and the library
// functions it calls) touches, gets only those, and fails loudly on one it did not declare.
import { readFileSync, readdirSync } from 'node:fs'
import t from 'tap'
import { JOB_STATUSES } from '../../src/schemas/job.js'
import { newJob } from '../../src/jobs/records.js'
import { START_STEP } from '../../src/lifecycle.js'
import { RedisKeys, SCRIPT_KEY_NAMES, declaredKeys, luaPrelude } from '../../src/store/keys.js'
import { RedisJobStore } from '../../src/store/redis.js'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

const LUA = new URL('../../src/store/lua/', import.meta.url)
/** Scripts that are not job scripts, given their own keys: a rate window, an idempotency claim, a cache entry and its index, the replicas' roster. */
const STANDALONE = new Set(['rate-window', 'idempotency', 'cache-set', 'heartbeat'])
const scripts = readdirSync(LUA).filter((file) => file.endsWith('.lua')).map((file) => file.slice(0, -4)).filter((name) => !STANDALONE.has(name))

/** The library's functions by name, each with its body. */
const library = new Map<string, string>()
for (const block of readFileSync(new URL('lib/job.lua', LUA), 'utf8').split(/^(?=local function )/m)) {
  const name = /^local function (\w+)\(/.exec(block)?.[1]
  if (name !== undefined) library.set(name, block)
}

/** Every key a piece of Lua touches, following the library functions it calls. */
function keysTouched (source: string, seen = new Set<string>()): Set<string> {
  const keys = new Set([...source.replace(/^--.*$/gm, '').matchAll(/\bK\.(\w+)/g)].map((m) => m[1] as string))
  if (/\b(job_key|log_key)\(/.test(source)) keys.add('job_prefix')
  if (/\bK\['status_' \.\./.test(source)) keys.add('status_*')
  for (const [name, body] of library) {
    if (seen.has(name) || !new RegExp(`\\b${name}\\(`).test(source.replace(/^--.*$/gm, ''))) continue
    seen.add(name)
    for (const key of keysTouched(body, seen)) keys.add(key)
  }
  return keys
}

t.test('every job script declares exactly the keys it and the library functions it calls touch', async (t) => {
  t.ok(scripts.length >= 14, `${scripts.length} job scripts`)
  for (const name of scripts) {
    const source = readFileSync(new URL(`${name}.lua`, LUA), 'utf8')
    const declared = declaredKeys(name, source)
    const touched = keysTouched(source)
    const statusSets = declared.filter((key) => key.startsWith('status_'))
    // status_key(status) reaches the status sets by name: declaring them is the script's call.
    if (touched.delete('status_*')) t.ok(statusSets.length > 0, `${name} reaches status sets and declares some`)
    for (const key of statusSets) if (!touched.has(key)) touched.add(key)
    t.same([...new Set(declared)].sort(), [...touched].sort(), `${name}: declared ${declared.length} keys, touches ${touched.size}`)
  }
})

t.test('a script gets only what it declares: renew three keys, epoch its six, put the most', async (t) => {
  const keys = new RedisKeys('p:{0}:')
  const names = (name: string): string[] => declaredKeys(name, readFileSync(new URL(`${name}.lua`, LUA), 'utf8'))
  t.same(keys.forScript(declaredKeys('renew', readFileSync(new URL('renew.lua', LUA), 'utf8')), 'id-1'), ['p:{0}:jobs:fences', 'p:{0}:jobs:leases', 'p:{0}:job:id-1'])
  t.same(names('epoch'), ['epoch', 'seq', 'queue', 'tenants', 'delayed', 'leases'])
  t.same(keys.forScript(declaredKeys('events', readFileSync(new URL('events.lua', LUA), 'utf8')), 'id-1'), ['p:{0}:job:id-1:log', 'p:{0}:job:id-1'], 'events the log and, for a finished job, the record that keeps its final event')
  t.ok(names('put').length <= SCRIPT_KEY_NAMES.length, 'no script gets more than every key there is')
  t.ok(scripts.filter((name) => names(name).length === SCRIPT_KEY_NAMES.length - 1).length <= 1, 'the full set is the exception, not the rule')
})

t.test('a header that is missing, names an unknown key or miscounts is refused at load', async (t) => {
  t.throws(() => declaredKeys('x', '-- no header\nreturn 1'), /declares no KEYS header/)
  t.throws(() => declaredKeys('x', '-- KEYS (1): nonsense\nreturn 1'), /unknown keys: nonsense/)
  t.throws(() => declaredKeys('x', '-- KEYS (3): leases fences\nreturn 1'), /declares 2 keys but counts 3/)
  t.same(declaredKeys('x', '-- KEYS (6): seq status_*\n'), ['seq', ...JOB_STATUSES.map((s) => `status_${s}`)])
})

t.test('in Redis, a script that touches a key it did not declare fails with an error naming it; the statuses and key builders come from keys.ts', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const redis = await server.client()
  t.teardown(() => redis.close())
  const keys = new RedisKeys('p:{0}:')
  const prelude = luaPrelude(['job_prefix', 'leases'])
  await t.rejects(redis.eval(`${prelude}\nreturn K.fences`, { keys: keys.forScript(['job_prefix', 'leases'], null) }), /does not declare the key fences/)
  t.same(await redis.eval(`${prelude}\nreturn {K.leases, job_key('a'), log_key('a'), table.concat(STATUSES, ','), tostring(FINAL.cancelled), tostring(FINAL.pending)}`, { keys: keys.forScript(['job_prefix', 'leases'], null) }),
    [keys.leases, keys.job('a'), keys.events('a'), JOB_STATUSES.join(','), 'true', 'nil'])
})

// Redis runs a script's whole text on each call: every library function it carries is defined
// again each time, called or not (all of lib/job.lua cost about 11 µs per call).
t.test('each script the store sends carries only the library functions it calls: a progress write does not define the claim\'s', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const admin = await server.client()
  t.teardown(() => admin.close())
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  // The texts the store sends: with Redis's script cache empty, each script's first call is a
  // NOSCRIPT answered by an EVAL of its source.
  const sources = new Map<string, string>()
  const send = client.sendCommand.bind(client)
  client.sendCommand = async (args: string[]) => {
    if (args[0] === 'EVAL') sources.set(args[1] as string, args[1] as string)
    return await send(args)
  }
  connectInBackground(client)
  await waitFor('Redis ready', () => client.isReady)
  t.teardown(() => client.destroy())
  // Scripts sent whole, as to a Redis before 7: the job scripts a Redis Function runs otherwise are sent so too.
  const store = new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 1000, functions: false })
  const created = await store.put(newJob({ query: 'q', depth: 'quick' }), 0, { enqueue: 'tail' })
  if (!created.ok) throw new Error('create refused')
  const [claim] = await store.claim(60_000, 1, { worker: 'w', maxAttempts: 3, step: START_STEP })
  if (claim === undefined) throw new Error('nothing claimed')
  t.match(await store.patchProgress(claim.job.job_id, claim.fence, claim.job.version, { progress: 40, step: 'Reading', now: Date.now() }), { outcome: 'written' })
  t.ok(await store.renewLease(claim.job.job_id, claim.fence, 60_000))
  t.ok(sources.size >= 4, `${sources.size} scripts sent`)
  for (const source of sources.values()) {
    const defined = [...source.matchAll(/^local function (\w+)\(/gm)].map((m) => m[1] as string).filter((name) => library.has(name))
    const code = source.replace(/^\s*--.*$/gm, '')
    const uncalled = defined.filter((name) => code.split(new RegExp(`\\b${name}\\(`)).length <= 2)
    const script = /^-- KEYS[^\n]*\n/m.exec(source)?.[0].trim() ?? 'a script'
    t.same(uncalled, [], `${script}: ${defined.length} of the library's ${library.size} functions defined, each called`)
  }
  const progress = [...sources.values()].find((source) => source.includes(',"current_step":') && !/^local function claim_jobs\(/m.test(source))
  t.ok(progress, 'the progress write\'s script leaves the claim out')
})
