import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { ResearchEngine } from '../src/research/engine.js'
import { EXIT, main } from '../src/cli/main.js'
import { PermanentError } from '../src/research/engine.js'
import { startApp, waitFor } from './helpers/app.js'
import { FailingEngine, PacedEngine } from './helpers/engines.js'
import { RedisServer, freePort } from './helpers/redis-server.js'
import { newJobId } from '../src/store/job-ids.js'
import { RedisKeys } from '../src/store/keys.js'
import { setTimeout as sleep } from 'node:timers/promises'

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
  t.match(streams.stderr.text, /\n +\d+% Round 1\/1: searching for[^\n]*\n/, 'each step on its own line when stderr is not a terminal')
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

t.test('a failed job exits 1; cancel prints the cancelled job, and cancelling it again is an API error (3)', async (t) => {
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
  t.equal(await main(['cancel', id, '--url', url], again), EXIT.api)
  t.match(again.stderr.text, /error: Job .* is already cancelled \(HTTP 409 already_finished\)/)
})

t.test('usage errors exit 2 with a message and the usage', async (t) => {
  for (const [argv, message] of [
    [[], /^Usage: deep-research/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['submit'], /submit needs a question/],
    [['submit', 'q', '--depth', 'bottomless'], /--depth must be one of: quick, standard, deep/],
    [['submit', 'q', '--max-sources', 'many'], /--max-sources must be a whole number/],
    [['submit', 'q', '--bogus'], /unknown option --bogus/],
    [['get'], /usage: deep-research get <job_id>/],
    [['list', '--status', 'sleeping'], /--status must be one of/]
  ] as Array<[string[], RegExp]>) {
    const streams = io()
    t.equal(await main(argv, streams), EXIT.usage, argv.join(' '))
    t.match(streams.stderr.text, message)
  }
  const help = io()
  t.equal(await main(['--help'], help), EXIT.ok)
  t.match(help.stdout.text, /Exit codes:\n {2}0 +done[^]*\n {2}3 +API or network error[^]*\n {2}4 +timed out/)
})

t.test('an API that cannot be reached is a clear error, exit 3', async (t) => {
  const streams = io()
  t.equal(await main(['list', '--url', `http://127.0.0.1:${await freePort()}`], streams), EXIT.api)
  t.match(streams.stderr.text, /cannot reach the API .*connection refused.*is the service running\?/)
})

const BIN = new URL('../src/cli/bin.ts', import.meta.url).pathname

/** The real `deep-research` binary, spawned; `done` resolves with its exit code and output. */
function runBinary (args: string[], env: Record<string, string> = {}): { done: Promise<{ code: number | null, stdout: string, stderr: string }>, stderr: () => string, interrupt: () => void } {
  const child = spawn(process.execPath, [...process.execArgv, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  return { done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))), stderr: () => stderr, interrupt: () => child.kill('SIGINT') }
}

t.test('Ctrl-C while waiting cancels the job on the server and exits 130 (the real command, spawned)', async (t) => {
  const app = await startApp(t, { SSE_POLL_MS: 20 }, { engine: new PacedEngine(500) })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const run = runBinary(['submit', 'lease expiry', '--depth', 'deep', '--wait', '--url', url])
  await waitFor('progress on stderr', () => /% /.test(run.stderr()), 15_000)
  const id = /job ([0-9a-f-]{36})/.exec(run.stderr())?.[1] as string
  run.interrupt()
  const { code, stderr } = await run.done
  t.equal(code, 130)
  t.match(stderr, `interrupted: cancelled job ${id}`)
  const job = await app.inject({ url: `/v1/jobs/${id}` })
  t.equal(JSON.parse(job.body).status, 'cancelled')
})

