// What one job costs, counted rather than timed: the instructions valgrind's callgrind counts for
//   node bench/instructions.mjs [redis|service|api|poll] [progress writes, default 3] [query length, default 40]
// `redis`: redis-server runs under callgrind while an API process (ROLE=api) creates the jobs and
// a worker (ROLE=worker, the no-op engine, RUNNER_CONCURRENCY=16; two runner connections by
// default since 2026-12-08, REDIS_RUNNER_CONNECTIONS=1, passed on, for one) drains them. `service`: the
// worker runs under callgrind, counted (callgrind_control) from when it has drained warm-up
// jobs until the last job completed, while the API creates the jobs (they queue: the worker is
// the slower by far). `api`: the API process runs under callgrind, counted after warm-up creates
// until its last create was answered (no worker runs: the jobs stay queued). `poll`: the API
// process runs under callgrind while a worker finishes one job, counted after warm-up polls over
// ten times as many polls of that finished job (GET /v1/jobs/{id}) as the counts of jobs say;
// INSTR_SYSTEM=bare counts bare Fastify's answers of the same record instead.
// Each is run for 200 and 1,200 jobs (INSTR_JOBS=200,1200), and the difference per job is
// printed, so start-up and shutdown cancel out. INSTR_SYSTEM=peer counts bench/bullmq-peer.mjs
// (PEER_ROLE=api creating, PEER_ROLE=worker draining) the same way. The same build gives Redis
// the same count to about 1%, a Node process to a few percent, where timed runs on a shared
// machine move by a fifth: for comparing a change with the build before it (run this in each
// checkout, after `npm run build`). Needs valgrind (apt-get install -y valgrind). Slow: a Node
// side takes about three minutes a run.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Processes, cleanUpOnSignals, freePort, redisCli, until } from '../scripts/lib/processes.mjs'

const side = process.argv[2] ?? 'redis'
const progressWrites = process.argv[3] ?? '3'
const queryLength = Number(process.argv[4] ?? 40)
const [few, many] = (process.env.INSTR_JOBS ?? '200,1200').split(',').map(Number)
const peer = process.env.INSTR_SYSTEM === 'peer'
// The least a Fastify server does for a poll's answer: bench/baseline-server.mjs answering the
// finished job's record as a fixed body (polls only).
const bare = process.env.INSTR_SYSTEM === 'bare'
if (!['service', 'peer', 'bare', undefined].includes(process.env.INSTR_SYSTEM)) throw new Error(`INSTR_SYSTEM: service, peer or bare, not ${process.env.INSTR_SYSTEM}`)
if (bare && side !== 'poll') throw new Error('INSTR_SYSTEM=bare counts polls only')
if (!['redis', 'service', 'api', 'poll'].includes(side)) throw new Error(`side: redis, service, api or poll, not ${side}`)
if (!(few > 0 && many > few)) throw new Error('INSTR_JOBS: two counts of jobs, the second larger')
const root = new URL('..', import.meta.url).pathname
const processes = new Processes(root)
// INSTR_KEEP=1 keeps the callgrind output (named in the last line printed), for callgrind_annotate.
const keep = process.env.INSTR_KEEP === '1'
// The worker's runner connections, when set (a ROLE=worker process takes two unless it is).
const runnerConnections = process.env.REDIS_RUNNER_CONNECTIONS === undefined ? {} : { REDIS_RUNNER_CONNECTIONS: process.env.REDIS_RUNNER_CONNECTIONS }
const work = mkdtempSync(join(tmpdir(), 'instructions-'))
cleanUpOnSignals(async () => { await processes.killAll(); if (!keep) rmSync(work, { recursive: true, force: true }) })
// A specifier built at run time: dist/ is not there to type-check against before a build.
const { RedisKeys } = await import(new URL('../dist/store/keys.js', import.meta.url).href)
const completedKey = peer ? 'bull:research:completed' : new RedisKeys().status('completed')
// callgrind_control finds the process by a file named after the user and host it was started with.
const valgrindEnv = { USER: 'bench', HOST: '127.0.0.1' }
const vgdbPrefix = join(work, 'vgdb')

