// Two deployments on one Redis, told apart by REDIS_KEY_PREFIX, and the service's manners on a
// shared Redis: every key and channel under its prefix, no keyspace-wide or admin commands.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { RedisServer } from '../helpers/redis-server.js'

/** Commands a guest on a shared Redis must never send: they read or wipe everyone's keys, or change the server. */
const RUDE = /^"(KEYS|SCAN|FLUSHDB|FLUSHALL|CONFIG" "SET|CONFIG" "REWRITE|CONFIG" "RESETSTAT|SWAPDB|MIGRATE|SHUTDOWN|DEBUG)"/i

t.test('two deployments with different prefixes on one Redis never see each other\'s jobs, limits or events; every key is under its prefix', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const monitor = await redis.client()
  const commands: string[] = []
  await monitor.monitor((line) => { commands.push(String(line)) })
  t.teardown(() => monitor.destroy())

  const limits = { RATE_LIMIT_ENABLED: true, RATE_LIMIT_CREATE_MAX: 2, RATE_LIMIT_POLL_MAX: 1000, RATE_LIMIT_WINDOW_MS: 60_000 }
  const a = await startApp(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'team-a:{0}:', ...limits }, { engine: new PacedEngine(0) })
  // No visibility grace: an unknown id is a confident 404 at once, not "maybe on its way".
  const b = await startApp(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'team-b:{0}:', JOB_VISIBILITY_GRACE_MS: 0, ...limits }, { engine: new PacedEngine(0) })
  await waitFor('both on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')

  const ofA = await createJob(a, { query: 'How does Redis AOF persistence protect jobs?', depth: 'quick' })
  await createJob(a, { query: 'What is a fencing token?', depth: 'quick' })
  t.equal((await a.inject({ method: 'POST', url: '/v1/research', payload: { query: 'a third', depth: 'quick' } })).statusCode, 429, 'A spent its create budget')
  const ofB = await createJob(b, { query: 'What is a lease?', depth: 'quick' })
  t.ok(ofB.job_id, 'B\'s budget is its own')

  await pollJob(a, ofA.job_id)
  await pollJob(b, ofB.job_id)
  const missing = await b.inject({ method: 'GET', url: `/v1/jobs/${ofA.job_id}` })
  t.equal(missing.statusCode, 404, 'B does not know A\'s job')
  t.match(json(missing), { error: 'not_found' })
  t.same(json(await b.inject({ method: 'GET', url: '/v1/jobs' })).jobs.map((j: { job_id: string }) => j.job_id), [ofB.job_id], 'B lists only its own')
  t.equal(json(await a.inject({ method: 'GET', url: '/v1/jobs' })).jobs.length, 2, 'A lists only its own')
  t.equal((await b.inject({ method: 'GET', url: `/v1/jobs/${ofA.job_id}/events` })).statusCode, 404, 'nor streams its events')
  const stream = await a.inject({ method: 'GET', url: `/v1/jobs/${ofA.job_id}/events` })
  t.match(stream.body, /event: completed/, 'A streams its own (the stream of a finished job ends)')
  t.match(json(await b.inject({ method: 'GET', url: '/v1/stats' })), { counts: { completed: 1 } }, 'B\'s stats count B\'s jobs')

  // What the deployments sent, taken before this test's own SCAN below.
  const sent = commands.filter((line) => !line.includes('"MONITOR"')).map((line) => line.slice(line.indexOf('"')))
  t.ok(sent.length > 50, `MONITOR saw the deployments' commands (${sent.length})`)
  t.same(sent.filter((command) => RUDE.test(command)), [], 'no KEYS, SCAN, FLUSH*, CONFIG SET or other server-wide command')
  const channels = sent.filter((command) => /^"(P|S)?SUBSCRIBE"|^"(S)?PUBLISH"/i.test(command)).map((command) => command.split('" "')[1] ?? '')
  t.ok(channels.length > 0, 'notices were published and subscribed to')
  t.same(channels.filter((channel) => !/^team-[ab]:\{0\}:/.test(channel)), [], 'every channel is under a prefix')
  const keys: string[] = []
  const admin = await redis.client()
  t.teardown(() => admin.destroy())
  for await (const batch of admin.scanIterator({ COUNT: 1000 })) keys.push(...batch)
  t.ok(keys.length > 10, `the deployments wrote keys (${keys.length})`)
  t.same(keys.filter((key) => !key.startsWith('team-a:{0}:') && !key.startsWith('team-b:{0}:')), [], 'every key is under a prefix')
})

t.test('the source never sends a keyspace-wide or server-changing command', async (t) => {
  const root = new URL('../../src/', import.meta.url).pathname
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((file) => /\.(ts|lua)$/.test(file))
  t.ok(files.length > 20)
  const offenders: string[] = []
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8')
    for (const match of text.matchAll(/['"](KEYS|SCAN|FLUSHDB|FLUSHALL|SWAPDB)['"]|['"]CONFIG['"]\s*,\s*['"](SET|REWRITE|RESETSTAT)['"]/g)) offenders.push(`${file}: ${match[0]}`)
  }
  t.same(offenders, [])
})
