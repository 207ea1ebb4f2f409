// npm run chaos [fault ...]: for each fault, replicas of the built service (3, or an API and two
// workers) on a Redis of their own (npm run chaos:cluster: on a 3+3 Redis Cluster, 6 shards), jobs created and polled through the HTTP API while the fault happens, then the count of
// what went wrong: lost, stuck, concurrent runs, jobs completed twice and runs started after the
// job was written completed (reruns; from the replicas' own logs), attempts over the max,
// regressions and confident 404s seen by polling clients. Faults include a Redis that goes back
// in time (a failover to a lagging replica, a restart from an older snapshot) and one refusing
// writes (MISCONF); and a rolling restart during research jobs, which must send the pages and the
// LLM no request more than the same jobs without it (rolling-restart-steps). Starts everything
// it needs on free loopback ports and cleans up after itself, also when it fails.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Deployment, KEYS, ON_CLUSTER, summaryLine } from './lib/deployment.mjs'
import { Processes, cleanUpOnSignals, until } from './lib/processes.mjs'
import { PAGES, startCountingLlm, startPageSite } from './lib/step-counting.mjs'

const JOBS = Number(process.env.CHAOS_JOBS ?? 150)
const MISCONF_MS = Number(process.env.CHAOS_MISCONF_MS ?? 20_000)
/** rolling-restart-steps: research jobs of six pages each. */
const STEP_JOBS = Number(process.env.CHAOS_STEP_JOBS ?? 30)
const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'chaos-'))
const processes = new Processes(root)

async function threeReplicas (deployment, options = {}) {
  for (const name of ['replica-a', 'replica-b', 'replica-c']) await deployment.startReplica(name, options[name] ?? {})
}

/**
 * rolling-restart-steps: the same research jobs (six local pages each, a fake LLM) run twice, on
 * a Redis and 3 replicas of their own each time: once undisturbed (the baseline), once through
 * a rolling restart of the 3 replicas. Every page fetch and LLM request is a checkpointed step,
 * so the two runs must cost the site and the LLM exactly as many requests (issue #26).
 */
