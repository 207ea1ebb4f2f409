// Where one system's end-to-end cost goes, for the "why" of the peer comparison in RESULTS.md:
//   node bench/profile-e2e.mjs [service|peer] [progress writes, default 0] [all|create|drain, default all]
// Starts its own redis-server and the system (this service's dist/server.js with the no-op
// engine, or bench/bullmq-peer.mjs) under `node --cpu-prof`, creates jobs for 3 s with
// autocannon (50 connections, as the bench), waits until every accepted job is completed, and
// prints: jobs/s, server and Redis CPU per job, the CPU profile's self time by package, Redis commands
// per job by command (INFO commandstats) and Redis memory per job by kind of key (MEMORY USAGE).
// The profile counts only the measured window (the process's start-up is left out).
// PROFILE=off runs without the profiler (it costs the process a third more CPU), for rates to
// compare. REDIS_RUNNER_CONNECTIONS, when set, is passed to the service (a ROLE=worker process,
// as `drain` starts, takes two unless it is set; 1 as before 2026-12-08). SLOWLOG=on has Redis log
// every command (SLOWLOG, no threshold) through the measured window and prints each script's
// calls and mean time, named for this service's scripts (the peer's by their SHA1); the log
// costs Redis time of its own, so compare such runs only with each other. PROFILE_OUT=<file>
// keeps the CPU profile there (for Chrome DevTools or a closer look). SYSTEM_NODE_FLAGS adds flags
// to the system's node, the service's or the peer's (V8's heap settings, --perf-basic-prof for perf).
// The parts, one side of a job each: `create` runs the system without its runner (ROLE=api,
// PEER_ROLE=api) and measures the creates alone; `drain` creates the jobs that way, stops, then
// starts the runner alone (ROLE=worker, PEER_ROLE=worker) on the queue they left and measures it
// from its 10th to its 90th percent of jobs completed (start-up and the last stragglers left out).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Processes, cleanUpOnSignals, cpuSeconds, freePort, redisCli, redisCpuSeconds, until } from '../scripts/lib/processes.mjs'

const system = process.argv[2] ?? 'service'
const progressWrites = process.argv[3] ?? '0'
const part = process.argv[4] ?? 'all'
const profiling = process.env.PROFILE !== 'off'
const slowlog = process.env.SLOWLOG === 'on'
const systemFlags = (process.env.SYSTEM_NODE_FLAGS ?? '').split(/\s+/).filter((flag) => flag !== '')
if (!['all', 'create', 'drain'].includes(part)) throw new Error(`part: all, create or drain, not ${part}`)
const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'profile-e2e-'))
const processes = new Processes(root)
const cleanup = async () => { await processes.killAll(); rmSync(work, { recursive: true, force: true }) }
cleanUpOnSignals(cleanup)

const commandCalls = (port) => Object.fromEntries([...redisCli(port, 'INFO', 'commandstats').matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1], Number(m[2])]))
/** Microseconds Redis spent in each command (a script's own commands are counted in its FCALL or EVALSHA too). */
const commandMicros = (port) => Object.fromEntries([...redisCli(port, 'INFO', 'commandstats').matchAll(/cmdstat_(\w+):calls=\d+,usec=(\d+)/g)].map((m) => [m[1], Number(m[2])]))
const usedMemory = (port) => Number(/used_memory:(\d+)/.exec(redisCli(port, 'INFO', 'memory'))?.[1])

/** This service's scripts by SHA1, as Redis receives them (dist/ must be built). */
async function scriptNames () {
  // A specifier built at run time: dist/ is not there to type-check against before a build.
  const { composedScripts } = await import(new URL('../dist/store/redis.js', import.meta.url).href)
  return new Map(composedScripts().map(({ name, source }) => [createHash('sha1').update(source).digest('hex'), name]))
}

/** Calls and mean µs of each script Redis ran since SLOWLOG RESET, by name (or SHA1), most time first. */
async function scriptTimes (port) {
  const names = system === 'service' ? await scriptNames() : new Map()
  const entries = JSON.parse(redisCli(port, '--json', 'SLOWLOG', 'GET', '-1'))
  const byScript = new Map()
  for (const [, , micros, args] of entries) {
    const command = String(args[0]).toUpperCase()
    if (command !== 'EVALSHA' && command !== 'FCALL') continue
    // A function is named deep_research_<library hash>_<name> (src/store/lua-functions.ts).
    const key = command === 'FCALL' ? String(args[1]).replace(/^deep_research_[0-9a-f]+_/, '') : args[1]
    const total = byScript.get(key) ?? { calls: 0, micros: 0 }
    total.calls++
    total.micros += micros
    byScript.set(key, total)
  }
  return [...byScript].sort((a, b) => b[1].micros - a[1].micros).map(([script, { calls, micros }]) => `${names.get(script) ?? script.slice(0, 10)} ${calls} calls, ${(micros / calls).toFixed(1)} µs`)
}

/** The profile's samples taken between `from` and `to` (µs of the monotonic clock, as process.hrtime). */
function samplesWithin (profile, from, to) {
  const indexes = []
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0
    if (at >= from && at <= to) indexes.push(i)
  }
  return indexes
}

