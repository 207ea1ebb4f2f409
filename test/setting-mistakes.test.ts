// A setting with a name the service does not read is a mistake the operator cannot see: the
// service starts with the default (REDIS_URI: no Redis, jobs lost on the next restart). Names
// close to a setting, or in one of the service's own namespaces, are named at start (WARN), and
// STRICT_CONFIG=true refuses to start with them.
import { spawn } from 'node:child_process'
import t from 'tap'
import { loadConfig, settingMistakes } from '../src/config.js'
import { SPAWNED_SERVER_ENV } from './helpers/app.js'
import { freePort } from './helpers/redis-server.js'

const root = new URL('../', import.meta.url).pathname

t.test('names that look like a setting but are not one are named, with the setting meant', async (t) => {
  t.same(settingMistakes({ REDIS_URI: 'redis://x:6379' }), ['REDIS_URI is not a setting; did you mean REDIS_URL?'])
  t.same(settingMistakes({ RUNNER_CONCURENCY: '8' }), ['RUNNER_CONCURENCY is not a setting; did you mean RUNNER_CONCURRENCY?'])
  t.same(settingMistakes({ redis_url: 'redis://x' }), ['redis_url is not a setting; did you mean REDIS_URL?'])
  t.same(settingMistakes({ JOBS_TTL_SECONDS: '60' }), ['JOBS_TTL_SECONDS is not a setting; did you mean JOB_TTL_SECONDS?'])
  t.same(settingMistakes({ CACHE_TTL: '60' }), ['CACHE_TTL is not a setting of this service (its CACHE_ settings are listed in docs/configuration.md)'])
  t.same(settingMistakes({ WEBHOOK_URL: 'https://x' }), ['WEBHOOK_URL is not a setting of this service (its WEBHOOK_ settings are listed in docs/configuration.md)'])
})

t.test('real settings, and what other software sets, are not mistakes', async (t) => {
  const others = Object.fromEntries([
    'REDIS_URL', 'RUNNER_CONCURRENCY', 'PORT', 'HOST', 'PATH', 'HOME', 'HOSTNAME', 'NODE_ENV', 'NODE_OPTIONS', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY',
    'RAILWAY_ENVIRONMENT', 'RAILWAY_PUBLIC_DOMAIN', 'npm_lifecycle_event', 'TERM', 'LANG', 'PWD', 'SHLVL', 'TZ', 'OTEL_EXPORTER_OTLP_ENDPOINT',
    'REDISHOST', 'REDISPORT', 'PGHOST', 'DATABASE_URL', 'LOGNAME', 'USER',
    // GitHub Actions, Jenkins, Kubernetes and Docker links for a service named redis.
    'RUNNER_OS', 'RUNNER_TEMP', 'RUNNER_ARCH', 'JOB_NAME', 'JOB_URL', 'REDIS_PORT', 'REDIS_SERVICE_HOST', 'REDIS_SERVICE_PORT', 'REDIS_PORT_6379_TCP',
    'REDIS_PORT_6379_TCP_ADDR', 'REDIS_PORT_6379_TCP_PORT', 'REDIS_PORT_6379_TCP_PROTO'
  ].map((name) => [name, 'x']))
  t.same(settingMistakes(others), [])
})

t.test('STRICT_CONFIG=true refuses to start with a name that looks like a setting, naming each', async (t) => {
  t.throws(() => loadConfig({ STRICT_CONFIG: 'true', REDIS_URI: 'redis://x:6379', RUNNER_CONCURENCY: '8' }), {
    name: 'ConfigError',
    message: 'Invalid configuration (STRICT_CONFIG=true): REDIS_URI is not a setting; did you mean REDIS_URL? RUNNER_CONCURENCY is not a setting; did you mean RUNNER_CONCURRENCY?'
  })
  t.equal(loadConfig({ REDIS_URI: 'redis://x:6379' }).REDIS_URL, '', 'without it the service starts (and says so: see below)')
  t.equal(loadConfig({ STRICT_CONFIG: 'true', REDIS_URL: 'redis://x:6379' }).REDIS_URL, 'redis://x:6379')
})

async function startServer (env: Record<string, string>): Promise<{ code: number | null, out: string }> {
  const port = await freePort()
  const child = spawn('node', ['--import', 'tsx', 'src/server.ts'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...SPAWNED_SERVER_ENV, PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', ...env } })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  const listening = new Promise<void>((resolve) => child.stdout.on('data', () => { if (/Server listening/.test(out)) resolve() }))
  const first = await Promise.race([exited.then((code) => ({ code })), listening.then(() => null)])
  if (first !== null) return { code: first.code, out }
  child.kill('SIGTERM')
  return { code: await exited, out }
}

t.test('the server names each mistaken setting in a WARN at start; with STRICT_CONFIG=true it exits 1 saying why', async (t) => {
  const started = await startServer({ REDIS_URI: 'redis://127.0.0.1:1', LOG_LEVEL: 'info' })
  const warning = started.out.split('\n').filter((line) => line.includes('REDIS_URI')).map((line) => JSON.parse(line))
  t.match(warning, [{ level: 40, setting: 'REDIS_URI', msg: 'REDIS_URI is not a setting; did you mean REDIS_URL?' }])
  const strict = await startServer({ REDIS_URI: 'redis://127.0.0.1:1', STRICT_CONFIG: 'true' })
  t.equal(strict.code, 1)
  t.match(strict.out, /Invalid configuration \(STRICT_CONFIG=true\): REDIS_URI is not a setting; did you mean REDIS_URL\?/)
})