async function rollingRestartSteps (d) {
  const ROLLED = ['replica-a', 'replica-b', 'replica-c']
  const SHUTDOWN_MS = 5000
  const LEASE_LOST = 'job stopped: lease lost; this worker writes nothing more'
  const jobIndex = (job) => /^Job (\d+):/.exec(job.query)?.[1]
  const site = await startPageSite({ minDelayMs: 150, maxDelayMs: 300 })
  const llm = await startCountingLlm()
  // The steps alone are measured: the shared cache would hide a page fetched twice. The pages'
  // delay keeps jobs mid-run, not RESEARCH_STEP_DELAY_MS: a paced engine (src/research/paced.ts)
  // gives the engine no `step`, so nothing would be checkpointed (CHAOS_STEP_DELAY_MS shows it).
  const env = {
    RESEARCH_ENGINE: 'research',
    ALLOW_PRIVATE_URLS: 'true',
    LLM_BASE_URL: llm.baseUrl,
    LLM_MODEL: 'fake-model',
    CACHE_ENABLED: 'false',
    // Short, yet long enough that a busy machine (starved main threads) loses no lease: a run
    // cut off by a lost lease loses its step in flight, which would be counted here too.
    JOB_LEASE_MS: '5000',
    // At SIGTERM a step in flight gets half of this to finish and be kept (else it is cut off and
    // done again): 2.5 s, for a page read whose HTML threads (niced) wait on a busy machine.
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS),
    RESEARCH_STEP_DELAY_MS: process.env.CHAOS_STEP_DELAY_MS ?? '0'
  }
  const bodyOf = (k) => ({ query: `Job ${k}: how should retries use backoff and jitter?`, depth: 'standard', sources: ['urls'], urls: site.pagesOf(k), max_sources: 6 })
  const baseline = new Deployment({ name: `${d.name}-baseline`, work, processes, env })
  const problems = []
  try {
    await baseline.startRedis()
    await threeReplicas(baseline)
    await baseline.create(STEP_JOBS, 'job', bodyOf)
    const baselineOpen = await baseline.drain([], 60_000)
    const baselineDone = [...(await baseline.records()).values()].filter((job) => job.status === 'completed').length
    for (const replica of baseline.live()) await baseline.kill(replica.name)
    const baselineFetches = site.total()
    // Undisturbed, every job reads each of its pages once: anything else and there is nothing to compare with.
    if (baselineOpen.length > 0 || baselineDone !== STEP_JOBS) problems.push(`baseline: ${baselineDone} of ${STEP_JOBS} jobs completed (${baselineOpen.length} not final)`)
    if (baselineFetches !== STEP_JOBS * PAGES.length) problems.push(`baseline: ${baselineFetches} page fetches, not ${STEP_JOBS} x ${PAGES.length} (leases lost: ${baseline.logged(LEASE_LOST)})`)
    if (problems.length > 0) return { problems, baseline_fetches: baselineFetches, baseline_llm_requests: llm.total() }
    const baselineLlm = llm.total()
    const baselineLlmKinds = { ...llm.requests }
    const baselineLeasesLost = baseline.logged(LEASE_LOST)
    site.reset()
    llm.reset()

    d.env = { ...d.env, ...env }
    await d.startRedis()
    await threeReplicas(d)
    await d.create(STEP_JOBS, 'job', bodyOf)
    d.startPolling(2)
    // Each replica reads its first pages before the restart begins: a replica starts its HTML
    // threads on its first page, which takes a busy machine more than the second a step gets
    // at shutdown (SHUTDOWN_TIMEOUT_MS / 2), and that step would be cut off and done again.
    // A replica has when a job it runs asked for its second page.
    const warm = new Set()
    await until('every replica to have read a page', async () => {
      for (const job of (await d.records()).values()) {
        if (job.status === 'processing' && site.requests.has(`/${jobIndex(job)}/p2.html`)) warm.add(job.worker)
      }
      return ROLLED.every((name) => warm.has(name))
    }, 20_000)
    // The rolling restart: each replica SIGTERMed, its replacement started and healthy, the next a moment later.
    for (const name of ROLLED) {
      const sent = Date.now()
      const exited = d.kill(name, 'SIGTERM').then((exit) => ({ ...exit, afterMs: Date.now() - sent }))
      await d.startReplica(`${name}-2`)
      const exit = await exited
      if (exit.code !== 0 || exit.afterMs > SHUTDOWN_MS + 1000) problems.push(`${name} did not shut down cleanly within ${SHUTDOWN_MS / 1000 + 1} s (exit ${exit.code ?? exit.signal} after ${exit.afterMs} ms)`)
      await sleep(300)
    }
    const open = await d.drain([], 60_000)
    const records = await d.records()
    const completed = [...records.values()].filter((job) => job.status === 'completed').length
    if (open.length > 0 || completed !== STEP_JOBS) problems.push(`${STEP_JOBS - completed} of ${STEP_JOBS} jobs not completed`)
    const fetches = site.total()
    const llmRequests = llm.total()
    const stepsRunTwice = (fetches - baselineFetches) + (llmRequests - baselineLlm)
    const HANDED_BACK = 'job handed back at shutdown'
    const handedBack = d.logged(HANDED_BACK)
    const handedBackBy = ROLLED.map((name) => `${name.slice(-1)}:${d.logged(HANDED_BACK, name)}`).join(',')
    const leasesLost = d.logged(LEASE_LOST)
    const stepsReused = [...records.values()].reduce((sum, job) => sum + (job.result?.usage?.steps_reused ?? 0), 0)
    if (stepsRunTwice > 0) {
      // Which jobs did work again, and the attempts they took: where to look in the logs.
      const attempts = new Map([...records.values()].map((job) => [jobIndex(job), job.attempt_history.map((a) => `${a.worker}:${a.outcome}`).join(',')]))
      const again = new Map()
      for (const [path, n] of site.requests) {
        const job = /^\/(\d+)\//.exec(path)?.[1]
        if (n > 1 && job !== undefined) again.set(job, (again.get(job) ?? 0) + n - 1)
      }
      const jobs = [...again].map(([job, n]) => `job ${job} +${n} (${attempts.get(job)})`)
      problems.push(`${stepsRunTwice} steps run twice; pages fetched again: ${jobs.slice(0, 6).join(' | ') || 'none'}; LLM requests ${JSON.stringify(llm.requests)} vs baseline ${JSON.stringify(baselineLlmKinds)}`)
    }
    if (stepsRunTwice < 0) problems.push(`${-stepsRunTwice} fewer page fetches and LLM requests than the baseline: the runs did not do the same work`)
    if (handedBack === 0) problems.push('no job was handed back at shutdown: the restart hit no running job and proved nothing')
    return {
      problems,
      fetches,
      llm_requests: llmRequests,
      baseline_fetches: baselineFetches,
      baseline_llm_requests: baselineLlm,
      steps_run_twice: stepsRunTwice,
      handed_back: handedBack,
      handed_back_by: handedBackBy,
      steps_reused: stepsReused,
      leases_lost: leasesLost,
      baseline_leases_lost: baselineLeasesLost
    }
  } finally {
    await baseline.close().catch(() => {})
    await site.close()
    await llm.close()
  }
}

