import { spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import type { ResearchEngine } from '../src/research/engine.js'
import { EXIT, main } from '../src/cli/main.js'
import { PermanentError } from '../src/research/engine.js'
import { startApp, waitFor } from './helpers/app.js'
import { FailingEngine, PacedEngine } from './helpers/engines.js'
import { freePort } from './helpers/redis-server.js'

function io (env: Record<string, string> = {}): { stdout: { text: string, write: (s: string) => void }, stderr: { text: string, write: (s: string) => void, isTTY?: boolean }, env: Record<string, string> } {
  const out = { text: '', write (s: string) { this.text += s } }
  const err = { text: '', write (s: string) { this.text += s } }
  return { stdout: out, stderr: err, env }
}

async function api (t: Test, engine: ResearchEngine = new PacedEngine(20)): Promise<string> {
  const app = await startApp(t, { SSE_POLL_MS: 20 }, { engine })
  return await app.listen({ port: 0, host: '127.0.0.1' })
}

t.test('submit --wait shows progress and prints the report; exit 0', async (t) => {
  const url = await api(t)
  const streams = io({ DEEP_RESEARCH_URL: url })
  const code = await main(['submit', 'How', 'does', 'Redis AOF everysec work?', '--depth', 'quick', '--wait'], streams)
  t.equal(code, EXIT.ok)
  t.match(streams.stdout.text, /^# Research: How does Redis AOF everysec work\?\n[^]*## Sources\n\n1\. /)
  t.match(streams.stderr.text, /^job [0-9a-f-]{36}\n/)
  t.match(streams.stderr.text, /\n +\d+% Pass 1\/1: searching for[^\n]*\n/, 'each step on its own line when stderr is not a terminal')
  t.match(streams.stderr.text, /100% Completed\n/)
})

t.test('on a terminal the bar is redrawn in place', async (t) => {
  const url = await api(t)
  const streams = io()
  streams.stderr.isTTY = true
  t.equal(await main(['submit', 'lease expiry', '--depth', 'quick', '--wait', '--url', url], streams), EXIT.ok)
  // eslint-disable-next-line no-control-regex -- the bar is redrawn with ANSI escapes, which is what this checks
  t.match(streams.stderr.text, /\r\x1b\[2K\[#+-*\] +\d+% /)
  t.match(streams.stderr.text, /\[#{24}\] 100% Completed\n$/)
})

t.test('--json prints records for scripts; submit without --wait prints the id', async (t) => {
  const url = await api(t)
  const waited = io()
  t.equal(await main(['submit', 'lease expiry', '--wait', '--json', '--url', url, '--depth', 'quick', '--format', 'json'], waited), EXIT.ok)
  const record = JSON.parse(waited.stdout.text)
  t.match(record, { status: 'completed', progress: 100, options: { report_format: 'json' } })
  const quick = io()
  t.equal(await main(['submit', 'another question', '--url', url], quick), EXIT.ok)
  const id = quick.stdout.text.trim()
  t.match(id, /^[0-9a-f-]{36}$/)
  const got = io()
  t.equal(await main(['get', id, '--json', '--url', url], got), EXIT.ok)
  t.equal(JSON.parse(got.stdout.text).job_id, id)
  const listed = io()
  t.equal(await main(['list', '--url', url, '--limit', '5'], listed), EXIT.ok)
  t.match(listed.stdout.text, new RegExp(`${id}  \\w+ +\\d+%  another question`))
  const jsonList = io()
  t.equal(await main(['list', '--url', url, '--status', 'completed', '--json'], jsonList), EXIT.ok)
  t.ok(JSON.parse(jsonList.stdout.text).jobs.every((j: any) => j.status === 'completed'))
})

t.test('a failed job exits 1; cancel prints the cancelled job, and cancelling it again is an API error (1)', async (t) => {
  const failing = await api(t, new FailingEngine(new PermanentError('the corpus is missing')))
  const failed = io()
  t.equal(await main(['submit', 'q', '--wait', '--url', failing], failed), EXIT.failed)
  t.match(failed.stdout.text, /failed +\d+% +Failed during: Reading sources\nerror: the corpus is missing\n/)
  const url = await api(t, new PacedEngine(1000))
  const submitted = io()
  await main(['submit', 'slow one', '--url', url], submitted)
  const id = submitted.stdout.text.trim()
  const cancelled = io()
  t.equal(await main(['cancel', id, '--url', url], cancelled), EXIT.failed, 'a cancelled job is not a success')
  t.match(cancelled.stdout.text, /cancelled/)
  const again = io()
  t.equal(await main(['cancel', id, '--url', url], again), EXIT.failed)
  t.match(again.stderr.text, /error: Job .* is already cancelled \(HTTP 409 already_finished\)/)
})

t.test('usage errors exit 2 with a message and the usage', async (t) => {
  for (const [argv, message] of [
    [[], /^Usage: deep-research/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['submit'], /submit needs a question/],
    [['submit', 'q', '--depth', 'bottomless'], /--depth must be one of: quick, standard, deep/],
    [['submit', 'q', '--max-sources', 'many'], /--max-sources must be a whole number/],
    [['submit', 'q', '--bogus'], /Unknown option '--bogus'/],
    [['get'], /usage: deep-research get <job_id>/],
    [['list', '--status', 'sleeping'], /--status must be one of/]
  ] as Array<[string[], RegExp]>) {
    const streams = io()
    t.equal(await main(argv, streams), EXIT.usage, argv.join(' '))
    t.match(streams.stderr.text, message)
  }
  const help = io()
  t.equal(await main(['--help'], help), EXIT.ok)
  t.match(help.stdout.text, /Exit codes: 0 done/)
})

t.test('an API that cannot be reached is a clear error, exit 1', async (t) => {
  const streams = io()
  t.equal(await main(['list', '--url', `http://127.0.0.1:${await freePort()}`], streams), EXIT.failed)
  t.match(streams.stderr.text, /cannot reach the API .*ECONNREFUSED.*is the service running\?/)
})

t.test('Ctrl-C while waiting cancels the job on the server and exits 130 (the real command, spawned)', async (t) => {
  const app = await startApp(t, { SSE_POLL_MS: 20 }, { engine: new PacedEngine(500) })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const bin = new URL('../src/cli/bin.ts', import.meta.url).pathname
  const child = spawn(process.execPath, [...process.execArgv, bin, 'submit', 'lease expiry', '--depth', 'deep', '--wait', '--url', url], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  await waitFor('progress on stderr', () => /% /.test(stderr), 15_000)
  const id = /job ([0-9a-f-]{36})/.exec(stderr)?.[1] as string
  child.kill('SIGINT')
  const code = await new Promise((resolve) => child.on('exit', resolve))
  t.equal(code, 130)
  t.match(stderr, `interrupted: cancelled job ${id}`)
  const job = await app.inject({ url: `/v1/jobs/${id}` })
  t.equal(JSON.parse(job.body).status, 'cancelled')
})

t.test('--key (or DEEP_RESEARCH_API_KEY) authenticates; without it a keyed API answers 401, exit 1', async (t) => {
  const key = 'cli-test-key-0123456789'
  const { createHash } = await import('node:crypto')
  const app = await startApp(t, { API_KEYS: `cli:${createHash('sha256').update(key).digest('hex')}` })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const denied = io()
  t.equal(await main(['list', '--url', url], denied), EXIT.failed)
  t.match(denied.stderr.text, /\(HTTP 401 /)
  const viaFlag = io()
  t.equal(await main(['submit', 'keyed question', '--url', url, '--key', key], viaFlag), EXIT.ok)
  const viaEnv = io({ DEEP_RESEARCH_API_KEY: key, DEEP_RESEARCH_URL: url })
  t.equal(await main(['get', viaFlag.stdout.text.trim(), '--json'], viaEnv), EXIT.ok)
  t.equal(JSON.parse(viaEnv.stdout.text).query, 'keyed question')
})
