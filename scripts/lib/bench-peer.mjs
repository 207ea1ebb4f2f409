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
      commands3: best(runs[system][3], 'commands', true),
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
    ['Redis commands per job, 3 progress writes', service.commands3, peer.commands3, '', null],
    // The script's own call included (BullMQ's updateProgress is a script too); row 5c counts the commands inside it.
    ['Redis commands per progress write (3 writes less 0, / 3, the script call included)', (service.commands3 - service.commands) / 3, (peer.commands3 - peer.commands) / 3, '', null],
    ['Redis memory per finished job (bytes)', service.memory, peer.memory, '<= 1.0x', service.memory <= peer.memory]
  ]
  const missed = rows.filter((row) => row[4] === false).map(([name]) => name)
  return [
    '## Side by side with Fastify + BullMQ',
    '',
    `\`bench/bullmq-peer.mjs\`: Fastify + BullMQ (ioredis), POST -> \`queue.add\` (a random UUID as job id, records kept 24 h), GET -> \`Job.fromId\`, a \`Worker\` (concurrency 16) in the same process doing the no-op engine's work. Each system on a Redis of its own, from empty; the load tool creates jobs for ${seconds} s, and the clock stops when every accepted job is completed. ${rounds} rounds alternating which system goes first; best of the rounds (highest rate, lowest cost). Commands per job: INFO commandstats calls during the run / jobs (the idle upkeep included). Memory per job: INFO used_memory after the run minus before / jobs.`,
    '',
    '| measure | this service | Fastify + BullMQ | ratio | target | result |',
    '| --- | ---: | ---: | ---: | --- | --- |',
    ...rows.map(([name, ours, theirs, target, ok]) => `| ${name} | ${fmt(ours, ours < 100 ? 1 : 0)} | ${fmt(theirs, theirs < 100 ? 1 : 0)} | ${fmt(ratio(ours, theirs), 2)}x | ${target} | ${ok === null ? '' : verdict(ok)} |`),
    ...peerWhy(missed, { service, peer }, fmt)
  ].join('\n')
}

/**
 * Why each peer target this run missed was missed, from profiles of both systems under the same
 * load: `node bench/profile-e2e.mjs service|peer [0|3]` (node --cpu-prof, INFO commandstats,
 * MEMORY USAGE by key). Figures quoted from those profiles are from 2026-12-01 on this machine.
 */
