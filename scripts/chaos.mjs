// npm run chaos: 3 replicas of the built service on one Redis (AOF on), 300 jobs through the HTTP API,
// one replica kill -9'd, Redis restarted, another replica SIGTERMed and replaced, then checks that every
// job completed, no attempt overlapped another, no job used more than JOB_MAX_ATTEMPTS, and no poll got a 5xx.
// Starts everything it needs on free loopback ports and cleans up after itself, also when it fails.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Processes, cleanUpOnSignals, freePort, until } from './lib/processes.mjs'

const JOBS = Number(process.env.CHAOS_JOBS ?? 300)
const MAX_ATTEMPTS = 3
const LEASE_MS = 2000
const DRAIN_TIMEOUT_MS = 180_000
const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'chaos-'))
const processes = new Processes(root)
const start = (name, command, args, env = {}) => processes.start(command, args, env, join(work, `${name}.log`))

const redisPort = await freePort()
const redisDir = join(work, 'redis')
const redisArgs = ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', work, '--save', '',
  '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction']
let redis
async function startRedis () {
  redis = start('redis', 'redis-server', redisArgs)
  await until('redis', async () => (await redisCommand('PING')) === '+PONG')
}
function redisCommand (...args) {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-p', String(redisPort), ...args])
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.on('error', reject)
    child.on('exit', () => resolve(out.trim() === 'PONG' ? '+PONG' : out.trim()))
  })
}

const replicas = new Map()
async function startReplica (name) {
  const port = await freePort()
  const child = start(name, 'node', ['dist/server.js'], {
    PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', WORKER_ID: name,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_TIMEOUT_MS: '500', REDIS_BREAKER_MS: '200', REDIS_READ_WAIT_MS: '5000',
    JOB_LEASE_MS: String(LEASE_MS), JOB_MAX_ATTEMPTS: String(MAX_ATTEMPTS), JOB_RETRY_BASE_MS: '200',
    RUNNER_CONCURRENCY: '4', RESEARCH_STEP_DELAY_MS: '60', SHUTDOWN_TIMEOUT_MS: '2000', RATE_LIMIT_ENABLED: 'false'
  })
  const replica = { name, port, child, url: `http://127.0.0.1:${port}`, live: false }
  replicas.set(name, replica)
  await until(`${name} to answer /health`, async () => (await fetch(`${replica.url}/health`)).ok)
  replica.live = true
  return replica
}
const live = () => [...replicas.values()].filter((r) => r.live)
const pick = (list) => list[Math.floor(Math.random() * list.length)]

const polls = { total: 0, byStatus: {}, fivexx: [] }
async function poll (id) {
  const replica = pick(live())
  if (replica === undefined) return null
  try {
    const res = await fetch(`${replica.url}/v1/jobs/${id}`)
    polls.total++
    polls.byStatus[res.status] = (polls.byStatus[res.status] ?? 0) + 1
    const body = await res.json()
    if (res.status >= 500) polls.fivexx.push(`${replica.name} ${res.status} ${JSON.stringify(body)}`)
    return res.status === 200 ? body : null
  } catch (err) {
    // A replica taken out of rotation a moment ago: the load balancer's problem, not an HTTP answer.
    if (replica.live) throw err
    return null
  }
}

async function cleanup () {
  await processes.killAll()
  rmSync(work, { recursive: true, force: true })
}
cleanUpOnSignals(cleanup)

