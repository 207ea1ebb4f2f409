// What tracing costs per research job (issue #28), off against on, in the same run. Runnable
// alone (`node bench/tracing-cost.mjs`, after a build), prints JSON; `npm run bench` runs it and
// adds its row (`npm run bench -- tracing` runs only it). Starts its own Redis (a temp dir, a
// free port), a local site, a fake OpenAI-compatible LLM (recorded answers) and an OTLP/HTTP
// sink that accepts and counts what it is sent, then the built server (`node dist/server.js`):
// - off: no OTEL_* variable (the default);
// - on: OTEL_EXPORTER_OTLP_ENDPOINT set to the sink, the SDK's defaults otherwise (http/protobuf,
//   always-on sampling) but batches every 200 ms, so every span is exported within the measured
//   time: the cost an operator turning it on pays;
// alternately, ROUNDS times each, every run on an emptied Redis with JOBS jobs of six pages and
// three LLM calls (CACHE_ENABLED=false, so every job does all its work). The server's CPU time
// (/proc) from the first create until the last completion and the sink quiet, per job: median
// of the rounds. One more
// run with http/json counts the spans per job (those carrying its job.id, and all of them). And the span helpers' own cost with tracing off,
// per call, against calling the work directly (what every step pays when nobody traces).
// TRACING_BENCH_BEFORE=<checkout with a built dist/> adds a third mode, `before`: that build's
// server (one from before tracing, say), run the same way, so "off" can be held to it.
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BenchRun, fakeLlm, withBody } from '../scripts/lib/bench-fixtures.mjs'
import { cpuSeconds, freePort, until } from '../scripts/lib/processes.mjs'

const JOBS = Number(process.env.TRACING_BENCH_JOBS ?? 120)
const ROUNDS = Number(process.env.TRACING_BENCH_ROUNDS ?? 5)
const CONCURRENCY = 8
const BEFORE = process.env.TRACING_BENCH_BEFORE ?? ''
/** OTEL_BSP_SCHEDULE_DELAY when on: short, so a run's spans are exported within it (smaller, more batches than the 5 s default: if anything, dearer). */
const BATCH_DELAY_MS = 200
const PAGES = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']

const root = new URL('..', import.meta.url).pathname
const bench = new BenchRun(root, 'bench-tracing-')
const { work, processes, servers } = bench

const page = (j, p) => `<!doctype html><html><head><title>Retries ${j} ${p}</title></head><body><main><h1>Retry backoff notes, case ${j}, ${p}</h1>` +
  `<p>Retries with exponential backoff and jitter spread the load after an outage (case ${j}, note ${p}).</p>` +
  `<p>Jitter keeps clients that failed together from retrying together, so the service recovers (case ${j}, note ${p}).</p></main></body></html>`
const sink = { requests: 0, bytes: 0, spans: 0, jobSpans: 0 }

async function startFixtures () {
  const site = await servers.serve((req, res) => {
    const match = /^\/j(\d+)\/(p\d)\.html$/.exec(new URL(req.url ?? '/', 'http://x').pathname)
    if (match === null) res.writeHead(404).end()
    else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(match[1], match[2]))
  })
  const llm = await servers.serve(fakeLlm(root))
  const otlp = await servers.serve(withBody((req, res, body) => {
    sink.requests++
    sink.bytes += body.length
    if (String(req.headers['content-type']).includes('json')) {
      for (const rs of JSON.parse(body.toString()).resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const span of ss.spans ?? []) {
            sink.spans++
            if ((span.attributes ?? []).some((a) => a.key === 'job.id')) sink.jobSpans++
          }
        }
      }
    }
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json' }).end(String(req.headers['content-type']).includes('json') ? '{}' : '')
  }))
  return { site, llm, otlp }
}