function peerWhy (missed, { service, peer }, fmt) {
  if (missed.length === 0) return []
  const endToEnd = [
    `- **End to end** (${fmt(service.e2e0)} against ${fmt(peer.e2e0)} jobs/s with 0 progress writes; ${fmt(service.e2e3)} against ${fmt(peer.e2e3)} with 3). Both processes and both Redis servers do the same kind of work per job (a create, then one script per job that ends an attempt and claims and begins the next, as \`moveToFinished\` does; commands per job level), but each step costs the service more than it costs the peer: in Redis about twice, in Node up to 1.8 times (its server CPU per job above: 0.93x-1.78x over the runs since 2026-12-05, the most with progress writes):`,
    `  - **Node: server CPU per job** ${fmt(service.cpu0)} against ${fmt(peer.cpu0)} µs with 0 progress writes, ${fmt(service.cpu3)} against ${fmt(peer.cpu3)} with 3 (this run). Profiles (\`node bench/profile-e2e.mjs service|peer 0\`, self time of busy samples, 2026-12-06): the service's own code 24% (spread thin: record serialization 3.5%, parsing the claimed record from the final write's reply 2%, the fallback store's local copies of each record 4%, per-call deadline timers 2%, routes, hooks, runner), Node's HTTP/stream internals 22%, socket writes 15%, GC 7%, node-redis 5%, ajv 5% (gone since 2026-12-07: the response schemas say "or null" as a type list, \`type: [T, 'null']\`, so fast-json-stringify no longer compiles an Ajv validator per nullable field on a route's first answer, 142-184 ms of CPU for the job record in a micro-benchmark against 10-17 ms, nor runs it on every answer); the peer's ioredis 16% and its writeBuffer 17%, bullmq 13%, Node internals 16%, socket writes 10%. No single function takes more than 3.5%.`,
    '  - **One side at a time** (`PROFILE=off node bench/profile-e2e.mjs service|peer 0 create` and `... 0|3 drain`, 3 alternating runs each, 2026-12-07, best against best): creates alone (no runner) 3,917 against 5,129 a second (0.66x-0.86x per run), both processes at 84-94% of a core; the runner alone, on a queue made beforehand, 4,325 against 6,268 jobs a second with no progress writes (0.53x-0.90x) and 2,088 against 5,425 with 3 (0.37x-0.55x). The runner is the wider gap, and not for want of CPU: draining, the service\'s process was busy 55-65% of a core and its Redis 47-57% (they take turns, below), the peer\'s 76-84% and 51-58%. With `REDIS_RUNNER_CONNECTIONS=2` the runner alone drained jobs with 3 progress writes about a third faster (docs/scaling.md#connections); in the end-to-end run, where the process also serves the creates, it was slower on one machine (up to 10% with no progress writes) and faster on another (13% with 3, 2% with none), so a process that also serves the API keeps one; a `ROLE=worker` process takes two by default since 2026-12-08.',
    '  - **Redis: CPU per job** 126-133 against 64-65 µs with 0 progress writes, 195-208 against 87 with 3 (`bench/profile-e2e.mjs`, 2026-12-06). Per script (SLOWLOG with every command logged, 3,000 jobs with 3 progress writes): a create 49 µs, the final write that also claims and begins the next job 96 µs, a progress write 23 µs; all five scripts of a BullMQ job take 74 µs together. What a script costs beyond its commands: each `redis.call` about 1 µs over the command itself (a create makes 12, the final write with its claim about 22); defining the shared library\'s functions, which Redis ran again on every call until put, claim and progress became Redis Functions (56 of them for `put.lua`: 7.3 µs against a bare call, 1 µs for a progress write\'s 13); and Lua\'s garbage collector, which reclaims every string cut from a record (a 550-byte record sliced and joined again costs 3.6 µs). Since 2026-12-06 a script reads a record\'s head in one pattern match, once per record: `put.lua` 92.5 -> 71-76 µs and `progress.lua` 27.4 -> 23.6 µs per call, Redis CPU per job with 3 progress writes 228-234 -> 195-208 µs.',
    '  - **A progress write** is one script of 5 commands (the write counter\'s tick, which also checks Redis did not go back in time; the record\'s first 512 bytes read; its new head, with the id of the event it appends, written over the old in place, padded with the spaces a running record keeps after it; the event; a notice; a sixth, the whole record read, for a head that runs past the 512 bytes, a long error of an earlier attempt), 6 with the script\'s call against BullMQ\'s 5, and no record sent from Node. It still costs Redis 23 µs against about 10 (BullMQ sets a hash field and adds to a stream) and Node about 23 µs (the holder\'s serialized chain, the store\'s gate and deadline, the local copy, the notice that comes back). Until 2026-12-07 it read and rewrote the whole record, and Redis\'s Lua hashes every byte of every string a script makes (a reply, an argument, a piece cut or joined: about 24 KB a job with 3 progress writes, a sixth of Redis\'s instructions for it, `redis-server` under valgrind\'s callgrind): with the head in place a job with a 2,000-character query and 3 progress writes took Redis 2.16 million instructions against 2.41 million; with the bench\'s 1 KB record the count did not move (1.725 million a job, 3.196 against 3.202 million with 10 progress writes): a write of that record spends on its two paths and padding what the hashing saves.',
    '  - **Node and Redis take turns** rather than overlap on one connection: the replies to a batch of scripts arrive together, their continuations run, and node-redis writes the next batch on `setImmediate` while Redis waits (2,400-2,670 jobs/s drained on the Xeon machine of earlier runs, with the service at 42-50% of a core and Redis at 55-58%; the peer at 84-97%: ioredis writes each command at once, so Redis starts on it while Node prepares the next, and BullMQ\'s queue and worker hold connections of their own). node-redis 6.3.1 edited by hand to write each command at once took 2,324 to 2,846 jobs/s with 3 progress writes (one run each, 2026-12-06); it has no option for it, so the service does not. Since 2026-12-06 the runner\'s claims and the writes made under a claim have a connection of their own (`REDIS_RUNNER_CONNECTION`, on by default; its calls use the main one while it is down; docs/scaling.md): an experiment of that kind on the Xeon machine drained 3,000-3,570 against 2,400-2,670 jobs/s; on the AMD EPYC machine of this run, where the service uses a whole core either way, 10 alternating runs each of `bench/profile-e2e.mjs` gave medians of 2,513 against 2,309 jobs/s with no progress writes and 1,571 against 1,558 with 3 (best 2,687 against 2,637 and 1,790 against 1,731), within that machine\'s noise. Scripts spread by job over 2 to 4 connections (an experiment, 2026-12-06): 2,274-2,392 against 2,015-2,107 jobs/s with 3 progress writes, within the noise with none. With 30 progress writes per job (`node bench/profile-e2e.mjs service 30`, 2026-12-06) a write cost Node 24 µs and Redis 25 µs (its script 18-19 µs, of which 3.2 µs is an EVALSHA with its 14 arguments that returns at once and 1.2 µs its 5 commands), and the service ran 16,100-16,900 writes a second, 59-62 µs each: more than both together, so they add up rather than overlap.',
    '  - **Notices of running records only where a reader waits** (since 2026-12-07, docs/design.md): a job\'s start and its progress writes publish on a channel of their own (`jobs:notices:running`), which a process subscribes to only while a stream or a long poll of its waits; before, every replica\'s subscriber was sent, and parsed, each one. `PROFILE=off node bench/profile-e2e.mjs service 3`, 9 alternating runs each against the build before: 2,004 against 1,804 jobs/s (medians; 8 of the 9 pairs higher), server CPU 303 against 351 µs per job, Redis 265 against 280 µs. With no progress writes (one notice a job fewer), 8 runs each were within the noise: medians 3,488 against 3,619 jobs/s, server CPU 221 µs both.',
    '  - **Timestamps, and the promises of a Redis call** (since 2026-12-07): V8 formats `Date#toISOString` through printf, about 430 ns a call, and a job with 3 progress writes took 25 of them (each claim\'s options, each write\'s stamp, three in each progress write); `isoTime` (src/iso-time.ts) gives the same string in about 70 ns. And a Redis call\'s layers (the gate, the Redis store\'s script, command and deadline steps) hand their promises on instead of awaiting each in turn: a progress write through the store makes 12 promises, not 23 (`test/store/call-cost.test.ts`). Instructions of the process per progress write through `RedisJobStore` (valgrind\'s callgrind, 16,000 writes, 3 runs each): 73,500-74,900 against 79,900-87,400. `PROFILE=off node bench/profile-e2e.mjs service 3`, 5 alternating runs each against the build before: server CPU per job 374 against 447 µs (medians; lower in all 5 pairs), 1,704 against 1,519 jobs/s (higher in 3); with no progress writes within the noise (333 against 343 µs, 2,455 against 2,294 jobs/s).',
    '  - **Counted, not timed** (`node bench/instructions.mjs redis|service <writes>`, with `INSTR_SYSTEM=peer` for the peer: valgrind\'s callgrind, the instructions of 1,200 jobs less those of 200, 2026-12-07, docs/benchmark.md): Redis spends 1.00 million instructions on a job with no progress writes against the peer\'s 0.53 million (1.89x) and 1.48 million against 0.67 million with 3 (2.20x; a progress write about 160,000 against 48,000), while the worker process, counted after 3,000 warm-up jobs, spends 400,000-460,000 against the peer\'s 423,000 with none but 933,000 against 624,000 with 3 (a progress write about 159,000 against 67,000, 2.4x), and the API 459,000 a create against 229,000 (2.0x); counted from a process\'s first job, as the tool did before 0092e14, V8\'s compiler\'s work hid that (the worker 840,000 against 856,000 with 3). The gap is Redis\'s, and in creates and progress writes Node\'s too. Before put, claim and progress ran as Redis Functions (0360ed2), every call defined its part of the shared library again, and Redis spent 1.12 million (2.11x) and 1.72 million (2.55x); what is left is the scripts\' work on the JSON record and its indexes, in a Lua where a 30-byte `string.sub` costs about 1,200 instructions, a table of eight fields 3,400 and a `redis.call` about 10,000 (a create makes about 12, the final write with its claim about 22).',
    '  - **What would close it**, not done: the running record\'s head kept as hash fields so a progress write does not rewrite the record (a prototype of that write, the same 5 steps on a hash of the head\'s fields, took Redis 6.2-7.4 µs against progress.lua\'s 18-19 µs, 24,000 writes each on 16 running jobs, 2026-12-06; of those 18-19 µs: the call and its library 4.5, reading the 1.2 KB record 2.5, its head 2.5, the event 4.7 (its log past the 500-event cap, so a trim each time), writing the record back and the notice 3.7), fewer `redis.call`s per job, and a leaner per-job path in Node (the fallback copies and deadline timers each request pays; a create\'s and a progress write\'s instructions first). Done: Redis Functions (0360ed2: put, claim and progress defined once per Redis with `FUNCTION LOAD`, not on every call; the instructions above; loaded again where a Redis lost them, scripts sent whole on a Redis before 7; a create the admission checks runs as a function allowed past maxmemory, because it answers `store_full` before any write). `PROGRESS_MIN_INTERVAL_MS` cuts progress writes for engines that report faster than anyone can see; the bench measures every write (its default, 0).',
    '  - **Tried and measured, not kept** (2026-12-07): the library defined twice in each create, final write and progress write (`bench/profile-e2e.mjs service 0`, 3 alternating runs against the build as it is) cost Redis 8-31 µs more per job (327-356 against 303-325 µs), with the end-to-end rate within the noise (1,543-1,734 against 1,578-1,743 jobs/s): what Redis Functions would save is about that, 3-9% of Redis\'s CPU per job, and no rate this machine can see while the process is the busier side (shipped since, 0360ed2, for the instructions it saves). Options sent as ARGV strings, read by one generated Lua table constructor, in place of the JSON object `cjson.decode` reads: Redis timed a final write with its claim at 240-255 against 252-280 µs (SLOWLOG, the runner alone at concurrency 1), but the 26 more arguments cost Redis (parsing them, one Lua string each) and Node (encoding them) about what the decoding had, so the CPU per job did not fall: creates alone 120-121 against 115-118 µs of Redis, the runner alone 212-230 against 207-216 µs of Redis and 186-218 against 182-188 µs of the process. A put\'s cost is spread over many small steps (defining the library, decoding the options, each of its 20-odd `redis.call`s at about 3 µs when Redis\'s caches are cold, cutting and joining the 1.2 KB record) with none above a tenth of it (`SLOWLOG=on`, and `TIME` probes inside the script). V8\'s young generation at 16 MB from the start (`SYSTEM_NODE_FLAGS=--min-semi-space-size=16`): V8 starts it at 1 MB and grows it to 64 MB while a fresh process\'s first jobs run, so the runner alone on a fresh process (`... service 0 drain`, 3 alternating runs each) drained 4,308-5,621 against 3,723-4,810 jobs/s at 90-115 against 122-151 µs per job (minor page faults 0.8-1.2 against 2.0-3.1 per job); end to end (`... service 0`) the rates were within the noise (2,777-2,920 against 2,688-2,963), a process that has run a while has grown it anyway, and it holds 16-32 MB more, so the start commands do not set it.'
  ].join('\n')
  const why = {
    'create req/s': `- **Create** (${fmt(service.createRps)} against ${fmt(peer.createRps)} req/s). A create here validates the whole request schema (options, webhook URL), runs the auth, idempotency, rate-limit and metrics hooks, sets the security headers, makes a UUIDv7 and writes the record with its creation and status indexes, its first event and a notice in one script; \`queue.add\` validates two fields and writes a hash and a list entry. Both processes also run their workers during the 3 s, so creates compete with the jobs' writes for the one core Node has; creates moved most between runs (0.78x-1.11x of the peer across the runs of 2026-12-05, ${(service.createRps / peer.createRps).toFixed(2)}x in this one). On a quiet hour (\`bench/profile-e2e.mjs service|peer 0\`, 2026-12-06) the service accepted 6,200-6,300 creates a second during the end-to-end run against the peer's 10,000-10,400, and its create script took Redis 49 µs (SLOWLOG; see End to end for where a script's time goes).`,
    'end to end jobs/s, 0 progress writes': endToEnd,
    'end to end jobs/s, 3 progress writes': endToEnd,
    'poll of a finished job req/s': `- **Poll of a finished job** (${fmt(service.poll)} against ${fmt(peer.poll)} req/s). The service answers it from the replica's own copy with no Redis call (the peer reads the hash with \`Job.fromId\`), but its HTTP path is longer: auth, rate-limit and metrics hooks, the security headers, ETag and Retry-After, the full record schema. Polls run once per round after the end-to-end run, on a machine whose speed moves by a fifth between rounds: ${(service.poll / peer.poll).toFixed(2)}x of the peer in this run, 1.68x in the full run before it on 2026-12-06 (RESULTS.md at 6eaf879), when the bare Fastify baseline answered 94,970 req/s.`,
    'Redis commands per job, 0 progress writes': `- **Redis commands per job** (${fmt(service.commands, 1)} against ${fmt(peer.commands, 1)}). Per job: the create (Redis's clock, the write counter's one INCR, which also tells whether Redis went back, the record read and written, the creation and status indexes, the first event and its log's TTL, the queue and the tenant's queue, the fair-share ring checked, a notice: 13 with the script's call), then one script that ends the job (clock, counter, record read and written, status move, lease dropped, the job's log and checkpointed steps dropped in one DEL, notice) and claims and begins the next (ring, tenant's queue popped, queue, record read and written, lease, start event, status move, notice, the ring's turn): 21 with the call. Since 2026-12-06 the claim's fencing token takes the value the final write took from the counter and lives in the running record's head, not in a hash, and no write reads the counter before taking its next value: 41.3 to 34.2 commands per job in \`node bench/profile-e2e.mjs service 0\` (Redis's CPU per job 214 to 194 µs), which \`test/runner/claim-start.test.ts\` holds at 35 at most. BullMQ has no per-job event history, no status index and no fair-share ring; it keeps one queue-wide event stream.`,
    'Redis memory per finished job (bytes)': `- **Redis memory per finished job** (${fmt(service.memory)} against ${fmt(peer.memory)} bytes). \`MEMORY USAGE\` by key after the profiled run (\`node bench/profile-e2e.mjs service|peer 0\`, 2026-12-06): the record, one JSON string of 1,194 B, 1,390 B (BullMQ's job hash 1,879 B in the peer's profile); the creation and status indexes, 135-142 B each. Since 2026-12-06 a finished job keeps no event log (#29: the write that ends it drops the list, 378 B for a no-op job's 3 events, and the record keeps the final event's id, 36 B): 2,228 to 1,801-1,813 B per job in that profile, against the peer's 1,880 there (its share of the queue-wide event stream, trimmed to about 10,000 entries, falls as a run's jobs outnumber it: 252 B per job with 12,802 jobs; this table's rounds ran more jobs). What is left: the record's JSON sits in the allocator's 1,280 B size class, and leaving out its empty fields (webhook, max_duration_s, urls, the attempt's error: about 60 B) would not reach the 1,024 B class, so it was not done; and each job has two sorted-set entries (creation order, and its status set, which is also the expiry index), about 270 B, where BullMQ's finished job has one.`
  }
  const lines = [...new Set(missed.map((name) => why[name]).filter((text) => text !== undefined))]
  return ['', '### Peer targets missed: why', '', ...lines]
}