let failed = false
try {
  await startRedis()
  for (const name of ['replica-a', 'replica-b', 'replica-c']) await startReplica(name)

  const started = Date.now()
  const ids = []
  const rotation = live()
  for (let i = 0; i < JOBS; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, JOBS - i) }, async (_v, k) => {
      const replica = rotation[(i + k) % rotation.length]
      const res = await fetch(`${replica.url}/v1/research`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: `chaos ${i + k}: how do leases and retries keep jobs alive when workers die?`, depth: 'standard' })
      })
      if (res.status !== 202) throw new Error(`create answered ${res.status}`)
      ids.push((await res.json()).job_id)
    }))
  }
  console.log(`chaos: submitted ${ids.length} jobs over ${rotation.length} replicas in ${((Date.now() - started) / 1000).toFixed(1)} s`)

  let polling = true
  const poller = (async () => {
    while (polling) {
      await Promise.all(Array.from({ length: 8 }, () => poll(pick(ids))))
      await sleep(20)
    }
  })()

  const done = new Map()
  const drained = (async () => {
    while (done.size < ids.length) {
      for (const id of ids) {
        if (done.has(id)) continue
        const job = await poll(id)
        if (job !== null && ['completed', 'failed', 'cancelled'].includes(job.status)) done.set(id, job)
      }
      await sleep(200)
    }
  })()

  await sleep(1500)
  const a = replicas.get('replica-a')
  a.live = false
  a.child.kill('SIGKILL')
  await a.child.exited
  console.log('chaos: kill -9 replica-a')

  await sleep(1500)
  redis.kill('SIGTERM')
  await redis.exited
  await sleep(300)
  await startRedis()
  console.log('chaos: restarted Redis (AOF)')

  await sleep(1500)
  const b = replicas.get('replica-b')
  b.live = false
  b.child.kill('SIGTERM')
  const sent = Date.now()
  const exit = await b.child.exited
  console.log(`chaos: SIGTERM replica-b: exited ${exit.code} after ${Date.now() - sent} ms`)
  if (exit.code !== 0 || Date.now() - sent > 3000) throw new Error('replica-b did not shut down cleanly within 3 s')
  await startReplica('replica-d')
  console.log('chaos: started replica-d')

  await Promise.race([drained, sleep(DRAIN_TIMEOUT_MS).then(() => { throw new Error(`only ${done.size}/${ids.length} jobs finished in time`) })])
  polling = false
  await poller
  const drainSeconds = (Date.now() - started) / 1000

  const problems = []
  let attempts = 0
  let takeovers = 0
  let handedBack = 0
  for (const [id, job] of done) {
    if (job.status !== 'completed') problems.push(`${id} ended ${job.status}: ${job.error}`)
    if (job.attempts > MAX_ATTEMPTS) problems.push(`${id} used ${job.attempts} attempts`)
    attempts += job.attempt_history.length
    takeovers += job.attempt_history.filter((h) => h.outcome === 'lease_expired').length
    handedBack += job.attempt_history.filter((h) => h.outcome === 'handed_back').length
    const spans = job.attempt_history.map((h) => [Date.parse(h.started_at), h.ended_at === null ? Infinity : Date.parse(h.ended_at), h.worker]).sort((x, y) => x[0] - y[0])
    for (let i = 1; i < spans.length; i++) {
      if (spans[i][0] < spans[i - 1][1]) problems.push(`${id}: attempts by ${spans[i - 1][2]} and ${spans[i][2]} overlapped`)
    }
  }
  if (polls.fivexx.length > 0) problems.push(`${polls.fivexx.length} polls got a 5xx, e.g. ${polls.fivexx.slice(0, 3).join(' | ')}`)
  console.log(`chaos: jobs=${ids.length} completed=${[...done.values()].filter((j) => j.status === 'completed').length} attempts=${attempts} takeovers=${takeovers} handed_back=${handedBack} polls=${polls.total} 5xx=${polls.fivexx.length} drain_s=${drainSeconds.toFixed(1)}`)
  if (problems.length > 0) {
    failed = true
    console.error(`chaos: FAILED\n  ${problems.slice(0, 20).join('\n  ')}`)
    console.error(`logs kept in ${work}`)
  } else {
    console.log('chaos: 1 passed, 0 failed')
  }
} catch (err) {
  failed = true
  console.error(`chaos: FAILED: ${err.stack ?? err}`)
} finally {
  if (failed) {
    await processes.killAll()
    console.error(`chaos: replica and Redis logs are in ${work}`)
  } else {
    await cleanup()
  }
}
process.exit(failed ? 1 : 0)