const collected = (log) => Number(/Collected : (\d+)/.exec(readFileSync(log, 'utf8'))?.[1])
const nodeValgrind = (dir) => ['--tool=callgrind', '--instr-atstart=no', `--vgdb-prefix=${vgdbPrefix}`, `--callgrind-out-file=${join(dir, 'callgrind.out')}`]
// The peer has no /health; its /stats answers once its Redis connection does.
const healthy = (port) => async () => (await fetch(`http://127.0.0.1:${port}/${peer ? 'stats' : 'health'}`)).ok

// Requests or jobs before a Node process is counted (INSTR_WARM_UP sets them all): V8 compiles a
// path optimized only after many runs of it, and its compiler's work, counted, made up to half
// of a poll's count and a fifth of a worker's job. It goes on compiling a little past them, so a
// Node process's count moves by a few percent between runs of one build; Redis's by less than one.
const POLL_WARM_UP = Number(process.env.INSTR_WARM_UP ?? 10000)
const CREATE_WARM_UP = Number(process.env.INSTR_WARM_UP ?? 3000)
const WORKER_WARM_UP = Number(process.env.INSTR_WARM_UP ?? 3000)

/** `count` GETs of `url` (a finished job's), ten at a time. */
async function pollJob (url, count) {
  let left = count
  const client = async () => {
    for (; left > 0; left--) {
      const answer = await fetch(url)
      if (answer.status !== 200) throw new Error(`poll answered ${answer.status}`)
      await answer.text()
    }
  }
  await Promise.all(Array.from({ length: 10 }, client))
}

