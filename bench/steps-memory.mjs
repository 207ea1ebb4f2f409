// Redis memory of research jobs with checkpointed steps (issue #26), against what a finished job
// held before them. Runnable alone (`node bench/steps-memory.mjs`, after a build), prints JSON;
// `npm run bench` runs it and adds its row. Starts its own Redis (a temp dir, a free port), a
// local site (six pages per job, each job its own) and a fake OpenAI-compatible LLM answering
// from the recorded responses in test/fixtures/llm, then the built server (`node dist/server.js`)
// twice on an emptied Redis:
// - baseline: CACHE_ENABLED=false. Steps cannot be turned off, but they are dropped when a job
//   ends, so a finished job holds what it held before #26: its record `<prefix>job:<id>` and its
//   event log `<prefix>job:<id>:log`.
// - with steps: the defaults (shared cache on). A finished job's record, log and `:steps` hash if
//   one is left; the shared cache's keys (`<prefix>cache:*`) are counted apart, per job.
// Both runs make the same JOBS jobs (same queries, same pages, same answers: the same reports).
// While the jobs run, every `:steps` hash is sampled with MEMORY USAGE; the peak of each is its
// job's figure while running. Cleans up (servers, Redis, temp dir) also when it fails.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BenchRun, fakeLlm } from '../scripts/lib/bench-fixtures.mjs'
import { freePort, until } from '../scripts/lib/processes.mjs'

const JOBS = Number(process.env.STEPS_BENCH_JOBS ?? 20)
const CONCURRENCY = Number(process.env.STEPS_BENCH_CONCURRENCY ?? 4)
/** Time the site takes per page and the fake LLM per answer, so the sampler sees jobs mid-run. */
const PAGE_DELAY_MS = Number(process.env.STEPS_BENCH_PAGE_DELAY_MS ?? 30)
const LLM_DELAY_MS = Number(process.env.STEPS_BENCH_LLM_DELAY_MS ?? 150)
const SAMPLE_EVERY_MS = 20
const PREFIX = 'dr:{0}:'
const PAGES = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']

const root = new URL('..', import.meta.url).pathname
const bench = new BenchRun(root, 'bench-steps-')
const { work, processes, servers } = bench

/** Job `j`'s page `p`: text of its own, so no job's read is another's cached one. */
function page (j, p) {
  return `<!doctype html><html><head><title>Retries ${j} ${p}</title></head><body><main><h1>Retry backoff notes, case ${j}, ${p}</h1>` +
    `<p>Retries with exponential backoff and jitter spread the load after an outage (case ${j}, note ${p}).</p>` +
    `<p>Jitter keeps clients that failed together from retrying together, so the service recovers (case ${j}, note ${p}).</p>` +
    `<p>A retry budget caps the extra load retries may add; errors no retry can fix fail at once (case ${j}, note ${p}).</p></main></body></html>`
}

const llmRequests = { plan: 0, reflect: 0, report: 0 }

async function startSite () {
  return await servers.serve((req, res) => {
    const match = /^\/j(\d+)\/(p\d)\.html$/.exec(new URL(req.url ?? '/', 'http://x').pathname)
    setTimeout(() => {
      if (match === null) res.writeHead(404).end()
      else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(match[1], match[2]))
    }, PAGE_DELAY_MS)
  })
}

/** The fake LLM (scripts/lib/bench-fixtures.mjs), counting the requests by kind. */
async function startLlm () {
  return await servers.serve(fakeLlm(root, { delayMs: LLM_DELAY_MS, counts: llmRequests }))
}

const command = async (/** @type {string[]} */ args) => await bench.admin.sendCommand(args)
/** MEMORY USAGE of a key, every element counted (SAMPLES 0); null when it does not exist. */
const usage = async (key) => /** @type {number | null} */ (await command(['MEMORY', 'USAGE', key, 'SAMPLES', '0']))

/**
 * One run: the server with `env` on an emptied Redis, JOBS jobs created at once and run to
 * completion while the `:steps` hashes are sampled, then each finished job's keys measured.
 */