const microsNow = () => Number(process.hrtime.bigint() / 1000n)

/** Self time by package (node_modules/<name>), this service's own code, Node's internals, GC and idle. */
function selfTimeByPackage (profile, window) {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
  const totals = new Map()
  for (const i of window) {
    const frame = byNode.get(profile.samples[i])?.callFrame
    const url = frame?.url ?? ''
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
      (url.includes('/dist/') || url.includes('/bench/') ? (system === 'service' ? 'this service (dist/)' : 'the peer (bench/)') : url.startsWith('node:') ? 'node: internals' : frame?.functionName || '(native)')
    totals.set(name, (totals.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const busy = [...totals].filter(([name]) => name !== '(idle)').reduce((sum, [, us]) => sum + us, 0)
  return [...totals].filter(([name]) => name !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 12).map(([name, us]) => `${name} ${(100 * us / busy).toFixed(1)}%`)
}

/** The system's own functions that took the most self time, as a share of busy samples. */
function ownHotFunctions (profile, window) {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
  const totals = new Map()
  let busy = 0
  for (const i of window) {
    const frame = byNode.get(profile.samples[i])?.callFrame
    if (frame?.functionName === '(idle)') continue
    busy += profile.timeDeltas[i] ?? 0
    const url = frame?.url ?? ''
    if (url.includes('/node_modules/') || (!url.includes('/dist/') && !url.includes('/bench/'))) continue
    const name = `${frame.functionName || '(anonymous)'} ${url.replace(/.*\/(dist|bench)\//, '$1/')}:${frame.lineNumber + 1}`
    totals.set(name, (totals.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([name, us]) => `${name} ${(100 * us / busy).toFixed(1)}%`)
}

/** MEMORY USAGE of every key, summed by kind of key (a job id replaced by <id>). */
function memoryByKind (redisPort) {
  const keys = redisCli(redisPort, '--scan').split('\n').filter(Boolean)
  const usage = execFileSync('redis-cli', ['-p', String(redisPort)], { input: keys.map((key) => `MEMORY USAGE "${key}"\n`).join(''), encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n').map(Number)
  const byKind = new Map()
  keys.forEach((key, i) => {
    const kind = key.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, '<id>')
    byKind.set(kind, (byKind.get(kind) ?? 0) + (usage[i] ?? 0))
  })
  return byKind
}

/** Starts the system (or one part of it: 'api' or 'worker') on `redisPort`, profiled when `profileDir` is given. */
function startSystem (role, redisPort, port, profileDir) {
  const flags = [...systemFlags, ...(profileDir === null || !profiling ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])]
  const runnerConnections = process.env.REDIS_RUNNER_CONNECTIONS === undefined ? {} : { REDIS_RUNNER_CONNECTIONS: process.env.REDIS_RUNNER_CONNECTIONS }
  return system === 'peer'
    ? processes.start('node', [...flags, 'bench/bullmq-peer.mjs'], { PORT: String(port), REDIS_PORT: String(redisPort), PROGRESS_WRITES: progressWrites, CONCURRENCY: '16', PEER_ROLE: role })
    : processes.start('node', [...flags, 'dist/server.js'], {
      PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', RESEARCH_ENGINE: 'noop', RATE_LIMIT_ENABLED: 'false', REDIS_URL: `redis://127.0.0.1:${redisPort}`, RUNNER_CONCURRENCY: '16', NOOP_PROGRESS_WRITES: progressWrites, ROLE: role, ...runnerConnections
    })
}

/** Jobs completed, read from Redis (a worker serves no HTTP): the service's status index, or BullMQ's completed set. */
const completedInRedis = (redisPort) => Number(redisCli(redisPort, 'ZCARD', system === 'peer' ? 'bull:research:completed' : 'dr:{0}:jobs:status:completed'))

/** Creates jobs for 3 s as the bench does; returns how many were accepted. */
function createFor3s (url) {
  const load = JSON.parse(execFileSync(join(root, 'node_modules/.bin/autocannon'), ['-j', '-c', '50', '-d', '3', '-m', 'POST', '-H', 'content-type=application/json', '-b', JSON.stringify({ query: 'end to end', depth: 'quick' }), `${url}/v1/research`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
  return load['2xx']
}

try {
  const redisPort = await freePort()
  processes.start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', work, '--save', '', '--appendonly', 'no'])
  await until('redis', () => redisCli(redisPort, 'PING') === 'PONG')
  const port = await freePort()
  const profileDir = join(work, 'cpu')
  const url = `http://127.0.0.1:${port}`
  const completed = async () => system === 'peer' ? (await (await fetch(`${url}/stats`)).json()).completed : (await (await fetch(`${url}/v1/stats`)).json()).counts.completed
  const apiUp = async () => (await fetch(system === 'peer' ? `${url}/stats` : `${url}/health`)).ok
  let child
  let before
  let jobs
  /** Where the measured window starts: time, CPU used so far by the system and Redis, Redis's counts. */
  const snapshot = () => {
    if (slowlog) {
      redisCli(redisPort, 'CONFIG', 'SET', 'slowlog-log-slower-than', '0', 'slowlog-max-len', '10000000')
      redisCli(redisPort, 'SLOWLOG', 'RESET')
    }
    return { started: performance.now(), from: microsNow(), cpu: cpuSeconds(child.pid), redisCpu: redisCpuSeconds(redisPort), calls: commandCalls(redisPort), micros: commandMicros(redisPort), memory: usedMemory(redisPort) }
  }
  if (part === 'drain') {
    const api = startSystem('api', redisPort, port, null)
    await until('the system', apiUp)
    const created = createFor3s(url)
    api.kill('SIGTERM')
    await api.exited
    child = startSystem('worker', redisPort, port, profileDir)
    await until('the first tenth of the jobs completed', () => completedInRedis(redisPort) >= created / 10, 60_000)
    before = snapshot()
    const completedBefore = completedInRedis(redisPort)
    await until('nine tenths of the jobs completed', () => completedInRedis(redisPort) >= created * 0.9, 300_000)
    jobs = completedInRedis(redisPort) - completedBefore
  } else {
    child = startSystem(part === 'create' ? 'api' : 'all', redisPort, port, profileDir)
    await until('the system', apiUp)
    before = snapshot()
    jobs = createFor3s(url)
    if (part === 'all') await until('every accepted job completed', async () => await completed() >= jobs, 300_000)
  }
  const to = microsNow()
  const seconds = (performance.now() - before.started) / 1000
  const cpuMicros = (cpuSeconds(child.pid) - before.cpu) * 1e6 / jobs
  const redisCpuMicros = (redisCpuSeconds(redisPort) - before.redisCpu) * 1e6 / jobs
  const callsAfter = commandCalls(redisPort)
  /** @type {Array<[string, number]>} */
  const perCommand = Object.entries(callsAfter).map(([name, n]) => /** @type {[string, number]} */ ([name, (n - (before.calls[name] ?? 0)) / jobs])).filter(([, n]) => n >= 0.01).sort((a, b) => b[1] - a[1])
  const microsAfter = commandMicros(redisPort)
  const microsPerCommand = Object.entries(microsAfter).map(([name, us]) => /** @type {[string, number]} */ ([name, (us - (before.micros[name] ?? 0)) / jobs])).filter(([, us]) => us >= 0.1).sort((a, b) => b[1] - a[1])
  if (slowlog) redisCli(redisPort, 'CONFIG', 'SET', 'slowlog-log-slower-than', '-1')
  const scripts = slowlog ? await scriptTimes(redisPort) : []
  // The log's entries are not the jobs' memory.
  if (slowlog) redisCli(redisPort, 'SLOWLOG', 'RESET')
  const memory = (usedMemory(redisPort) - before.memory) / jobs
  const byKind = part === 'all' ? memoryByKind(redisPort) : new Map()
  child.kill('SIGTERM')
  await child.exited
  const rate = { all: 'jobs/s end to end', create: 'creates/s (no runner)', drain: 'jobs/s drained by the runner alone (10th to 90th percent)' }[part]
  console.log(`${system}, ${progressWrites} progress writes, ${part}: ${jobs} jobs, ${(jobs / seconds).toFixed(0)} ${rate}, ${cpuMicros.toFixed(0)} µs server CPU per job, ${redisCpuMicros.toFixed(0)} µs Redis CPU per job`)
  // Both well under a core while the jobs wait: each side waits for the other's turn.
  console.log(`Busy: the system's process ${(cpuMicros * jobs / seconds / 1e4).toFixed(0)}% of a core, Redis ${(redisCpuMicros * jobs / seconds / 1e4).toFixed(0)}%`)
  if (profiling) {
    const profileFile = join(profileDir, readdirSync(profileDir)[0])
    if (process.env.PROFILE_OUT !== undefined) copyFileSync(profileFile, process.env.PROFILE_OUT)
    const profile = JSON.parse(readFileSync(profileFile, 'utf8'))
    const window = samplesWithin(profile, before.from, to)
    console.log(`CPU self time by package (busy samples): ${selfTimeByPackage(profile, window).join(', ')}`)
    console.log(`Its own hottest functions (self time, share of busy samples): ${ownHotFunctions(profile, window).join(', ')}`)
  }
  console.log(`Redis commands per job: ${perCommand.reduce((sum, [, n]) => sum + n, 0).toFixed(1)} (${perCommand.map(([name, n]) => `${name} ${n.toFixed(2)}`).join(', ')})`)
  console.log(`Redis time per job by command, µs (FCALL and EVALSHA include their script's commands): ${microsPerCommand.map(([name, us]) => `${name} ${us.toFixed(1)}`).join(', ')}`)
  if (slowlog) console.log(`Redis time per script call (SLOWLOG): ${scripts.join('; ')}`)
  if (part === 'all') console.log(`Redis memory per job: ${memory.toFixed(0)} bytes; MEMORY USAGE by key: ${[...byKind].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([kind, bytes]) => `${kind} ${(bytes / jobs).toFixed(0)}`).join(', ')}`)
} finally {
  await cleanup()
}
