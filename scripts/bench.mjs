// npm run bench: the service against a bare-Fastify baseline in the same run, on this machine.
// Starts its own Redis, the built service and the baseline on free loopback ports, drives them
// from a separate load process (wrk when installed, autocannon otherwise), writes
// bench/RESULTS.md and prints the table. Cleans up after itself, also when it fails.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { cpus, totalmem, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Processes, cleanUpOnSignals, cpuSeconds, freePort, redisCli, until } from './lib/processes.mjs'
import { conditionalFinalPolls, crossReplicaDelivery, idleStreams, longPollFollow } from './lib/bench-push.mjs'
import { peerComparison, peerSection } from './lib/bench-peer.mjs'

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const E2E_SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 3)
const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'bench-'))
const processes = new Processes(root)
const start = (command, args, env = {}) => processes.start(command, args, env)
cleanUpOnSignals(async () => {
  await processes.killAll()
  rmSync(work, { recursive: true, force: true })
})
const useWrk = spawnSync('wrk', ['--version']).error === undefined
const tool = useWrk ? 'wrk' : 'autocannon'

/**
 * Runs the load tool against one URL; returns req/s, latency percentiles in ms, the count of
 * 2xx answers and, when `pid` is given, that process's CPU microseconds per request.
 */
/** @param {string} url @param {{ method?: string, body?: string, pid?: number, seconds?: number }} [options] */
function load (url, { method = 'GET', body = undefined, pid = undefined, seconds = DURATION_S } = {}) {
  const cpuBefore = pid === undefined ? null : cpuSeconds(pid)
  const result = useWrk ? wrk(url, method, body, seconds) : autocannon(url, method, body, seconds)
  const cpuAfter = pid === undefined ? null : cpuSeconds(pid)
  result.cpuMicros = cpuBefore === null || cpuAfter === null ? null : (cpuAfter - cpuBefore) * 1e6 / Math.max(1, result.requests)
  return result
}
function wrk (url, method, body, seconds) {
  const script = join(work, 'request.lua')
  writeFileSync(script, [
    `wrk.method = "${method}"`,
    body === undefined ? '' : `wrk.body = ${JSON.stringify(body)}`,
    body === undefined ? '' : 'wrk.headers["Content-Type"] = "application/json"',
    'done = function(summary, latency, requests)',
    '  io.write(string.format("RESULT %f %f %f %d %d %d\\n", summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.requests))',
    'end'
  ].join('\n'))
  const out = execFileSync('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', script, url], { encoding: 'utf8' })
  const [rps, p50, p99, non2xx, socketErrors, requests] = /RESULT (\S+) (\S+) (\S+) (\d+) (\d+) (\d+)/.exec(out).slice(1).map(Number)
  return { rps, p50, p99, non2xx, socketErrors, requests, ok: requests - non2xx }
}
function autocannon (url, method, body, seconds) {
  const args = ['-c', String(CONNECTIONS), '-d', String(seconds), '-j', '-m', method]
  if (body !== undefined) args.push('-H', 'content-type=application/json', '-b', body)
  const out = execFileSync(join(root, 'node_modules/.bin/autocannon'), [...args, url], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  const result = JSON.parse(out)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, socketErrors: result.errors, requests: result.requests.total, ok: result['2xx'] }
}

/**
 * Runs `target` and the baseline alternately, ROUNDS times each, so both see the same machine
 * (a shared VM's speed drifts by a third within minutes). Reports the median round of each and
 * the median of the per-round ratios.
 */
