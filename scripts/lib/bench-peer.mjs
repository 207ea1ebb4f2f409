// The service side by side with its peer, Fastify + BullMQ (bench/bullmq-peer.mjs), in the same
// run: each on a Redis of its own (same redis-server), rounds alternating, best of the rounds.
// Measured per system: create req/s, end-to-end jobs/s with 0 and 3 progress writes per job (16
// jobs at once), poll req/s of a finished job, server CPU per job, Redis commands per job (INFO
// commandstats) and Redis memory per finished job (INFO used_memory).

/**
 * @typedef {{ rps: number, ok: number, p50: number, p99: number, cpuMicros?: number | null }} LoadResult
 * @typedef {{
 *   load: (url: string, options?: { method?: string, body?: string, pid?: number, seconds?: number }) => LoadResult,
 *   start: (command: string, args: string[], env?: Record<string, string>) => import('./processes.mjs').TrackedChild,
 *   startService: (env: Record<string, string>) => Promise<{ url: string, child: import('./processes.mjs').TrackedChild, stop: () => Promise<void> }>,
 *   freePort: () => Promise<number>,
 *   until: (what: string, check: () => unknown, timeoutMs?: number) => Promise<void>,
 *   redisCli: (port: number, ...args: string[]) => string,
 *   cpuSeconds: (pid: number) => number | null,
 *   completedJob: (url: string) => Promise<{ job_id: string }>,
 *   work: string,
 *   seconds: number,
 *   rounds: number
 * }} PeerDeps
 */

const CREATE_BODY = JSON.stringify({ query: 'end to end', depth: 'quick' })

/** Sum of every command's calls so far, from INFO commandstats. */
function totalCalls (redisCli, port) {
  let total = 0
  for (const match of redisCli(port, 'INFO', 'commandstats').matchAll(/calls=(\d+)/g)) total += Number(match[1])
  return total
}

function usedMemory (redisCli, port) {
  return Number(/used_memory:(\d+)/.exec(redisCli(port, 'INFO', 'memory'))?.[1] ?? 0)
}

/** @param {PeerDeps} deps */
async function startPeer (deps, redisPort, progressWrites) {
  const port = await deps.freePort()
  const child = deps.start('node', ['bench/bullmq-peer.mjs'], { PORT: String(port), REDIS_PORT: String(redisPort), PROGRESS_WRITES: String(progressWrites), CONCURRENCY: '16' })
  const url = `http://127.0.0.1:${port}`
  await deps.until('the BullMQ peer', async () => (await fetch(`${url}/stats`)).ok)
  return { url, child, completed: async () => (await (await fetch(`${url}/stats`)).json()).completed, stop: async () => { child.kill('SIGTERM'); await child.exited } }
}

/** @param {PeerDeps} deps */
async function startOurs (deps, redisPort, progressWrites) {
  const service = await deps.startService({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, RUNNER_CONCURRENCY: '16', NOOP_PROGRESS_WRITES: String(progressWrites) })
  return { ...service, completed: async () => (await (await fetch(`${service.url}/v1/stats`)).json()).counts.completed }
}

/**
 * One system, one progress setting, from an empty Redis: creates for `seconds`, the clock stopped
 * when every accepted job is completed; then (once) polls of a finished job.
 * @param {PeerDeps} deps
 */
async function measure (deps, system, redisPort, progressWrites, withPolls) {
  deps.redisCli(redisPort, 'FLUSHALL')
  const target = system === 'peer' ? await startPeer(deps, redisPort, progressWrites) : await startOurs(deps, redisPort, progressWrites)
  try {
    const pid = target.child.pid
    const callsBefore = totalCalls(deps.redisCli, redisPort)
    const memoryBefore = usedMemory(deps.redisCli, redisPort)
    const cpuBefore = deps.cpuSeconds(pid)
    const started = performance.now()
    const created = deps.load(`${target.url}/v1/research`, { method: 'POST', body: CREATE_BODY, seconds: deps.seconds })
    await deps.until('every accepted job completed', async () => await target.completed() >= created.ok, 300_000)
    const seconds = (performance.now() - started) / 1000
    const cpuMicros = ((deps.cpuSeconds(pid) ?? 0) - (cpuBefore ?? 0)) * 1e6 / created.ok
    const commands = (totalCalls(deps.redisCli, redisPort) - callsBefore) / created.ok
    const memory = (usedMemory(deps.redisCli, redisPort) - memoryBefore) / created.ok
    let poll = null
    if (withPolls) {
      const { job_id: id } = await deps.completedJob(target.url)
      deps.load(`${target.url}/v1/jobs/${id}`, { seconds: 2 })
      poll = deps.load(`${target.url}/v1/jobs/${id}`, { pid, seconds: deps.seconds }).rps
    }
    return { jobs: created.ok, createRps: created.rps, jobsPerSecond: created.ok / seconds, cpuMicros, commands, memory, poll }
  } finally {
    await target.stop()
  }
}