async function run (label, env, redisUrl, site, llm) {
  await command(['FLUSHALL'])
  const port = await freePort()
  const log = join(work, `server-${label}.log`)
  const server = processes.start('node', ['dist/server.js'], {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ENABLED: 'false',
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: PREFIX,
    ALLOW_PRIVATE_URLS: 'true',
    LLM_BASE_URL: `${llm}/v1`,
    LLM_MODEL: 'fake-model',
    RUNNER_CONCURRENCY: String(CONCURRENCY),
    ...env
  }, log)
  const url = `http://127.0.0.1:${port}`
  const died = server.exited.then(({ code, signal }) => { throw new Error(`the service (${label}) exited (${code ?? signal}): ${readFileSync(log, 'utf8').slice(-2000)}`) })
  died.catch(() => {})
  await Promise.race([until(`the service (${label})`, async () => (await fetch(`${url}/health`)).ok, 30_000), died])
  const started = performance.now()

  const ids = []
  for (let j = 0; j < JOBS; j++) {
    const res = await fetch(`${url}/v1/research`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `How should retries use backoff and jitter? (case ${j})`, depth: 'standard', sources: ['urls'], urls: PAGES.map((p) => `${site}/j${j}/${p}.html`), max_sources: PAGES.length })
    })
    if (res.status !== 202) throw new Error(`${label}: create answered ${res.status}: ${await res.text()}`)
    ids.push(/** @type {{ job_id: string }} */ (await res.json()).job_id)
  }

  // Sample the steps hashes of the jobs still running until every job is final.
  /** @type {Map<string, { bytes: number, fields: number }>} */
  const peaks = new Map()
  let peakTotal = { bytes: 0, hashes: 0 }
  let samples = 0
  /** @type {any[]} */
  let jobs = []
  for (;;) {
    const keys = /** @type {string[]} */ (await command(['KEYS', `${PREFIX}job:*:steps`]))
    const sizes = await Promise.all(keys.map(async (key) => ({ key, bytes: await usage(key), fields: Number(await command(['HLEN', key])) })))
    let total = 0
    let hashes = 0
    for (const { key, bytes, fields } of sizes) {
      if (bytes === null) continue
      total += bytes
      hashes++
      if (bytes > (peaks.get(key)?.bytes ?? 0)) peaks.set(key, { bytes, fields })
    }
    samples++
    if (total > peakTotal.bytes) peakTotal = { bytes: total, hashes }
    jobs = await Promise.all(ids.map(async (id) => await (await fetch(`${url}/v1/jobs/${id}`)).json()))
    if (jobs.every((job) => ['completed', 'failed', 'cancelled'].includes(job.status))) break
    if (performance.now() - started > 45_000) throw new Error(`${label}: jobs still running after 45 s: ${jobs.map((job) => job.status).join(' ')}`)
    await sleep(SAMPLE_EVERY_MS)
  }
  const seconds = (performance.now() - started) / 1000
  const notCompleted = jobs.filter((job) => job.status !== 'completed')
  if (notCompleted.length > 0) throw new Error(`${label}: ${notCompleted.length} jobs did not complete: ${JSON.stringify(notCompleted[0].error ?? notCompleted[0].status)}`)

  // The finished jobs' keys: record, event log, steps (if left).
  const perJob = await Promise.all(ids.map(async (id) => ({
    record: await usage(`${PREFIX}job:${id}`) ?? 0,
    log: await usage(`${PREFIX}job:${id}:log`) ?? 0,
    steps: await usage(`${PREFIX}job:${id}:steps`)
  })))
  const cacheKeys = /** @type {string[]} */ (await command(['KEYS', `${PREFIX}cache:*`]))
  const cacheBytes = (await Promise.all(cacheKeys.map(usage))).reduce((a, b) => a + (b ?? 0), 0)
  /** Every key left, with job ids and cache digests masked: what a finished job leaves, by kind. */
  const shapes = {}
  for (const key of /** @type {string[]} */ (await command(['KEYS', '*']))) {
    const shape = key.replace(/job:[0-9a-f-]{36}/, 'job:<id>').replace(/cache:(\w+):.+/, 'cache:$1:<digest>')
    shapes[shape] = (shapes[shape] ?? 0) + 1
  }
  const usageOf = jobs[0].result?.usage ?? {}

  server.kill('SIGTERM')
  await server.exited

  const mean = (values) => values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length
  const peakList = [...peaks.values()]
  return {
    jobs: ids.length,
    seconds,
    reportBytes: Math.round(mean(jobs.map((job) => JSON.stringify(job.result ?? null).length))),
    usage: { pages_fetched: usageOf.pages_fetched, llm_calls: usageOf.llm_calls, cached_pages: usageOf.cached_pages, cached_llm_calls: usageOf.cached_llm_calls, steps_reused: usageOf.steps_reused },
    finished: {
      recordBytes: mean(perJob.map((k) => k.record)),
      logBytes: mean(perJob.map((k) => k.log)),
      stepsBytes: mean(perJob.map((k) => k.steps ?? 0)),
      stepsKeysLeft: perJob.filter((k) => k.steps !== null).length,
      bytesPerJob: mean(perJob.map((k) => k.record + k.log + (k.steps ?? 0)))
    },
    cache: { keys: cacheKeys.length, bytes: cacheBytes, bytesPerJob: cacheBytes / ids.length },
    running: {
      samples,
      jobsSampled: peaks.size,
      peakBytesPerJobMean: mean(peakList.map((p) => p.bytes)),
      peakBytesPerJobMax: Math.max(0, ...peakList.map((p) => p.bytes)),
      peakFieldsMax: Math.max(0, ...peakList.map((p) => p.fields)),
      peakTotalBytes: peakTotal.bytes,
      peakTotalHashes: peakTotal.hashes
    },
    keyShapes: shapes
  }
}

let failed = false
try {
  const started = performance.now()
  const redisUrl = await bench.startRedis()
  const site = await startSite()
  const llm = await startLlm()

  const baseline = await run('baseline', { CACHE_ENABLED: 'false' }, redisUrl, site, llm)
  const steps = await run('steps', {}, redisUrl, site, llm)
  const out = {
    jobs: JOBS,
    concurrency: CONCURRENCY,
    pagesPerJob: PAGES.length,
    ratio: steps.finished.bytesPerJob / baseline.finished.bytesPerJob,
    baseline,
    steps,
    llmRequests,
    seconds: (performance.now() - started) / 1000
  }
  process.stdout.write(JSON.stringify(out) + '\n')
} catch (err) {
  failed = true
  // Stopped by a signal: its handler cleans up and exits; what failed after is its doing.
  if (!bench.cleaningUp) process.stderr.write(`steps-memory: FAILED: ${err.stack ?? err}\n`)
} finally {
  await bench.cleanup()
}
process.exit(failed ? 1 : 0)
