// Process helpers shared by the chaos suite and the benchmark: free ports, tracked children
// (so every one of them can be killed on the way out), polling for a condition, a process's CPU time.
import { execFileSync, spawn } from 'node:child_process'
import { openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => { const { port } = /** @type {import('node:net').AddressInfo} */ (server.address()); server.close(() => resolve(port)) })
  })
}

/** @typedef {import('node:child_process').ChildProcess & { exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }> }} TrackedChild */

/** Children started through it; `killAll` ends them and waits. */
export class Processes {
  #children = new Set()

  constructor (cwd) {
    this.cwd = cwd
  }

  /**
   * Starts a child with only PATH and `env`; output goes to `logFile` or nowhere.
   * @returns {TrackedChild}
   */
  start (command, args, env = {}, logFile = null) {
    const out = logFile === null ? 'ignore' : openSync(logFile, 'a')
    const child = /** @type {TrackedChild} */ (spawn(command, args, { cwd: this.cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', out, out] }))
    this.#children.add(child)
    child.exited = new Promise((resolve) => child.once('exit', (code, signal) => { this.#children.delete(child); resolve({ code, signal }) }))
    return child
  }

  async killAll () {
    const children = [...this.#children]
    for (const child of children) child.kill('SIGKILL')
    await Promise.all(children.map((child) => child.exited))
  }
}

/** On Ctrl-C or SIGTERM, runs `cleanup` (kill children, remove temp dirs) before exiting. */
export function cleanUpOnSignals (cleanup) {
  for (const [signal, code] of /** @type {Array<[NodeJS.Signals, number]>} */ ([['SIGINT', 130], ['SIGTERM', 143]])) {
    process.once(signal, () => { cleanup().finally(() => process.exit(code)) })
  }
}

/** A redis-cli command against the Redis on `port`, its answer trimmed (stderr dropped). */
export function redisCli (port, ...args) {
  return execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] }).trim()
}

/** Seconds of CPU the redis-server on `port` has used (main thread and its others: user + sys). */
export function redisCpuSeconds (port) {
  const info = redisCli(port, 'INFO', 'cpu')
  return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1])
}

export async function until (what, check, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try { if (await check()) return } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (null where there is none). */
export function cpuSeconds (pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return null
  }
}