function sideBySide (target, baseline) {
  const rounds = []
  for (let i = 0; i < ROUNDS; i++) {
    const base = load(baseline.url, { pid: baseline.pid })
    const run = load(target.url, { pid: target.pid })
    rounds.push({ base, run, ratio: run.rps / base.rps })
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const byRps = (key) => { const m = median(rounds.map((r) => r[key].rps)); return rounds.find((r) => r[key].rps === m)[key] }
  return {
    run: byRps('run'),
    base: byRps('base'),
    ratio: median(rounds.map((r) => r.ratio)),
    ratios: rounds.map((r) => r.ratio)
  }
}

async function startService (env) {
  const port = await freePort()
  const child = start('node', ['dist/server.js'], { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', RESEARCH_ENGINE: 'noop', RATE_LIMIT_ENABLED: 'false', SSE_MAX_STREAMS_PER_CLIENT: '5000', ...env })
  const url = `http://127.0.0.1:${port}`
  await until('the service', async () => (await fetch(`${url}/health`)).ok)
  return { url, child, stop: async () => { child.kill('SIGTERM'); await child.exited } }
}
async function completedJob (url) {
  const created = await (await fetch(`${url}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'How does the service keep polls cheap?', depth: 'standard' }) })).json()
  /** @type {any} */
  let job = null
  await until('a completed job', async () => (job = await (await fetch(`${url}/v1/jobs/${created.job_id}`)).json()).status === 'completed')
  return job
}
function commandCalls (port) {
  const calls = {}
  for (const line of redisCli(port, 'INFO', 'commandstats').split('\n')) {
    const match = /^cmdstat_(\w+):calls=(\d+)/.exec(line)
    if (match) calls[match[1]] = Number(match[2])
  }
  return calls
}
/** Round trips the service's Redis client made so far, by command (from its own /metrics). */
async function clientRoundTrips (url) {
  const text = await (await fetch(`${url}/metrics`)).text()
  const trips = {}
  for (const match of text.matchAll(/^redis_command_duration_seconds_count\{command="([^"]+)",ok="true"\} (\d+)/gm)) trips[match[1]] = Number(match[2])
  return trips
}
/** Counters once the service has answered everything a load run left in flight (GETs stop moving). */
async function settledRoundTrips (url) {
  let previous = await clientRoundTrips(url)
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300))
    const now = await clientRoundTrips(url)
    if ((now.GET ?? 0) + (now.MGET ?? 0) === (previous.GET ?? 0) + (previous.MGET ?? 0)) return now
    previous = now
  }
}
function delta (before, after) {
  const d = {}
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) d[k] = v - (before[k] ?? 0)
  return d
}

/**
 * End to end: the load tool creates jobs for E2E_SECONDS while the runner works; the clock stops
 * when `/v1/stats` counts every accepted job completed. jobs/s = accepted jobs / that time.
 */
async function e2e (redisPort, concurrency) {
  redisCli(redisPort, 'FLUSHALL')
  const service = await startService({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, RUNNER_CONCURRENCY: String(concurrency) })
  const cpuBefore = cpuSeconds(service.child.pid)
  const started = performance.now()
  const created = load(`${service.url}/v1/research`, { method: 'POST', body: JSON.stringify({ query: 'end to end', depth: 'quick' }), seconds: E2E_SECONDS })
  const submitted = performance.now()
  await until('every job completed', async () => (await (await fetch(`${service.url}/v1/stats`)).json()).counts.completed >= created.ok, 300_000)
  const done = performance.now()
  const cpuMicros = (cpuSeconds(service.child.pid) - cpuBefore) * 1e6 / created.ok
  await service.stop()
  return { jobs: created.ok, jobsPerSecond: created.ok / ((done - started) / 1000), submitSeconds: (submitted - started) / 1000, totalSeconds: (done - started) / 1000, cpuMicros }
}

/** `checks`: at least the target; `ceilings`: below the limit. */
function shortfalls (checks, ceilings = []) {
  const missed = checks.filter(([, value, target]) => value < target)
  const over = ceilings.filter(([, value, limit]) => value >= limit)
  if (missed.length + over.length === 0) return 'None: every target was met in this run.'
  return [
    ...missed.map(([name, value, target, unit]) => `- ${name}: ${value.toFixed(unit.startsWith('x') ? 2 : 0)}${unit} against ${target}${unit}, ${Math.round((1 - value / target) * 100)}% short.`),
    ...over.map(([name, value, limit, unit]) => `- ${name}: ${fmtNumber(value)}${unit} against < ${limit}${unit}, ${Math.round((value / limit - 1) * 100)}% over.`)
  ].join('\n')
}

const peerDeps = { load, start, startService, freePort, until, redisCli, cpuSeconds, completedJob, work, seconds: E2E_SECONDS, rounds: Number(process.env.BENCH_PEER_ROUNDS ?? 3) }
const fmtNumber = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

/**
 * Redis memory of research jobs with checkpointed steps (#26): `bench/steps-memory.mjs` in a
 * process of its own (its own Redis, site, fake LLM and service). Returns its table row and the
 * line for the method section.
 */
function stepsMemory () {
  const s = JSON.parse(execFileSync('node', ['bench/steps-memory.mjs'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'inherit'] }))
  const fmt = fmtNumber
  const run = s.steps.running
  const row = `| 8. Redis memory per finished research job with checkpointed steps (${s.jobs} jobs, ${s.pagesPerJob} pages + ${s.steps.usage.llm_calls} LLM calls each; ${s.steps.finished.stepsKeysLeft} \`:steps\` left) | ${fmt(s.steps.finished.bytesPerJob)} bytes (CACHE_ENABLED=false: ${fmt(s.baseline.finished.bytesPerJob)}) | | | ${fmt(s.ratio, 2)} | | <= 1.5x baseline | ${s.ratio <= 1.5 ? 'met' : 'MISSED'} |`
  const method = `- Steps memory: \`bench/steps-memory.mjs\`, its own Redis, a local site and a fake OpenAI-compatible LLM (recorded answers); ${s.jobs} research jobs (depth standard, ${s.pagesPerJob} pages of their own each, ${s.concurrency} at once) run through \`node dist/server.js\` twice, same queries and pages: with \`CACHE_ENABLED=false\` (baseline: what a finished job keeps without steps, its record \`job:<id>\` and event log \`job:<id>:log\`) and with the defaults (the same keys plus \`job:<id>:steps\` if left). \`MEMORY USAGE ... SAMPLES 0\` per key once every job completed; ratio = with steps / baseline (record ${fmt(s.steps.finished.recordBytes)} B, log ${fmt(s.steps.finished.logBytes)} B; the build before #26, 31911dc, run the same way once: 7,456 B, its record 256 B smaller, without the usage counts \`cached_pages\`, \`cached_llm_calls\`, \`steps_reused\`). While the jobs ran, every \`:steps\` hash was sampled every 20 ms (${fmt(run.samples)} samples): peak per running job ${fmt(run.peakBytesPerJobMean)} B on average, ${fmt(run.peakBytesPerJobMax)} B at most (${run.peakFieldsMax} steps), ${fmt(run.peakTotalBytes)} B for ${run.peakTotalHashes} running jobs at once. The shared cache, not in the ratio: ${fmt(s.steps.cache.bytesPerJob)} B per job (${fmt(s.steps.cache.keys)} \`cache:*\` keys for ${s.jobs} jobs).`
  return { ...s, row, method }
}

/**
 * What tracing costs per research job (#28): `bench/tracing-cost.mjs` in a process of its own
 * (its own Redis, site, fake LLM and OTLP sink). Returns its table row and the method line.
 */
function tracingCost () {
  const c = JSON.parse(execFileSync('node', ['bench/tracing-cost.mjs'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'inherit'] }))
  const fmt = fmtNumber
  const row = `| 9. server CPU per research job with tracing on (OTLP export, ${fmt(c.jobSpansPerJob)} spans per job) | ${fmt(c.cpuMsPerJob.on, 2)} ms (off: ${fmt(c.cpuMsPerJob.off, 2)} ms; +${fmt(c.addedCpuMsPerJob, 2)} ms) | | | ${fmt(c.ratio, 2)} | | measured (docs/operations.md) | |`
  const method = `- Tracing cost: \`bench/tracing-cost.mjs\`, its own Redis, a local site, a fake OpenAI-compatible LLM and an OTLP/HTTP sink; ${c.jobs} research jobs (six pages and three LLM calls each, \`CACHE_ENABLED=false\`, ${c.concurrency} at once) through \`node dist/server.js\`, tracing off (no \`OTEL_*\`) and on (\`OTEL_EXPORTER_OTLP_ENDPOINT\` = the sink, the SDK's defaults, http/protobuf, but batches every 200 ms, so every span is exported within the measured time), alternating, ${c.rounds} rounds each after a warm-up of each; the server's CPU time (/proc) from the first create until the last completion and the sink quiet, per job, median of the rounds (off ${c.cpuMsPerJob.offRounds.map((v) => fmt(v, 2)).join(', ')} ms; on ${c.cpuMsPerJob.onRounds.map((v) => fmt(v, 2)).join(', ')} ms). Exported ${fmt(c.exportedBytesPerJob)} bytes per job (protobuf); ${fmt(c.jobSpansPerJob, 1)} spans carry the job's id, ${fmt(c.spansPerJob, 1)} were exported per job in all (with the requests of the bench's own polls). With tracing off, the span helpers cost ${fmt(c.helpers.offNs)} ns per call against ${fmt(c.helpers.directNs)} ns for calling the work directly.`
  return { ...c, row, method }
}

const rows = []
const notes = []
let failed = false
try {
  // `npm run bench -- steps`: only the steps-memory row and its method line, printed, RESULTS.md untouched.
  if (process.argv.includes('steps')) {
    const steps = stepsMemory()
    console.log(`${steps.row}\n\n${steps.method}`)
    await processes.killAll()
    rmSync(work, { recursive: true, force: true })
    process.exit(0)
  }
  // `npm run bench -- tracing`: only the tracing-cost row and its method line, printed, RESULTS.md untouched.
  if (process.argv.includes('tracing')) {
    const tracing = tracingCost()
    console.log(`${tracing.row}\n\n${tracing.method}`)
    await processes.killAll()
    rmSync(work, { recursive: true, force: true })
    process.exit(0)
  }
  // `npm run bench -- peer`: only the side-by-side with Fastify + BullMQ, printed, RESULTS.md untouched.
  if (process.argv.includes('peer')) {
    console.log(peerSection(await peerComparison(peerDeps), fmtNumber, E2E_SECONDS, peerDeps.rounds))
    await processes.killAll()
    rmSync(work, { recursive: true, force: true })
    process.exit(0)
  }
  const redisPort = await freePort()
  const redis = start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', work, '--save', '', '--appendonly', 'no'])
  await until('redis', () => redisCli(redisPort, 'PING') === 'PONG')

  const service = await startService({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, RUNNER_CONCURRENCY: '16' })
  const job = await completedJob(service.url)
  const recordBody = JSON.stringify(job)
  const baselinePort = await freePort()
  const baselineChild = start('node', ['bench/baseline-server.mjs'], { PORT: String(baselinePort), BASELINE_BODY: recordBody })
  const baselineUrl = `http://127.0.0.1:${baselinePort}/record`
  await until('the baseline', async () => (await fetch(baselineUrl)).ok)

  console.log(`bench: ${tool}, ${CONNECTIONS} connections, ${DURATION_S} s per run, ${ROUNDS} rounds side by side with the baseline; record ${recordBody.length} bytes`)
  const baseline = { url: baselineUrl, pid: baselineChild.pid }
  const pollUrl = `${service.url}/v1/jobs/${job.job_id}`
  // Warm-up (JIT, connection pools): not measured.
  load(baselineUrl, { seconds: 2 })
  load(pollUrl, { seconds: 2 })
  const pollRedis = sideBySide({ url: pollUrl, pid: service.child.pid }, baseline)
  rows.push(['baseline: bare Fastify, same record (median round)', pollRedis.base, null, ''])
  rows.push(['1. poll of a finished job GET /v1/jobs/{id}, Redis up (final-record copy)', pollRedis.run, pollRedis.ratio, '>= 0.95x baseline'])
  console.log(`bench: poll with Redis ${pollRedis.run.rps.toFixed(0)} req/s, ${pollRedis.ratio.toFixed(2)}x the baseline`)

  // 5a. round trips per poll: counted by the service itself (its Redis client metrics) and by Redis
  const tripsBefore = await settledRoundTrips(service.url)
  let before = commandCalls(redisPort)
  for (let i = 0; i < 1000; i++) await (await fetch(pollUrl)).arrayBuffer()
  const pollCalls = delta(before, commandCalls(redisPort))
  const pollTripsByCommand = delta(tripsBefore, await clientRoundTrips(service.url))
  const pollTrips = ((pollTripsByCommand.GET ?? 0) + (pollTripsByCommand.MGET ?? 0)) / 1000
  notes.push(`Round trips the service made during 1000 sequential polls of the finished job, by command: ${JSON.stringify(pollTripsByCommand)} (a finished record is answered from the replica's copy while its notice subscriber is connected; claims and the epoch check are the idle replica's upkeep, not the polls); Redis's own INFO commandstats agrees: ${JSON.stringify(pollCalls)}.`)
  const conditional = await conditionalFinalPolls({ base: service.url, jobId: job.job_id, roundTrips: async () => await clientRoundTrips(service.url) })

  redis.kill('SIGKILL')
  await redis.exited
  await until('fallback mode', async () => (await (await fetch(`${service.url}/health`)).json()).store === 'memory')
  load(pollUrl, { seconds: 2 })
  const pollFallback = sideBySide({ url: pollUrl, pid: service.child.pid }, baseline)
  rows.push(['2. poll GET /v1/jobs/{id}, Redis down (fallback)', pollFallback.run, pollFallback.ratio, '>= 0.9x baseline'])
  console.log(`bench: poll in fallback ${pollFallback.run.rps.toFixed(0)} req/s, ${pollFallback.ratio.toFixed(2)}x the baseline`)
  await service.stop()
  baselineChild.kill('SIGTERM')

  const redis2 = start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', work, '--save', '', '--appendonly', 'no'])
  await until('redis again', () => redisCli(redisPort, 'PING') === 'PONG')
  const creator = await startService({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, RUNNER_CONCURRENCY: '16' })
  const create = load(`${creator.url}/v1/research`, { method: 'POST', body: JSON.stringify({ query: 'How fast can jobs be created?', depth: 'quick' }), pid: creator.child.pid })
  rows.push(['3. create POST /v1/research (no-op engine)', create, create.rps / pollRedis.base.rps, '>= 10,000 req/s'])
  console.log(`bench: create ${create.rps.toFixed(0)} req/s`)
  await creator.stop()

  // 5b. round trips per progress write: the store's own write path against this Redis
  // The built modules, typed from their sources (a clean clone type-checks before it builds).
  const fromDist = (/** @type {string} */ path) => new URL(`../dist/${path}`, import.meta.url).href
  const { RedisJobStore } = /** @type {typeof import('../src/store/redis.ts')} */ (await import(fromDist('store/redis.js')))
  const { createRedisClient } = /** @type {typeof import('../src/store/redis-client.ts')} */ (await import(fromDist('store/redis-client.js')))
  const { newJob } = /** @type {typeof import('../src/jobs/records.ts')} */ (await import(fromDist('jobs/records.js')))
  const client = createRedisClient({ url: `redis://127.0.0.1:${redisPort}`, rejectUnauthorized: true })
  await client.connect()
  const sent = {}
  const store = new RedisJobStore(client, { ttlSeconds: 86400, timeoutMs: 2000, onCommand: (command) => { sent[command] = (sent[command] ?? 0) + 1 } })
  /** A write the bench makes must land: its record, or a stop naming why. */
  const written = (/** @type {import('../src/store/job-store.ts').PutResult} */ result) => {
    if (!result.ok) throw new Error(`bench write refused: ${JSON.stringify(result)}`)
    return result.job
  }
  // Ten running jobs as the runner holds them, claimed and begun (the claim's token in each
  // record), 100 progress writes each: a log below JOB_EVENTS_MAX, as a job's is (past it, each
  // write also trims the log: one command more).
  const running = []
  for (let i = 0; i < 10; i++) {
    written(await store.put(newJob({ query: `write path ${i}`, depth: 'quick' }), 0, { enqueue: 'tail' }))
    const [claim] = await store.claim(60_000, 1, { worker: 'bench', maxAttempts: 3, step: 'Starting' })
    if (claim?.started !== true) throw new Error('bench claim did not begin the job')
    running.push({ job: claim.job, fence: claim.fence })
  }
  before = commandCalls(redisPort)
  for (const key of Object.keys(sent)) delete sent[key]
  for (let i = 0; i < 1000; i++) {
    const run = running[i % running.length]
    const patched = await store.patchProgress(run.job.job_id, run.fence, run.job.version, { progress: Math.min(99, Math.floor(i / 10)), step: `step ${i}`, now: Date.now() })
    if (patched.outcome !== 'written') throw new Error('bench progress write refused')
    run.job = { ...run.job, version: patched.version }
  }
  const held = running[0].job
  const writeCalls = delta(before, commandCalls(redisPort))
  const writeTrips = Object.values(sent).reduce((a, b) => a + b, 0) / 1000
  // The commands the script ran: all but the script's own call (FCALL, or EVALSHA with its
  // first EVAL) and INFO.
  const writeCommands = Object.entries(writeCalls).filter(([name]) => !['fcall', 'evalsha', 'eval', 'info'].includes(name)).reduce((a, [, n]) => a + n, 0) / 1000
  notes.push(`Round trips for 1000 progress writes through RedisJobStore: ${JSON.stringify(sent)}; inside Redis each runs the progress script, which INFO commandstats lists as: ${JSON.stringify(writeCalls)}.`)
  const redisRecordBytes = Number(redisCli(redisPort, 'MEMORY', 'USAGE', store.keys.job(held.job_id)))
  await client.close()
  redis2.kill('SIGTERM')
  await redis2.exited

  const redis3 = start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', work, '--save', '', '--appendonly', 'no'])
  await until('redis for e2e', () => redisCli(redisPort, 'PING') === 'PONG')
  const e2e1 = await e2e(redisPort, 1)
  const e2e16 = await e2e(redisPort, 16)

  // Push rows: idle streams, delivery across replicas, long polls.
  redisCli(redisPort, 'FLUSHALL')
  const still = await startService({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, RESEARCH_ENGINE: 'research', RESEARCH_STEP_DELAY_MS: '60000', RUNNER_CONCURRENCY: '1' })
  const idle = await idleStreams({ base: still.url, commandCalls: () => commandCalls(redisPort), seconds: Number(process.env.BENCH_IDLE_SECONDS ?? 20) })
  await still.stop()
  console.log(`bench: ${idle.streams} idle streams: ${idle.causedPerSecond.toFixed(2)} Redis commands/s caused by them`)
  redisCli(redisPort, 'FLUSHALL')
  const writer = await startService({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, RESEARCH_ENGINE: 'research', RESEARCH_STEP_DELAY_MS: '20', RUNNER_CONCURRENCY: '16' })
  const watcher = await startService({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, RESEARCH_ENGINE: 'research', RESEARCH_STEP_DELAY_MS: '20', RUNNER_CONCURRENCY: '1' })
  const delivery = await crossReplicaDelivery({ writer: writer.url, watcher: watcher.url })
  const follow = await longPollFollow({ base: watcher.url })
  await writer.stop()
  await watcher.stop()
  console.log(`bench: delivery across replicas p99 ${delivery.p99} ms; long poll ${follow.requests} requests for ${follow.changes} changes`)
  redis3.kill('SIGTERM')

  const peer = peerSection(await peerComparison(peerDeps), fmtNumber, E2E_SECONDS, peerDeps.rounds)

  const steps = stepsMemory()
  console.log(`bench: steps memory ${steps.ratio.toFixed(2)}x per finished job`)
  const tracing = tracingCost()
  console.log(`bench: tracing on ${tracing.ratio.toFixed(2)}x the CPU per research job`)
  const memory = JSON.parse(execFileSync('node', ['--expose-gc', 'bench/memory-probe.mjs'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH, RECORD: recordBody } }))

  const fmt = fmtNumber
  const verdict = (ok) => ok ? 'met' : 'MISSED'
  const micros = (us) => us === null || us === undefined ? '' : `${fmt(us)} µs`
  const table = [
    '| Scenario | req/s | p50 ms | p99 ms | ratio to baseline | server CPU per request | target | result |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows.map(([name, r, ratio, target]) => {
      const ok = target === '' ? null : target.startsWith('>= 10,000') ? r.rps >= 10_000 : ratio >= Number(/([\d.]+)x/.exec(target)[1])
      return `| ${name} | ${fmt(r.rps)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${ratio === null ? '1.00' : fmt(ratio, 2)} | ${micros(r.cpuMicros)} | ${target} | ${ok === null ? '' : verdict(ok)} |`
    }),
    `| 4a. end to end, RUNNER_CONCURRENCY=1: ${fmt(e2e1.jobs)} jobs created -> completed | ${fmt(e2e1.jobsPerSecond)} jobs/s | | | | ${micros(e2e1.cpuMicros)} per job | >= 5,000 jobs/s | ${verdict(e2e1.jobsPerSecond >= 5000)} |`,
    `| 4b. end to end, RUNNER_CONCURRENCY=16: ${fmt(e2e16.jobs)} jobs created -> completed | ${fmt(e2e16.jobsPerSecond)} jobs/s | | | | ${micros(e2e16.cpuMicros)} per job | >= 5,000 jobs/s | ${verdict(e2e16.jobsPerSecond >= 5000)} |`,
    `| 5a. Redis round trips per poll | ${fmt(pollTrips, 2)} | | | | | 1 | ${verdict(pollTrips <= 1.0001)} |`,
    `| 5b. Redis round trips per progress write | ${fmt(writeTrips, 2)} | | | | | 1 | ${verdict(writeTrips <= 1.0001)} |`,
    `| 5c. Redis commands per progress write (INFO commandstats, inside its one script) | ${fmt(writeCommands, 2)} | | | | | <= 5 | ${verdict(writeCommands <= 5)} |`,
    `| 7a. Redis commands per second caused by ${fmt(idle.streams)} idle event streams (${idle.seconds} s) | ${fmt(idle.causedPerSecond, 2)} | | | | | <= 1 | ${verdict(idle.causedPerSecond <= 1)} |`,
    `| 7b. event delivery, write on one replica to a stream on another: p99 (${fmt(delivery.events)} events) | ${fmt(delivery.p99)} ms (p50 ${fmt(delivery.p50)}) | | | | | < 50 ms | ${verdict(delivery.p99 < 50)} |`,
    `| 7c. long poll following a job: requests for its changes | ${follow.requests} for ${follow.changes} | | | | | <= changes + 1 | ${verdict(follow.requests <= follow.changes + 1)} |`,
    `| 7d. conditional poll of a finished job: Redis reads per 1000 (${conditional.notModified} answered 304) | ${fmt(conditional.redisReads)} | | | | | 0 | ${verdict(conditional.redisReads === 0 && conditional.notModified === 1000)} |`,
    `| 6a. heap per record in the Map (10k records) | ${fmt(memory.bytesPerRecord)} bytes | | | | | <= 2 KB | ${verdict(memory.bytesPerRecord <= 2048)} |`,
    `| 6b. Redis MEMORY USAGE of one record | ${fmt(redisRecordBytes)} bytes | | | | | | |`,
    steps.row,
    tracing.row
  ].join('\n')
  const errors = rows.filter(([, r]) => r.non2xx > 0 || r.socketErrors > 0).map(([name, r]) => `${name}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`)
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`
  const versions = `Node ${process.version}, ${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).split(' ').slice(0, 3).join(' ')}, ${useWrk ? spawnSync('wrk', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0].split(' Copyright')[0] : 'autocannon ' + JSON.parse(readFileSync(join(root, 'node_modules/autocannon/package.json'), 'utf8')).version}`
  const results = `# Benchmark results

Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}.

- Machine: ${machine}. Load generator, service, baseline and Redis share it.
- Versions: ${versions}.
- Load: ${tool} (${useWrk ? `\`wrk -t2 -c${CONNECTIONS} -d${DURATION_S}s\`` : `\`autocannon -c ${CONNECTIONS} -d ${DURATION_S}\``}) from a separate process. Polls run ${ROUNDS} round${ROUNDS === 1 ? '' : 's'} alternating with the baseline; the table shows the median round, and the ratio is the median of the per-round ratios (poll with Redis: ${pollRedis.ratios.map((r) => r.toFixed(2)).join(', ')}; fallback: ${pollFallback.ratios.map((r) => r.toFixed(2)).join(', ')}).
- Server CPU per request: user + system time of the server process (\`/proc/<pid>/stat\`) during the run, divided by the requests answered; the load tool and Redis are not counted.
- Service: \`node dist/server.js\` with \`RESEARCH_ENGINE=noop LOG_LEVEL=warn RATE_LIMIT_ENABLED=false\`, its own Redis (no persistence).
- Baseline: \`bench/baseline-server.mjs\`, a bare Fastify server answering a fixed copy of the same job record (${recordBody.length} bytes), measured in the same run.
- End to end: ${tool} creates jobs for ${E2E_SECONDS} s (${CONNECTIONS} connections) while the runner works; timed from the first request until \`/v1/stats\` counts every accepted job completed.
${steps.method}
${tracing.method}

${table}

${peer}

${errors.length > 0 ? `Errors during load: ${errors.join('; ')}.\n\n` : ''}Notes:
${notes.map((n) => `- ${n}`).join('\n')}
- Heap per record: ${memory.records} records of a finished no-op job (${memory.jsonBytes} bytes as JSON) put into \`MemoryJobStore\`, \`--expose-gc\`, heap delta / count.
- End to end detail: concurrency 1 took ${e2e1.totalSeconds.toFixed(1)} s (submitting ${e2e1.submitSeconds.toFixed(1)} s), concurrency 16 took ${e2e16.totalSeconds.toFixed(1)} s (submitting ${e2e16.submitSeconds.toFixed(1)} s).

## Missed targets: by how much, and why

${shortfalls([
    ['poll of a finished job with Redis', pollRedis.ratio, 0.95, 'x baseline'],
    ['poll in fallback', pollFallback.ratio, 0.9, 'x baseline'],
    ['create', create.rps, 10_000, ' req/s'],
    ['end to end (concurrency 16)', e2e16.jobsPerSecond, 5000, ' jobs/s']
  ], [['event delivery across replicas, p99', delivery.p99, 50, ' ms']])}

Why, as measured (server CPU per request in the table; \`perf record -e cpu-clock\` and
\`node --cpu-prof\` profiles of the service under the same load; \`strace -c\`):
- **Where a request's time goes.** Node is the bottleneck in every scenario (its process uses a
  whole core; wrk and Redis share the other). Per request the service and the baseline make the
  same system calls (one \`read\`, one \`writev\` per request; \`strace -c\`), and on this VM
  those calls, with the loopback TCP path they drive, are about half of the baseline's
  ${micros(pollRedis.base.cpuMicros)}. The rest of a poll's ${micros(pollRedis.run.cpuMicros)} is JavaScript spread thin
  over Fastify's hook chain, auth, the security headers, validating the id, the store lookup,
  the Redis client and the metrics histogram: no single function above ~2% of samples.
- **Polls of a finished job** are answered from the replica's own copy (a finished record
  changes only by a delete or a webhook's delivery state, and both publish a notice that drops
  the copy), serialized once per record object: no Redis round trip at all (row 5a), and a
  conditional poll answers 304 (row 7d). What is left is the HTTP path itself: routing with a
  parameter, validating it, the auth and metrics hooks, the security headers, the ETag and
  Retry-After headers, an async handler. An experiment with the logger, the security headers, the
  auth hook and the metrics hook all removed still cost about 38 µs per poll against the
  baseline's 30 µs (0.8x) in an earlier session.
- **Polls in fallback** (Redis down) serve the same copy; they also go through the store's gate
  (is Redis reachable, the breaker) and count a fallback read in the metrics.
- **Creates** cost ${micros(create.cpuMicros)} of server CPU each here, because the same process
  also runs the jobs being created (the claim that begins each one and the final write, which
  also claims the next). Creates vary the most between runs on this VM; the side-by-side
  section below compares them with Fastify + BullMQ measured in the same run.
- **End to end** costs ${micros(e2e16.cpuMicros)} of server CPU per job: the create, then one
  script per job that both ends the job before it on the same slot and claims and begins this
  one (lease, fencing token, processing record, history entry, status event), and the final
  write, a compare-and-set that also keeps the indexes, the event log, the webhook outbox and
  the change notice in step. At one core that bounds the
  service near ${fmt(1e6 / e2e16.cpuMicros)} jobs/s before Redis and the load tool take their share.
  Reaching 5,000 on one core needs at most 200 µs per job, with Redis and the load tool fed from
  the other core: fewer durable writes per job (no separate progress write for jobs that finish
  at once; measured at about a tenth of a no-op job's cost) and more than one Node process.
- **Event delivery across replicas** (row 7b) is as late as the longest stretch either replica's
  event loop is held up: the writer runs 16 research jobs at once, whose ranking and report
  writing are synchronous on its main thread, on the 2 cores that also run the other replica,
  Redis and the bench. Its p99 moves between runs of one build from under 30 ms to over 150 ms.
- A shared 2-core VM's speed drifts by a third within minutes; the bench alternates the service
  with the baseline and reports medians so that ratios compare like with like, but single
  numbers still move between runs.
`
  writeFileSync(join(root, 'bench/RESULTS.md'), results)
  console.log(table)
  console.log(peer)
  console.log('bench: wrote bench/RESULTS.md')
} catch (err) {
  failed = true
  console.error(`bench: FAILED: ${err.stack ?? err}`)
} finally {
  await processes.killAll()
  rmSync(work, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