/** One run: JOBS jobs created at once against the server with `env`; its CPU time and wall time until all completed. */
async function run (label, env, redisUrl, { site, llm }, serverScript = 'dist/server.js') {
  await bench.admin.sendCommand(['FLUSHALL'])
  const port = await freePort()
  const log = join(work, `server-${label}.log`)
  const server = processes.start('node', [serverScript], {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ENABLED: 'false',
    REDIS_URL: redisUrl,
    ALLOW_PRIVATE_URLS: 'true',
    LLM_BASE_URL: `${llm}/v1`,
    LLM_MODEL: 'fake-model',
    CACHE_ENABLED: 'false',
    RUNNER_CONCURRENCY: String(CONCURRENCY),
    ...env
  }, log)
  const url = `http://127.0.0.1:${port}`
  await until(`the service (${label})`, async () => (await fetch(`${url}/health`)).ok, 30_000)
  const sinkBefore = { ...sink }
  const cpuBefore = cpuSeconds(server.pid)
  const started = performance.now()
  const ids = await Promise.all(Array.from({ length: JOBS }, async (_v, j) => {
    const res = await fetch(`${url}/v1/research`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `How should retries use backoff and jitter? (case ${j})`, depth: 'standard', sources: ['urls'], urls: PAGES.map((p) => `${site}/j${j}/${p}.html`), max_sources: PAGES.length })
    })
    if (res.status !== 202) throw new Error(`${label}: create answered ${res.status}: ${await res.text()}`)
    return /** @type {{ job_id: string }} */ (await res.json()).job_id
  }))
  await until(`${label}: every job completed`, async () => (await (await fetch(`${url}/v1/stats`)).json()).counts.completed >= JOBS, 120_000)
  const seconds = (performance.now() - started) / 1000
  // The spans still batched are exported (and their CPU counted) before the clock stops: the
  // sink quiet for three batch delays; as long in either mode.
  let quietSince = performance.now()
  let heard = sink.bytes
  await until(`${label}: the exports done`, () => {
    if (sink.bytes !== heard) { heard = sink.bytes; quietSince = performance.now() }
    return performance.now() - quietSince > 3 * BATCH_DELAY_MS
  }, 30_000)
  const cpu = cpuSeconds(server.pid) - cpuBefore
  const failed = (await Promise.all(ids.map(async (id) => (await (await fetch(`${url}/v1/jobs/${id}`)).json()).status))).filter((s) => s !== 'completed')
  if (failed.length > 0) throw new Error(`${label}: ${failed.length} jobs not completed`)
  server.kill('SIGTERM')
  await server.exited
  // The SDK exports what it still holds at SIGTERM: give the sink a moment for the last batch.
  await sleep(200)
  return {
    label,
    seconds,
    cpuMsPerJob: cpu * 1000 / JOBS,
    exportedBytesPerJob: (sink.bytes - sinkBefore.bytes) / JOBS,
    spansPerJob: (sink.spans - sinkBefore.spans) / JOBS,
    jobSpansPerJob: (sink.jobSpans - sinkBefore.jobSpans) / JOBS
  }
}

/** ns per call of inSpan with tracing off, and of calling the work directly. */
async function helperCost () {
  const { inSpan } = await import(new URL('../dist/telemetry/spans.js', import.meta.url).href)
  const calls = 1_000_000
  const work = async () => 1
  const time = async (fn) => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) await fn()
    return Number(process.hrtime.bigint() - start) / calls
  }
  const samples = []
  for (let i = 0; i < 5; i++) samples.push({ direct: await time(work), off: await time(() => inSpan('step', {}, work)) })
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
  return { directNs: median(samples.map((s) => s.direct)), offNs: median(samples.map((s) => s.off)) }
}

try {
  const redisUrl = await bench.startRedis()
  const fixtures = await startFixtures()
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: fixtures.otlp, OTEL_BSP_SCHEDULE_DELAY: String(BATCH_DELAY_MS) }
  const runs = { off: [], on: [], before: [] }
  const modes = BEFORE === '' ? ['off', 'on'] : ['off', 'on', 'before']
  const serverOf = (mode) => mode === 'before' ? join(BEFORE, 'dist/server.js') : 'dist/server.js'
  // A warm-up run each (first runs pay for cold caches), then alternating rounds.
  await run('warm-up off', {}, redisUrl, fixtures)
  await run('warm-up on', on, redisUrl, fixtures)
  if (BEFORE !== '') await run('warm-up before', {}, redisUrl, fixtures, serverOf('before'))
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? modes : [...modes].reverse()
    for (const mode of order) runs[mode].push(await run(`${mode} ${r + 1}`, mode === 'on' ? on : {}, redisUrl, fixtures, serverOf(mode)))
  }
  const counted = await run('spans counted', { ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, redisUrl, fixtures)
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const off = median(runs.off.map((r) => r.cpuMsPerJob))
  const onMs = median(runs.on.map((r) => r.cpuMsPerJob))
  const helpers = await helperCost()
  console.log(JSON.stringify({
    jobs: JOBS,
    rounds: ROUNDS,
    concurrency: CONCURRENCY,
    cpuMsPerJob: { off, on: onMs, offRounds: runs.off.map((r) => r.cpuMsPerJob), onRounds: runs.on.map((r) => r.cpuMsPerJob) },
    ...(BEFORE === '' ? {} : { before: { dir: BEFORE, cpuMsPerJob: median(runs.before.map((r) => r.cpuMsPerJob)), rounds: runs.before.map((r) => r.cpuMsPerJob), offRatio: off / median(runs.before.map((r) => r.cpuMsPerJob)) } }),
    ratio: onMs / off,
    addedCpuMsPerJob: onMs - off,
    secondsPerRun: { off: median(runs.off.map((r) => r.seconds)), on: median(runs.on.map((r) => r.seconds)) },
    exportedBytesPerJob: median(runs.on.map((r) => r.exportedBytesPerJob)),
    // All spans exported during the run (the bench's own polls of /v1/stats are requests too), and those carrying a job.id.
    spansPerJob: counted.spansPerJob,
    jobSpansPerJob: counted.jobSpansPerJob,
    helpers
  }, null, 2))
} finally {
  await bench.cleanup()
}
