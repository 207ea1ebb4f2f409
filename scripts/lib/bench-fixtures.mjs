// Loopback fixtures the benchmark's research runs share: a run's temp dir, children, HTTP
// servers and Redis, all ended on the way out; a fake OpenAI-compatible LLM answering from the
// recorded responses in test/fixtures/llm.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'redis'
import { Processes, cleanUpOnSignals, freePort, until } from './processes.mjs'

/** HTTP servers on 127.0.0.1, all closed (connections included) by `closeAll`. */
export class LoopbackServers {
  /** @type {import('node:http').Server[]} */
  #servers = []

  /** Starts a server with `handler`; returns its base URL. */
  async serve (handler) {
    const server = createServer(handler)
    this.#servers.push(server)
    await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
    return `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`
  }

  async closeAll () {
    for (const server of this.#servers) server.closeAllConnections()
    await Promise.all(this.#servers.map((server) => new Promise((resolve) => server.close(resolve))))
  }
}

/** A request handler given the whole body once it has arrived. */
export function withBody (answer) {
  return (req, res) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => answer(req, res, Buffer.concat(chunks)))
  }
}

/**
 * POST /v1/chat/completions as test/helpers/fake-llm.ts answers it: the planning prompt gets
 * `plan`, the gap check `reflect`, any other the report; each after `delayMs`. `counts` is told
 * each request's kind.
 */
export function fakeLlm (root, { delayMs = 0, counts = { plan: 0, reflect: 0, report: 0 } } = {}) {
  const recorded = (name) => readFileSync(join(root, `test/fixtures/llm/${name}.json`), 'utf8')
  const answers = { plan: recorded('plan'), reflect: recorded('reflect'), report: recorded('report') }
  return withBody((req, res, body) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}')
      return
    }
    let system = ''
    try { system = String(JSON.parse(body.toString()).messages?.[0]?.content ?? '') } catch {}
    const kind = system.startsWith('You plan research') ? 'plan' : system.startsWith('You check research') ? 'reflect' : 'report'
    counts[kind]++
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(answers[kind]), delayMs)
  })
}

/**
 * What one bench script starts: a temp dir (`work`), tracked children, loopback servers and a
 * Redis of its own with an admin client; `cleanup` ends them all, once, also on Ctrl-C/SIGTERM.
 */
export class BenchRun {
  /** @type {any} */
  admin = null
  /** @type {Promise<void> | null} */
  #cleaning = null

  constructor (root, tempPrefix) {
    this.work = mkdtempSync(join(tmpdir(), tempPrefix))
    this.processes = new Processes(root)
    this.servers = new LoopbackServers()
    cleanUpOnSignals(async () => await this.cleanup())
  }

  /** Starts redis-server on a free port (no persistence) and connects `admin`; returns its URL. */
  async startRedis () {
    const port = await freePort()
    this.processes.start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', this.work, '--save', '', '--appendonly', 'no'])
    await until('redis', () => execFileSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() === 'PONG')
    const url = `redis://127.0.0.1:${port}`
    this.admin = createClient({ url })
    this.admin.on('error', () => {})
    await this.admin.connect()
    return url
  }

  /** Whether the cleanup began (a signal's, when a run fails because of it). */
  get cleaningUp () {
    return this.#cleaning !== null
  }

  /** Ends what this script started, once (a signal may come while a run is failing). */
  async cleanup () {
    this.#cleaning ??= (async () => {
      await this.admin?.close().catch(() => {})
      await this.processes.killAll()
      await this.servers.closeAll()
      rmSync(this.work, { recursive: true, force: true })
    })()
    await this.#cleaning
  }
}