t.test('--key (or DEEP_RESEARCH_API_KEY) authenticates; without it a keyed API answers 401, exit 3', async (t) => {
  const key = 'cli-test-key-0123456789'
  const { createHash } = await import('node:crypto')
  const app = await startApp(t, { API_KEYS: `cli:${createHash('sha256').update(key).digest('hex')}` })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const denied = io()
  t.equal(await main(['list', '--url', url], denied), EXIT.api)
  t.match(denied.stderr.text, /the API needs a key: pass --key or set DEEP_RESEARCH_API_KEY \(HTTP 401 /)
  const wrong = io()
  t.equal(await main(['list', '--url', url, '--key', 'not-the-key'], wrong), EXIT.api)
  t.match(wrong.stderr.text, /the API did not accept the key: check --key or DEEP_RESEARCH_API_KEY \(HTTP 401 /, 'a key was given: it is not accepted, not missing')
  t.notMatch(wrong.stderr.text, /needs a key/)
  const viaFlag = io()
  t.equal(await main(['submit', 'keyed question', '--url', url, '--key', key], viaFlag), EXIT.ok)
  const viaEnv = io({ DEEP_RESEARCH_API_KEY: key, DEEP_RESEARCH_URL: url })
  t.equal(await main(['get', viaFlag.stdout.text.trim(), '--json'], viaEnv), EXIT.ok)
  t.equal(JSON.parse(viaEnv.stdout.text).query, 'keyed question')
})

t.test('submit --wait rides through a server restart (a redeploy): it reconnects, says so, and prints the report; exit 0', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const port = await freePort()
  const config = { REDIS_URL: redis.url, SHUTDOWN_TIMEOUT_MS: 500 }
  let app = await startApp(t, config, { engine: new PacedEngine(150) })
  await app.listen({ port, host: '127.0.0.1' })
  const run = runBinary(['submit', 'How does Redis AOF everysec work?', '--depth', 'standard', '--wait', '--url', `127.0.0.1:${port}`])
  await waitFor('progress on stderr', () => /% /.test(run.stderr()), 15_000)
  await app.close()
  await new Promise((resolve) => setTimeout(resolve, 700))
  app = await startApp(t, config, { engine: new PacedEngine(10) })
  await app.listen({ port, host: '127.0.0.1' })
  const { code, stdout, stderr } = await run.done
  t.equal(code, 0, stderr)
  t.match(stderr, /reconnecting in [\d.]+ s: .*127\.0\.0\.1/, 'the wait says it is reconnecting, and to where')
  t.notMatch(stderr, /(at|to) {2}|(at|to) \(/, 'no line names an empty URL')
  t.match(stdout, /^# Research: How does Redis AOF everysec work\?/, 'and prints the report')
})

t.test('exit codes: 3 for an API or network error, 4 for a timeout; a URL without a scheme is http', async (t) => {
  const url = await api(t, new PacedEngine(1000))
  const refused = io()
  t.equal(await main(['list', '--url', `http://127.0.0.1:${await freePort()}`], refused), EXIT.api, 'unreachable: 3')
  const noHost = io()
  t.equal(await main(['list', '--url', 'http://no-such-host.invalid:3000'], noHost), EXIT.api)
  t.match(noHost.stderr.text, /cannot resolve host "no-such-host\.invalid"/)
  t.notMatch(noHost.stderr.text, /getaddrinfo/, 'no raw resolver error')
  const bare = io()
  t.equal(await main(['list', '--url', url.replace('http://', '')], bare), EXIT.ok, 'host:port works')
  const missing = io()
  t.equal(await main(['get', '00000000-0000-4000-8000-000000000000', '--url', url], missing), EXIT.api, 'a 404 is an API error, not a failed job')
  const slow = io()
  t.equal(await main(['submit', 'a slow one', '--depth', 'deep', '--wait', '--timeout', '1', '--url', url], slow), EXIT.timeout)
  t.match(slow.stderr.text, /timed out after 1 s waiting for job [0-9a-f-]{36}/)
})

t.test('watch follows an existing job, delete removes one, list --all follows the cursors, --version prints the version', async (t) => {
  const url = await api(t)
  const ids: string[] = []
  for (let i = 0; i < 7; i++) {
    const made = io()
    await main(['submit', `question ${i}`, '--depth', 'quick', '--url', url], made)
    ids.push(made.stdout.text.trim())
  }
  const watched = io()
  t.equal(await main(['watch', ids[6] as string, '--url', url], watched), EXIT.ok)
  t.match(watched.stdout.text, /^# Research: question 6/)
  const all = io()
  t.equal(await main(['list', '--all', '--limit', '3', '--url', url], all), EXIT.ok)
  t.same(all.stdout.text.trim().split('\n').map((line) => line.split(' ')[0]).sort(), [...ids].sort(), 'all 7 jobs over pages of 3')
  const deleted = io()
  t.equal(await main(['delete', ids[0] as string, '--url', url], deleted), EXIT.ok)
  t.match(deleted.stdout.text, `deleted ${ids[0] as string}`)
  const gone = io()
  t.equal(await main(['get', ids[0] as string, '--url', url], gone), EXIT.api)
  const version = io()
  t.equal(await main(['--version'], version), EXIT.ok)
  t.match(version.stdout.text, /^\d+\.\d+\.\d+\n$/)
})

t.test('usage errors are one short line that points to --help (exit 2)', async (t) => {
  for (const [argv, message] of [
    [['submit', 'q', '--bogus'], /^error: unknown option --bogus\nRun 'deep-research --help' for usage\.\n$/],
    [['submit', 'q', '--depth'], /^error: --depth needs a value\n/],
    [['list', '--url', 'http://'], /^error: --url is not a URL/]
  ] as Array<[string[], RegExp]>) {
    const streams = io()
    t.equal(await main(argv, streams), EXIT.usage, argv.join(' '))
    t.match(streams.stderr.text, message)
    t.notMatch(streams.stderr.text, /Commands:/, 'not the whole help')
  }
})

t.test('in a real pseudo-terminal (util-linux script) the spawned binary redraws its bar in place', async (t) => {
  const url = await api(t, new PacedEngine(30))
  const command = [process.execPath, ...process.execArgv, BIN, 'submit', 'lease expiry', '--depth', 'quick', '--wait', '--url', url].map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ')
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COLUMNS: '100' } })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise((resolve) => child.on('exit', resolve))
  t.equal(code, 0, output.slice(-500))
  // eslint-disable-next-line no-control-regex -- the bar is redrawn with ANSI escapes, which is what this checks
  t.match(output, /\r\x1b\[2K\[#+-*\] +\d+% /, 'the bar is redrawn in place on a terminal')
  t.match(output, /# Research: lease expiry/, 'then the report')
})

t.test('a 429 says how long to wait, and an untrusted TLS certificate is named as such (exit 3)', async (t) => {
  const limited = await startApp(t, { RATE_LIMIT_ENABLED: true, RATE_LIMIT_CREATE_MAX: 1 })
  const url = await limited.listen({ port: 0, host: '127.0.0.1' })
  t.equal(await main(['submit', 'first', '--url', url], io()), EXIT.ok)
  const second = io()
  t.equal(await main(['submit', 'second', '--url', url], second), EXIT.api)
  t.match(second.stderr.text, /^error: rate limited: .*\(try again in \d+ s\) \(HTTP 429 rate_limited\)\n$/)

  const dir = mkdtempSync(join(tmpdir(), 'cli-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  t.equal(made.status, 0, 'a self-signed certificate')
  const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('{}'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const tls = io()
  t.equal(await main(['list', '--url', `https://127.0.0.1:${(server.address() as AddressInfo).port}`], tls), EXIT.api)
  t.match(tls.stderr.text, /^error: TLS: the certificate of 127\.0\.0\.1 is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)\n$/)
})

t.test('get on an id the service cannot find says so plainly, whether the answer is 404 or 503 "not visible yet"', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const app = await startApp(t, { REDIS_URL: redis.url, REPLICA_HEARTBEAT_MS: 100 })
  await waitFor('on Redis', () => app.store.mode === 'redis')
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  // Another replica, heard from 5 s ago and silent since: a fresh id may be on it.
  const admin = await redis.client()
  const [seconds] = await admin.sendCommand(['TIME']) as string[]
  await admin.hSet(new RedisKeys().replicas, 'silent-replica', JSON.stringify({ at: Number(seconds) * 1000 - 5000, held: 0, skew: 0 }))
  await admin.close()
  await sleep(300)
  const fresh = newJobId()
  const recent = io()
  t.equal(await main(['get', fresh, '--url', url], recent), EXIT.api)
  t.match(recent.stderr.text, new RegExp(`^error: the service cannot find job ${fresh}: check the id; a job created moments ago may not be visible yet \\(HTTP 503 job_not_visible_yet\\)`))
  const old = io()
  t.equal(await main(['get', '00000000-0000-4000-8000-000000000000', '--url', url], old), EXIT.api)
  t.match(old.stderr.text, /^error: the service cannot find job 00000000-0000-4000-8000-000000000000: it was never created, was deleted, or has expired \(HTTP 404 not_found\)/)
})
