// What SIGTERM does to the jobs a server holds, as its log tells an operator. Without Redis the
// records die with the process: running jobs get MEMORY_SHUTDOWN_GRACE_MS to finish, and every
// job still unfinished is named as lost. With Redis they are handed back. Either way the last
// line is `stopped`, counting what finished, was handed back or was lost.
import { type ChildProcess, spawn } from 'node:child_process'
import t from 'tap'
import { SPAWNED_SERVER_ENV, type TestContext, waitFor } from '../helpers/app.js'
import { RedisServer, freePort } from '../helpers/redis-server.js'

const root = new URL('../../', import.meta.url).pathname

interface Server { child: ChildProcess, url: string, lines: () => any[], exited: Promise<number | null> }

async function startServer (t: TestContext, env: Record<string, string>): Promise<Server> {
  const port = await freePort()
  const child = spawn('node', ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...SPAWNED_SERVER_ENV, PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', RATE_LIMIT_ENABLED: 'false', RUNNER_CONCURRENCY: '1', ...env }
  })
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.teardown(() => { child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  await waitFor('the server answering', async () => await fetch(`${url}/health`).then((res) => res.ok, () => false), 60_000)
  const lines = (): any[] => out.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
  return { child, url, lines, exited }
}

/** The `stopped` line, once, after every line about a job (a run the time allowed cut off may still log its end). */
function stoppedLine (lines: any[]): any {
  const stopped = lines.filter((line) => line.msg === 'stopped')
  return stopped.length === 1 ? stopped[0] : { stopped_lines: stopped.length }
}

async function create (server: Server): Promise<string> {
  const res = await fetch(`${server.url}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'How does Redis AOF persistence protect jobs?', depth: 'deep' }) })
  return ((await res.json()) as { job_id: string }).job_id
}

async function status (server: Server, id: string): Promise<string> {
  return ((await (await fetch(`${server.url}/v1/jobs/${id}`)).json()) as { status: string }).status
}

t.test('without Redis, SIGTERM names each job it loses by id, running or queued, and the last line counts them', async (t) => {
  // Each research step waits 300 ms: a deep job runs for seconds, far past the 200 ms grace.
  const server = await startServer(t, { RESEARCH_STEP_DELAY_MS: '300', MEMORY_SHUTDOWN_GRACE_MS: '200' })
  const running = await create(server)
  const queued = await create(server)
  await waitFor('the first job running', async () => await status(server, running) === 'processing')
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0)
  const lines = server.lines()
  const lost = lines.filter((line) => line.msg === 'job lost at shutdown: REDIS_URL is not set, so it lived only in this process')
  t.same(lost.map((line) => line.job_id).sort(), [queued, running].sort(), 'both jobs named, by id')
  t.match(stoppedLine(lines), { lost: 2, finished: 0, handed_back: 0 }, 'the stopped line counts them')
})

t.test('without Redis, a job that finishes within MEMORY_SHUTDOWN_GRACE_MS is waited for, not lost', async (t) => {
  const server = await startServer(t, { RESEARCH_STEP_DELAY_MS: '50', MEMORY_SHUTDOWN_GRACE_MS: '30000' })
  const running = await create(server)
  await waitFor('the job running', async () => await status(server, running) === 'processing')
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0)
  const lines = server.lines()
  t.ok(lines.some((line) => line.msg === 'job finished' && line.job_id === running && line.status === 'completed'), 'the job ran to the end')
  t.notOk(lines.some((line) => /lost/.test(line.msg)), 'nothing lost')
  t.match(stoppedLine(lines), { lost: 0, finished: 1 })
})

t.test('with Redis, SIGTERM hands the running job back, and the last line says so', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const server = await startServer(t, { REDIS_URL: redis.url, RESEARCH_STEP_DELAY_MS: '300' })
  const running = await create(server)
  await waitFor('the job running', async () => await status(server, running) === 'processing')
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0)
  const lines = server.lines()
  t.ok(lines.some((line) => line.msg === 'job handed back at shutdown' && line.job_id === running))
  t.match(stoppedLine(lines), { handed_back: 1, lost: 0, finished: 0 })
})