/** Each fault: set up, create and poll, break something, recover; returns extra summary fields and problems. */
const FAULTS = {
  // A replica kill -9'd, Redis restarted with AOF, another replica SIGTERMed and replaced.
  'kill-restart-rolling': async (d) => {
    await d.startRedis({ appendOnly: true })
    await threeReplicas(d)
    await d.create(JOBS)
    d.startPolling()
    await sleep(1500)
    await d.kill('replica-a')
    await sleep(1500)
    await d.redis.shutdown()
    await sleep(300)
    await d.redis.start()
    await sleep(1500)
    const sent = Date.now()
    const exit = await d.kill('replica-b', 'SIGTERM')
    const problems = exit.code !== 0 || Date.now() - sent > 3000 ? [`replica-b did not shut down cleanly within 3 s (${exit.code})`] : []
    await d.startReplica('replica-d')
    // On one Redis, polls wait out the restart (REDIS_READ_WAIT_MS) and none answers 503. A
    // Cluster answers CLUSTERDOWN for a couple of seconds more while the restarted master
    // rejoins: polls outlasting the wait answer 503 with Retry-After there (docs/scaling.md).
    return { problems, strict5xx: !ON_CLUSTER }
  },
  // One replica's wall clock 10 s fast for the whole run.
  'skewed-clock': async (d) => {
    await d.startRedis()
    await threeReplicas(d, { 'replica-c': { skewMs: 10_000 } })
    await d.create(JOBS)
    d.startPolling()
    return {}
  },
  // One replica's link to Redis stops moving bytes for 10 s, then delivers what it held.
  'half-open-link': async (d) => {
    await d.startRedis()
    await threeReplicas(d, { 'replica-c': { proxy: true } })
    await d.create(JOBS / 2)
    d.startPolling()
    await sleep(1500)
    const link = d.replicas.get('replica-c').proxy
    link.stall()
    await d.create(JOBS / 2, 'during the cut')
    await sleep(10_000)
    link.resume()
    return {}
  },
  // What can still be lost: a replica cut off from Redis accepts jobs, then dies before it can
  // hand them over. Those jobs (and only those) are lost; other replicas answer 503, not 404.
  'cut-off-replica-dies': async (d) => {
    await d.startRedis()
    await threeReplicas(d, { 'replica-c': { proxy: true } })
    await d.create(JOBS / 2)
    d.startPolling()
    await sleep(1500)
    d.replicas.get('replica-c').proxy.stall()
    const before = new Set(d.accepted.keys())
    await d.create(30, 'during the cut')
    const heldOnlyByC = [...d.accepted].filter(([id, creator]) => !before.has(id) && creator === 'replica-c').map(([id]) => id)
    await sleep(1000)
    await d.kill('replica-c')
    d.replicas.get('replica-c').proxy.resume()
    await d.create(JOBS / 2, 'after')
    return { expectedLost: heldOnlyByC }
  },
  // ROLE split: one API process that runs nothing, two workers; one worker kill -9'd mid-run.
  'roles-worker-killed': async (d) => {
    await d.startRedis()
    await d.startReplica('api', { role: 'api' })
    await d.startReplica('worker-a', { role: 'worker' })
    await d.startReplica('worker-b', { role: 'worker' })
    await d.create(JOBS)
    d.startPolling()
    await sleep(1500)
    await d.kill('worker-a')
    await d.drain()
    const runs = d.runs()
    const cut = new Set(runs.filter((r) => r.worker === 'worker-a' && r.end === d.replicas.get('worker-a').killedAt).map((r) => r.job))
    const records = await d.records()
    const finishedByB = [...cut].filter((id) => records.get(id)?.status === 'completed' && records.get(id)?.attempt_history.at(-1)?.worker === 'worker-b').length
    const ranOnApi = runs.filter((r) => r.worker === 'api').length
    const problems = []
    if (ranOnApi > 0) problems.push(`${ranOnApi} runs on the api process (ROLE=api runs nothing)`)
    if (cut.size === 0) problems.push('no job was running on worker-a when it was killed: the fault tested nothing')
    if (finishedByB < cut.size) problems.push(`${cut.size - finishedByB} of the ${cut.size} jobs cut short on worker-a were not finished by worker-b`)
    return { problems, strict5xx: true, runs_on_api: ranOnApi, cut_on_killed_worker: cut.size, finished_by_other: finishedByB }
  },
  // A 3+3 Redis Cluster with the jobs over 6 shards: a manual failover of one master, then
  // another master kill -9'd (its replica takes over after the node timeout).
  'cluster-failover': async (d) => {
    await d.startCluster(6)
    await threeReplicas(d)
    await d.create(JOBS)
    d.startPolling()
    await sleep(1500)
    const first = d.cluster.masters()[0]
    await d.cluster.failover(first)
    await sleep(1500)
    // A master whose replica has its data: one still syncing could not take over, and the
    // whole cluster would answer CLUSTERDOWN (a fault of the test set-up, not of the service).
    await d.cluster.waitReplicasSynced()
    const second = d.cluster.masters().find((m) => m.port !== first.port)
    await d.cluster.server(second.port).kill()
    await until('a replica took over the killed master', () => d.cluster.masters().every((m) => m.port !== second.port) && d.cluster.masters().length === 3, 20_000)
    const sizes = d.cluster.dbsizes()
    const problems = Object.values(sizes).some((n) => n === 0) ? [`a master holds no keys: ${JSON.stringify(sizes)}`] : []
    return { problems, keys_by_master: Object.values(sizes).join('/') }
  },
  // Redis stopped (SIGSTOP) for 5 s.
  'redis-pause': async (d) => {
    await d.startRedis()
    await threeReplicas(d)
    await d.create(JOBS)
    d.startPolling()
    await sleep(2000)
    d.redis.pause()
    await sleep(5000)
    d.redis.resume()
    return {}
  },
  // Redis restarted without persistence: it comes back empty.
  'redis-restart-empty': async (d) => {
    await d.startRedis()
    await threeReplicas(d)
    await d.create(JOBS)
    d.startPolling()
    await sleep(2500)
    await d.redis.restart()
    const back = Date.now()
    const ids = [...d.accepted.keys()]
    for (;;) {
      const admin = await d.admin()
      const present = (await admin.mGet(ids.map((id) => KEYS.job(id)))).filter((raw) => raw !== null).length
      if (present === ids.length || Date.now() - back > 10_000) return { back_in_redis_s: ((Date.now() - back) / 1000).toFixed(1), problems: present === ids.length ? [] : [`${ids.length - present} jobs not back in Redis within 10 s`] }
      await sleep(100)
    }
  },
  // Redis full under noeviction for 5 s: creates meanwhile must answer 503, and nothing accepted is lost.
  // Deployed with a maxmemory, as a Redis that fills up is: every create is checked against it, so
  // the lower limit set below applies at once (a replica that read "no maxmemory" trusts that for a
  // second: docs/guarantees.md, rule 12).
  'redis-full': async (d) => {
    await d.startRedis({ extraArgs: ['--maxmemory', '256mb'] })
    await threeReplicas(d)
    await d.create(JOBS / 2)
    d.startPolling()
    const admin = await d.admin()
    await admin.set('ballast', 'x'.repeat(4 * 1024 * 1024))
    await admin.configSet('maxmemory', '2mb')
    const accepted = d.accepted.size
    await d.create(30, 'while full')
    const acceptedWhileFull = d.accepted.size - accepted
    await sleep(5000)
    await admin.del('ballast')
    await admin.configSet('maxmemory', '256mb')
    await d.create(JOBS / 2, 'after')
    const problems = acceptedWhileFull > 0 ? [`${acceptedWhileFull} creates answered 202 while Redis was full`] : []
    // Past the admission limit (REDIS_ADMIT_MEMORY_PERCENT of maxmemory) creates answer store_full.
    if ((d.refused['503 store_full'] ?? 0) !== 30) problems.push(`expected 30 answers 503 store_full, got ${JSON.stringify(d.refused)}`)
    return { problems }
  },
  // A Redis Cluster endpoint with a key prefix that has no hash tag: the keys of one script
  // fall into different slots, and every script is refused with CROSSSLOT.
  'cluster-endpoint': async (d) => {
    await d.startRedis({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] })
    const admin = await d.admin()
    await admin.sendCommand(['CLUSTER', 'ADDSLOTSRANGE', '0', '16383'])
    await threeReplicas(d, Object.fromEntries(['replica-a', 'replica-b', 'replica-c'].map((name) => [name, { env: { REDIS_KEY_PREFIX: 'dr:' } }])))
    await d.create(30)
    const health = await (await fetch(`${d.live()[0].url}/health`)).json()
    const problems = []
    if (d.accepted.size > 0) problems.push(`${d.accepted.size} creates answered 202 on a store that refuses every write`)
    if (health.status !== 'degraded' || !/CROSSSLOT/.test(health.redis.writes_refused ?? '')) problems.push(`/health did not say why: ${JSON.stringify(health.redis)}`)
    return { problems, health: health.status }
  },
  // A failover to a replica that lagged: writes of the last 2 s reached the master only, then
  // the master dies and the endpoint moves to the promoted replica, which has older data.
  'replica-failover-lagging': async (d) => {
    await d.startRedisWithReplica()
    await threeReplicas(d)
    await d.create(JOBS)
    d.startPolling()
    // In sync first, so what the promoted replica lacks is exactly what the stall held back.
    await until('the Redis replica to catch up', async () => { await d.redisReplica.caughtUpWith(d.redis); return true }, 20_000)
    await sleep(1500)
    d.replicationLink.stall()
    await sleep(2000)
    await d.redis.kill()
    await d.promoteReplica()
    return await d.lossReported()
  },
  // Redis crashes and comes back from a snapshot taken 1.5 s earlier (no AOF): jobs finished
  // since are unfinished again in Redis, though clients saw them completed.
  'restart-older-snapshot': async (d) => {
    await d.startRedis({ snapshots: true })
    await threeReplicas(d)
    await d.create(JOBS)
    d.startPolling()
    await sleep(2000)
    await d.redis.snapshot()
    await sleep(1500)
    await d.redis.kill()
    await d.redis.start()
    return await d.lossReported()
  },
  // Redis refuses every write (MISCONF: snapshots failing) for 20 s while runs finish: a finished
  // run whose write is refused must be written later, not thrown away and run again.
  'misconf-writes': async (d) => {
    await d.startRedis({ snapshots: true })
    await threeReplicas(d)
    await d.create(JOBS)
    d.startPolling()
    await sleep(1500)
    await d.redis.breakPersistence()
    await sleep(MISCONF_MS)
    await d.redis.restorePersistence()
    return { misconf_s: MISCONF_MS / 1000, strictReruns: true }
  },
  // A rolling restart of the 3 replicas while 30 research jobs run: as many page fetches and LLM
  // requests as the same jobs cost with no restart (each is a checkpointed step, done once per job).
  'rolling-restart-steps': rollingRestartSteps,
  // No fault: 600 creates at once on 3 replicas on this machine. None may fall back to memory.
  'create-burst': async (d) => {
    await d.startRedis()
    await threeReplicas(d, Object.fromEntries(['replica-a', 'replica-b', 'replica-c'].map((name) => [name, { env: { RESEARCH_ENGINE: 'noop', RUNNER_CONCURRENCY: '16' } }])))
    await Promise.all(d.live().map(async () => await d.create(200, 'burst')))
    d.startPolling()
    let fallbackWrites = 0
    for (const replica of d.live()) {
      const metrics = await (await fetch(`${replica.url}/metrics`)).text()
      fallbackWrites += Number(/^store_fallback_operations_total\{operation="write"\} (\d+)/m.exec(metrics)?.[1] ?? 0)
    }
    return { fallback_writes: fallbackWrites, problems: fallbackWrites > 0 ? [`${fallbackWrites} creates went to memory with Redis up`] : [] }
  }
}