async function createJobs (port, count) {
  const body = JSON.stringify({ query: 'Why '.repeat(Math.ceil(queryLength / 4)).slice(0, queryLength), depth: 'quick' })
  let left = count
  const client = async () => {
    for (; left > 0; left--) {
      const answer = await fetch(`http://127.0.0.1:${port}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      if (answer.status !== 202) throw new Error(`create answered ${answer.status}`)
      await answer.text()
    }
  }
  await Promise.all(Array.from({ length: 10 }, client))
}

/** Instructions counted while `jobs` jobs are created and drained. */
async function countFor (jobs) {
  const dir = mkdtempSync(join(work, `jobs-${jobs}-`))
  const [redisPort, apiPort, workerPort] = [await freePort(), await freePort(), await freePort()]
  const log = join(dir, 'valgrind.log')
  const redisArgs = ['--port', String(redisPort), '--save', '', '--appendonly', 'no', '--dir', dir]
  const redis = side === 'redis'
    ? processes.start('valgrind', ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'callgrind.out')}`, 'redis-server', ...redisArgs], valgrindEnv, log)
    : processes.start('redis-server', redisArgs)
  await until('Redis', () => redisCli(redisPort, 'PING') === 'PONG', 60_000)
  const env = { HOST: '127.0.0.1', REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_TIMEOUT_MS: '30000', RATE_LIMIT_ENABLED: 'false', LOG_LEVEL: 'warn' }
  const peerEnv = { REDIS_PORT: String(redisPort), PROGRESS_WRITES: progressWrites, CONCURRENCY: '16' }
  const server = peer ? 'bench/bullmq-peer.mjs' : 'dist/server.js'
  const workerEnv = peer
    ? { ...peerEnv, PEER_ROLE: 'worker' }
    : { ...env, ...runnerConnections, PORT: String(workerPort), ROLE: 'worker', RESEARCH_ENGINE: 'noop', NOOP_PROGRESS_WRITES: progressWrites, RUNNER_CONCURRENCY: '16', REPLICA_HEARTBEAT_MS: '60000' }
  const apiEnv = peer ? { ...peerEnv, PORT: String(apiPort), PEER_ROLE: 'api' } : { ...env, PORT: String(apiPort), ROLE: 'api' }
  const api = (side === 'api' || side === 'poll') && !bare
    ? processes.start('valgrind', [...nodeValgrind(dir), 'node', server], { ...apiEnv, ...valgrindEnv }, log)
    : processes.start('node', [server], apiEnv)
  await until('the API', healthy(apiPort), 600_000)
  const completed = (count) => async () => Number(redisCli(redisPort, 'ZCARD', completedKey)) >= count
  const control = (pid, on) => execFileSync('callgrind_control', [`--vgdb-prefix=${vgdbPrefix}`, '-i', on, String(pid)], { env: { PATH: process.env.PATH, ...valgrindEnv }, stdio: 'ignore' })
  if (side === 'poll') {
    const created = await (await fetch(`http://127.0.0.1:${apiPort}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'How are polls answered?', depth: 'quick' }) })).json()
    const worker = processes.start('node', [server], workerEnv)
    await until('the job completed', async () => (await (await fetch(`http://127.0.0.1:${apiPort}/v1/jobs/${created.job_id}`)).json()).status === 'completed', 600_000)
    worker.kill('SIGTERM')
    await worker.exited
    let url = `http://127.0.0.1:${apiPort}/v1/jobs/${created.job_id}`
    let polled = api
    if (bare) {
      const basePort = await freePort()
      polled = processes.start('valgrind', [...nodeValgrind(dir), 'node', 'bench/baseline-server.mjs'], { PORT: String(basePort), BASELINE_BODY: await (await fetch(url)).text(), ...valgrindEnv }, log)
      url = `http://127.0.0.1:${basePort}/record`
      await until('bare Fastify', async () => (await fetch(url)).ok, 600_000)
    }
    await pollJob(url, POLL_WARM_UP)
    await sleep(5_000)
    control(polled.pid, 'on')
    await pollJob(url, jobs * 10)
    control(polled.pid, 'off')
    if (bare) {
      polled.kill('SIGTERM')
      await polled.exited
    }
  } else if (side === 'api') {
    await createJobs(apiPort, CREATE_WARM_UP)
    await sleep(5_000)
    control(api.pid, 'on')
    await createJobs(apiPort, jobs)
    control(api.pid, 'off')
  } else if (side === 'redis') {
    await createJobs(apiPort, jobs)
    const worker = processes.start('node', [server], workerEnv)
    await until('every job completed', completed(jobs), 600_000)
    worker.kill('SIGTERM')
    await worker.exited
  } else {
    const worker = processes.start('valgrind', [...nodeValgrind(dir), 'node', server], { ...workerEnv, ...valgrindEnv }, log)
    // The peer's worker serves no HTTP: it is ready when its Worker waits for a job (BZPOPMIN).
    const waiting = async () => / cmd=bzpopmin( |$)/m.test(redisCli(redisPort, 'CLIENT', 'LIST'))
    await until('the worker', peer ? waiting : healthy(workerPort), 600_000)
    await createJobs(apiPort, WORKER_WARM_UP)
    await until('the warm-up jobs completed', completed(WORKER_WARM_UP), 600_000)
    // Its timers settle (under valgrind a process runs some fifty times slower).
    await sleep(5_000)
    control(worker.pid, 'on')
    await createJobs(apiPort, jobs)
    await until('every job completed', completed(WORKER_WARM_UP + jobs), 600_000)
    control(worker.pid, 'off')
    worker.kill('SIGTERM')
    await worker.exited
  }
  api.kill('SIGTERM')
  await api.exited
  redisCli(redisPort, 'SHUTDOWN', 'NOSAVE')
  await redis.exited
  const count = collected(log)
  if (!Number.isFinite(count)) throw new Error(`no instruction count in ${log}`)
  return count
}

try {
  const [a, b] = [await countFor(few), await countFor(many)]
  const who = `${peer ? 'peer' : bare ? 'bare Fastify' : 'service'} ${side === 'service' ? 'worker' : side}`
  const [unit, per] = side === 'poll' ? ['poll of a finished job', (many - few) * 10] : [`job (${progressWrites} progress writes, query of ${queryLength} characters)`, many - few]
  const count = (n) => Math.round(n).toLocaleString('en-US')
  console.log(`${who}: ${count((b - a) / per)} instructions per ${unit} (${count(a)} and ${count(b)} for the two runs)`)
} finally {
  await processes.killAll()
  if (keep) console.log(`callgrind output kept in ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
