// What one job costs, counted rather than timed: the instructions valgrind's callgrind counts for
//   node bench/instructions.mjs [redis|service] [progress writes, default 3] [query length, default 40]
// `redis`: redis-server runs under callgrind while an API process (ROLE=api) creates the jobs and
// a worker (ROLE=worker, the no-op engine, RUNNER_CONCURRENCY=16) drains them. `service`: the
// worker runs under callgrind, counted from when it is ready (callgrind_control) until the last
// job completed, while the API creates the jobs (they queue: the worker is the slower by far).
// Each is run for 200 and 1,200 jobs (INSTR_JOBS=200,1200), and the difference per job is
// printed, so start-up and shutdown cancel out. INSTR_SYSTEM=peer counts bench/bullmq-peer.mjs
// (PEER_ROLE=api creating, PEER_ROLE=worker draining) the same way. The same build gives the
// same count to about 0.5%, where timed runs on a shared machine move by a fifth: for comparing a change with the
// build before it (run this in each checkout, after `npm run build`). Needs valgrind
// (apt-get install -y valgrind). Slow: the service side takes about two minutes a run.
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
if (!['service', 'peer', undefined].includes(process.env.INSTR_SYSTEM)) throw new Error(`INSTR_SYSTEM: service or peer, not ${process.env.INSTR_SYSTEM}`)
if (!['redis', 'service'].includes(side)) throw new Error(`side: redis or service, not ${side}`)
if (!(few > 0 && many > few)) throw new Error('INSTR_JOBS: two counts of jobs, the second larger')
const root = new URL('..', import.meta.url).pathname
const processes = new Processes(root)
// INSTR_KEEP=1 keeps the callgrind output (named in the last line printed), for callgrind_annotate.
const keep = process.env.INSTR_KEEP === '1'
const work = mkdtempSync(join(tmpdir(), 'instructions-'))
cleanUpOnSignals(async () => { await processes.killAll(); if (!keep) rmSync(work, { recursive: true, force: true }) })
// A specifier built at run time: dist/ is not there to type-check against before a build.
const { RedisKeys } = await import(new URL('../dist/store/keys.js', import.meta.url).href)
const completedKey = peer ? 'bull:research:completed' : new RedisKeys().status('completed')
// callgrind_control finds the process by a file named after the user and host it was started with.
const valgrindEnv = { USER: 'bench', HOST: '127.0.0.1' }
const vgdbPrefix = join(work, 'vgdb')

const collected = (log) => Number(/Collected : (\d+)/.exec(readFileSync(log, 'utf8'))?.[1])
// The peer has no /health; its /stats answers once its Redis connection does.
const healthy = (port) => async () => (await fetch(`http://127.0.0.1:${port}/${peer ? 'stats' : 'health'}`)).ok

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
    : { ...env, PORT: String(workerPort), ROLE: 'worker', RESEARCH_ENGINE: 'noop', NOOP_PROGRESS_WRITES: progressWrites, RUNNER_CONCURRENCY: '16', REPLICA_HEARTBEAT_MS: '60000' }
  const api = processes.start('node', [server], peer ? { ...peerEnv, PORT: String(apiPort), PEER_ROLE: 'api' } : { ...env, PORT: String(apiPort), ROLE: 'api' })
  await until('the API', healthy(apiPort))
  const drained = async () => Number(redisCli(redisPort, 'ZCARD', completedKey)) >= jobs
  if (side === 'redis') {
    await createJobs(apiPort, jobs)
    const worker = processes.start('node', [server], workerEnv)
    await until('every job completed', drained, 600_000)
    worker.kill('SIGTERM')
    await worker.exited
  } else {
    const worker = processes.start('valgrind', ['--tool=callgrind', '--instr-atstart=no', `--vgdb-prefix=${vgdbPrefix}`, `--callgrind-out-file=${join(dir, 'callgrind.out')}`, 'node', server], { ...workerEnv, ...valgrindEnv }, log)
    // The peer's worker serves no HTTP: it is ready when its Worker waits for a job (BZPOPMIN).
    const waiting = async () => / cmd=bzpopmin( |$)/m.test(redisCli(redisPort, 'CLIENT', 'LIST'))
    await until('the worker', peer ? waiting : healthy(workerPort), 600_000)
    // Its timers and first claims settle (under valgrind a process runs some fifty times slower).
    await sleep(5_000)
    const control = (on) => execFileSync('callgrind_control', [`--vgdb-prefix=${vgdbPrefix}`, '-i', on, String(worker.pid)], { env: { PATH: process.env.PATH, ...valgrindEnv }, stdio: 'ignore' })
    control('on')
    await createJobs(apiPort, jobs)
    await until('every job completed', drained, 600_000)
    control('off')
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
  const perJob = (b - a) / (many - few)
  console.log(`${peer ? 'peer' : 'service'} ${side === 'redis' ? 'redis' : 'worker'}, ${progressWrites} progress writes, query of ${queryLength} characters: ${Math.round(perJob).toLocaleString('en-US')} instructions per job (${a.toLocaleString('en-US')} for ${few} jobs, ${b.toLocaleString('en-US')} for ${many})`)
} finally {
  await processes.killAll()
  if (keep) console.log(`callgrind output kept in ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