async function cleanup () {
  await processes.killAll()
  rmSync(work, { recursive: true, force: true })
}
cleanUpOnSignals(cleanup)

// The faults that mean the same on a Cluster (chaos:cluster): the others cut one Redis off
// through a TCP proxy (a Cluster client reaches every node directly, past any proxy), empty or
// fill the one Redis, or are about a single Redis given a Cluster's address. cluster-failover
// runs on a Cluster anyway, in `npm run chaos`; `npm run chaos:cluster -- cluster-failover` runs it here.
const ON_A_CLUSTER = ['kill-restart-rolling', 'skewed-clock', 'roles-worker-killed', 'redis-pause', 'create-burst']
const CLUSTER_ONLY = ['cluster-failover']
const known = ON_CLUSTER ? [...ON_A_CLUSTER, ...CLUSTER_ONLY] : Object.keys(FAULTS)
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ON_CLUSTER ? ON_A_CLUSTER : known
let failed = false
const lines = []
for (const name of chosen) {
  const fault = known.includes(name) ? FAULTS[name] : undefined
  if (fault === undefined) {
    console.error(`chaos: unknown fault ${name}${ON_CLUSTER ? ' on a Cluster' : ''}; known: ${known.join(', ')}`)
    failed = true
    continue
  }
  const deployment = new Deployment({ name, work, processes })
  try {
    const { problems = [], strict5xx = false, strictReruns = false, expectedLost = [], ...extra } = await fault(deployment)
    const open = await deployment.drain(expectedLost)
    if (deployment.polling) {
      // Keep polling a moment after the drain: a regression would show after the end.
      await sleep(1000)
      await deployment.stopPolling()
    }
    const { summary, problems: found } = await deployment.report({ ...extra, drained: open.length === 0 }, expectedLost)
    if (strict5xx && summary.polls_503 > 0) found.push(`${summary.polls_503} polls answered 503`)
    if (strictReruns && summary.reruns_unwritten > 0) found.push(`${summary.reruns_unwritten} runs redone after a run's finished work was not written`)
    const all = [...problems, ...found]
    const line = summaryLine(name, summary)
    lines.push(line)
    console.log(line)
    if (all.length > 0) {
      failed = true
      console.error(`chaos[${name}]: FAILED\n  ${all.slice(0, 20).join('\n  ')}`)
    }
  } catch (err) {
    failed = true
    console.error(`chaos[${name}]: FAILED: ${err.stack ?? err}`)
  } finally {
    await deployment.stopPolling().catch(() => {})
    await processes.killAll()
    await deployment.close().catch(() => {})
  }
}
console.log(failed ? `chaos: FAILED (logs kept in ${work})` : `chaos: ${lines.length} faults passed, 0 failed`)
if (!failed) rmSync(work, { recursive: true, force: true })
process.exit(failed ? 1 : 0)
