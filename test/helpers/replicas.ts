import { type ChildProcess, spawn } from 'node:child_process'
import { SPAWNED_SERVER_ENV, type TestContext, waitFor } from './app.js'
import { freePort } from './redis-server.js'

const root = new URL('../../', import.meta.url).pathname

/** A server process started from source, its URL, its output so far and its exit. */
export interface Replica { process: ChildProcess, url: string, exited: Promise<number | null>, log: string[] }

/**
 * Starts `src/server.ts` as a process of its own on a free loopback port (WORKER_ID `name`,
 * rate limits off, info logs kept in `log`), answering /health before this returns; killed
 * after the test. `env` adds to or overrides those settings.
 */
export async function startReplica (t: TestContext, name: string, env: Record<string, string>): Promise<Replica> {
  const port = await freePort()
  const child = spawn('node', ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...SPAWNED_SERVER_ENV, PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', WORKER_ID: name, LOG_LEVEL: 'info', RATE_LIMIT_ENABLED: 'false', ...env }
  })
  const log: string[] = []
  child.stdout?.on('data', (chunk: Buffer) => log.push(chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => log.push(chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => { child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  await waitFor(`${name} answering`, async () => await fetch(`${url}/health`).then((res) => res.ok, () => false), 60_000)
  return { process: child, url, exited, log }
}
