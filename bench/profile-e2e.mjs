// Where one system's end-to-end cost goes, for the "why" of the peer comparison in RESULTS.md:
//   node bench/profile-e2e.mjs [service|peer] [progress writes, default 0]
// Starts its own redis-server and the system (this service's dist/server.js with the no-op
// engine, or bench/bullmq-peer.mjs) under `node --cpu-prof`, creates jobs for 3 s with
// autocannon (50 connections, as the bench), waits until every accepted job is completed, and
// prints: jobs/s, server and Redis CPU per job, the CPU profile's self time by package, Redis commands
// per job by command (INFO commandstats) and Redis memory per job by kind of key (MEMORY USAGE).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Processes, cleanUpOnSignals, freePort, until } from '../scripts/lib/processes.mjs'

const system = process.argv[2] ?? 'service'
const progressWrites = process.argv[3] ?? '0'
const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'profile-e2e-'))
const processes = new Processes(root)
const cleanup = async () => { await processes.killAll(); rmSync(work, { recursive: true, force: true }) }
cleanUpOnSignals(cleanup)

const redisCli = (port, ...args) => execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] }).trim()
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const commandCalls = (port) => Object.fromEntries([...redisCli(port, 'INFO', 'commandstats').matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1], Number(m[2])]))
/** Microseconds Redis spent in each command (a script's own commands are counted in its EVALSHA too). */
const commandMicros = (port) => Object.fromEntries([...redisCli(port, 'INFO', 'commandstats').matchAll(/cmdstat_(\w+):calls=\d+,usec=(\d+)/g)].map((m) => [m[1], Number(m[2])]))
const usedMemory = (port) => Number(/used_memory:(\d+)/.exec(redisCli(port, 'INFO', 'memory'))?.[1])
/** Seconds of CPU redis-server has used (main thread and its others: user + sys). */
const redisCpuSeconds = (port) => {
  const info = redisCli(port, 'INFO', 'cpu')
  return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1])
}

/** Self time by package (node_modules/<name>), this service's own code, Node's internals, GC and idle. */
function selfTimeByPackage (profile) {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
  const totals = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
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
function ownHotFunctions (profile) {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
  const totals = new Map()
  let busy = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = byNode.get(profile.samples[i])?.callFrame
    if (frame?.functionName === '(idle)') continue
    busy += profile.timeDeltas[i] ?? 0
    const url = frame?.url ?? ''
    if (!url.includes('/dist/') && !url.includes('/bench/')) continue
    const name = `${frame.functionName || '(anonymous)'} ${url.replace(/.*\/(dist|bench)\//, '$1/')}:${frame.lineNumber + 1}`
    totals.set(name, (totals.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([name, us]) => `${name} ${(100 * us / busy).toFixed(1)}%`)
}

try {
  const redisPort = await freePort()
  processes.start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', work, '--save', '', '--appendonly', 'no'])
  await until('redis', () => redisCli(redisPort, 'PING') === 'PONG')
  const port = await freePort()
  const profileDir = join(work, 'cpu')
  const child = system === 'peer'
    ? processes.start('node', ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, 'bench/bullmq-peer.mjs'], { PORT: String(port), REDIS_PORT: String(redisPort), PROGRESS_WRITES: progressWrites, CONCURRENCY: '16' })
    : processes.start('node', ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, 'dist/server.js'], {
      PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', RESEARCH_ENGINE: 'noop', RATE_LIMIT_ENABLED: 'false', REDIS_URL: `redis://127.0.0.1:${redisPort}`, RUNNER_CONCURRENCY: '16', NOOP_PROGRESS_WRITES: progressWrites
    })
  const url = `http://127.0.0.1:${port}`
  const completed = async () => system === 'peer' ? (await (await fetch(`${url}/stats`)).json()).completed : (await (await fetch(`${url}/v1/stats`)).json()).counts.completed
  await until('the system', async () => (await fetch(system === 'peer' ? `${url}/stats` : `${url}/health`)).ok)
  const callsBefore = commandCalls(redisPort)
  const microsBefore = commandMicros(redisPort)
  const memoryBefore = usedMemory(redisPort)
  const cpuBefore = cpuSeconds(child.pid)
  const redisCpuBefore = redisCpuSeconds(redisPort)
  const started = performance.now()
  const load = JSON.parse(execFileSync(join(root, 'node_modules/.bin/autocannon'), ['-j', '-c', '50', '-d', '3', '-m', 'POST', '-H', 'content-type=application/json', '-b', JSON.stringify({ query: 'end to end', depth: 'quick' }), `${url}/v1/research`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
  const jobs = load['2xx']
  await until('every accepted job completed', async () => await completed() >= jobs, 300_000)
  const seconds = (performance.now() - started) / 1000
  const cpuMicros = (cpuSeconds(child.pid) - cpuBefore) * 1e6 / jobs
  const redisCpuMicros = (redisCpuSeconds(redisPort) - redisCpuBefore) * 1e6 / jobs
  const callsAfter = commandCalls(redisPort)
  /** @type {Array<[string, number]>} */
  const perCommand = Object.entries(callsAfter).map(([name, n]) => /** @type {[string, number]} */ ([name, (n - (callsBefore[name] ?? 0)) / jobs])).filter(([, n]) => n >= 0.01).sort((a, b) => b[1] - a[1])
  const microsAfter = commandMicros(redisPort)
  const microsPerCommand = Object.entries(microsAfter).map(([name, us]) => /** @type {[string, number]} */ ([name, (us - (microsBefore[name] ?? 0)) / jobs])).filter(([, us]) => us >= 0.1).sort((a, b) => b[1] - a[1])
  const memory = (usedMemory(redisPort) - memoryBefore) / jobs
  const keys = redisCli(redisPort, '--scan').split('\n').filter(Boolean)
  const usage = execFileSync('redis-cli', ['-p', String(redisPort)], { input: keys.map((key) => `MEMORY USAGE "${key}"\n`).join(''), encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n').map(Number)
  const byKind = new Map()
  keys.forEach((key, i) => {
    const kind = key.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, '<id>')
    byKind.set(kind, (byKind.get(kind) ?? 0) + (usage[i] ?? 0))
  })
  child.kill('SIGTERM')
  await child.exited
  const profile = JSON.parse(readFileSync(join(profileDir, readdirSync(profileDir)[0]), 'utf8'))
  console.log(`${system}, ${progressWrites} progress writes: ${jobs} jobs, ${(jobs / seconds).toFixed(0)} jobs/s end to end, ${cpuMicros.toFixed(0)} µs server CPU per job, ${redisCpuMicros.toFixed(0)} µs Redis CPU per job`)
  console.log(`CPU self time by package (busy samples): ${selfTimeByPackage(profile).join(', ')}`)
  console.log(`Its own hottest functions (self time, share of busy samples): ${ownHotFunctions(profile).join(', ')}`)
  console.log(`Redis commands per job: ${perCommand.reduce((sum, [, n]) => sum + n, 0).toFixed(1)} (${perCommand.map(([name, n]) => `${name} ${n.toFixed(2)}`).join(', ')})`)
  console.log(`Redis time per job by command, µs (EVALSHA includes its script's commands): ${microsPerCommand.map(([name, us]) => `${name} ${us.toFixed(1)}`).join(', ')}`)
  console.log(`Redis memory per job: ${memory.toFixed(0)} bytes; MEMORY USAGE by key: ${[...byKind].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([kind, bytes]) => `${kind} ${(bytes / jobs).toFixed(0)}`).join(', ')}`)
} finally {
  await cleanup()
}