/**
 * Runs the comparison; returns the figures, best of `rounds` per system (highest rate, lowest
 * cost), with the rounds alternating service and peer.
 * @param {PeerDeps} deps
 */
export async function peerComparison (deps) {
  const ports = { service: await deps.freePort(), peer: await deps.freePort() }
  const servers = Object.values(ports).map((port) => deps.start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', deps.work, '--save', '', '--appendonly', 'no']))
  try {
    for (const port of Object.values(ports)) await deps.until('redis for the peer comparison', () => deps.redisCli(port, 'PING') === 'PONG')
    const runs = { service: { 0: [], 3: [] }, peer: { 0: [], 3: [] } }
    for (let round = 0; round < deps.rounds; round++) {
      for (const progressWrites of [0, 3]) {
        for (const system of round % 2 === 0 ? ['service', 'peer'] : ['peer', 'service']) {
          const run = await measure(deps, system, ports[system], progressWrites, progressWrites === 0)
          runs[system][progressWrites].push(run)
          console.log(`bench: ${system}, ${progressWrites} progress writes: ${run.createRps.toFixed(0)} creates/s, ${run.jobsPerSecond.toFixed(0)} jobs/s end to end, ${run.cpuMicros.toFixed(0)} µs CPU/job, ${run.commands.toFixed(1)} Redis commands/job, ${run.memory.toFixed(0)} bytes/job${run.poll === null ? '' : `, polls ${run.poll.toFixed(0)} req/s`}`)
        }
      }
    }
    const best = (list, key, lowest = false) => list.map((run) => run[key]).filter((v) => v !== null).reduce((a, b) => (lowest ? Math.min(a, b) : Math.max(a, b)))
    const figures = (system) => ({
      createRps: best(runs[system][0], 'createRps'),
      e2e0: best(runs[system][0], 'jobsPerSecond'),
      e2e3: best(runs[system][3], 'jobsPerSecond'),
      poll: best(runs[system][0], 'poll'),
      cpu0: best(runs[system][0], 'cpuMicros', true),
      cpu3: best(runs[system][3], 'cpuMicros', true),
      commands: best(runs[system][0], 'commands', true),
      memory: best(runs[system][0], 'memory', true)
    })
    return { service: figures('service'), peer: figures('peer'), runs }
  } finally {
    for (const server of servers) server.kill('SIGTERM')
    await Promise.all(servers.map((server) => server.exited))
  }
}

/** The RESULTS.md section: the figures side by side, the ratios and each target met or missed. */
export function peerSection ({ service, peer }, fmt, seconds, rounds) {
  const ratio = (a, b) => a / b
  const verdict = (ok) => (ok ? 'met' : 'MISSED')
  const rows = [
    ['create req/s', service.createRps, peer.createRps, '>= 1.0x', ratio(service.createRps, peer.createRps) >= 1],
    ['end to end jobs/s, 0 progress writes', service.e2e0, peer.e2e0, '>= 1.0x', ratio(service.e2e0, peer.e2e0) >= 1],
    ['end to end jobs/s, 3 progress writes', service.e2e3, peer.e2e3, '>= 1.0x', ratio(service.e2e3, peer.e2e3) >= 1],
    ['poll of a finished job req/s', service.poll, peer.poll, '>= 1.2x', ratio(service.poll, peer.poll) >= 1.2],
    ['server CPU per job, 0 progress writes (µs)', service.cpu0, peer.cpu0, '', null],
    ['server CPU per job, 3 progress writes (µs)', service.cpu3, peer.cpu3, '', null],
    ['Redis commands per job, 0 progress writes', service.commands, peer.commands, '<= 1.0x', service.commands <= peer.commands],
    ['Redis memory per finished job (bytes)', service.memory, peer.memory, '<= 1.0x', service.memory <= peer.memory]
  ]
  return [
    '## Side by side with Fastify + BullMQ',
    '',
    `\`bench/bullmq-peer.mjs\`: Fastify + BullMQ (ioredis), POST -> \`queue.add\` (a random UUID as job id, records kept 24 h), GET -> \`Job.fromId\`, a \`Worker\` (concurrency 16) in the same process doing the no-op engine's work. Each system on a Redis of its own, from empty; the load tool creates jobs for ${seconds} s, and the clock stops when every accepted job is completed. ${rounds} rounds alternating which system goes first; best of the rounds (highest rate, lowest cost). Commands per job: INFO commandstats calls during the run / jobs (the idle upkeep included). Memory per job: INFO used_memory after the run minus before / jobs.`,
    '',
    '| measure | this service | Fastify + BullMQ | ratio | target | result |',
    '| --- | ---: | ---: | ---: | --- | --- |',
    ...rows.map(([name, ours, theirs, target, ok]) => `| ${name} | ${fmt(ours, ours < 100 ? 1 : 0)} | ${fmt(theirs, theirs < 100 ? 1 : 0)} | ${fmt(ratio(ours, theirs), 2)}x | ${target} | ${ok === null ? '' : verdict(ok)} |`)
  ].join('\n')
}
