import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigError, ConfigSchema, DEMO_STEP_DELAY_MS, SHIPPED_CORPUS_DIR, environmentFor, loadConfig, redactUrl, runnerConnections } from '../src/config.js'

t.test('defaults: no environment gives a working local configuration', async (t) => {
  const config = loadConfig({})
  t.match(config, { PORT: 3000, HOST: '::', LOG_LEVEL: 'info', REDIS_URL: '', REDIS_TIMEOUT_MS: 500, JOB_TTL_SECONDS: 86400, MEMORY_MAX_JOBS: 10000, RUNNER_CONCURRENCY: 4, REDIS_TLS_REJECT_UNAUTHORIZED: true })
  t.equal(config.RESEARCH_CORPUS_DIR, SHIPPED_CORPUS_DIR)
})

t.test('values are parsed and validated; errors name the variable', async (t) => {
  const config = loadConfig({ PORT: '8080', REDIS_URL: 'rediss://default:pw@host:6380', REDIS_TLS_REJECT_UNAUTHORIZED: 'false', LOG_LEVEL: 'debug', RUNNER_CONCURRENCY: ' 8 ' })
  t.match(config, { PORT: 8080, REDIS_URL: 'rediss://default:pw@host:6380', REDIS_TLS_REJECT_UNAUTHORIZED: false, LOG_LEVEL: 'debug', RUNNER_CONCURRENCY: 8 })
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT must be integer/],
    [{ PORT: '70000' }, /PORT must be <= 65535/],
    [{ REDIS_URL: 'http://x' }, /REDIS_URL must match pattern/],
    [{ LOG_LEVEL: 'verbose' }, /LOG_LEVEL is not one of the allowed values: fatal, error, warn, info, debug, trace, silent \(got "verbose"\)/],
    [{ RUNNER_CONCURRENCY: '0' }, /RUNNER_CONCURRENCY must be >= 1/],
    [{ REDIS_TLS_REJECT_UNAUTHORIZED: 'maybe' }, /REDIS_TLS_REJECT_UNAUTHORIZED must be boolean/],
    [{ ROLE: 'both' }, /ROLE is not one of the allowed values: all, api, worker \(got "both"\)/],
    [{ ROLE: 'api' }, /ROLE=api needs REDIS_URL/],
    [{ ROLE: 'worker' }, /ROLE=worker needs REDIS_URL/],
    [{ REDIS_KEY_PREFIX: 'a b' }, /REDIS_KEY_PREFIX must match pattern/],
    [{ REDIS_KEY_PREFIX: 'x:{a}:{b}:' }, /REDIS_KEY_PREFIX must match pattern/],
    [{ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://node-1:7000', REDIS_KEY_PREFIX: 'dr:' }, /REDIS_CLUSTER=true needs a hash tag in REDIS_KEY_PREFIX/],
    [{ REDIS_SHARDS: '4', REDIS_KEY_PREFIX: 'dr:' }, /REDIS_SHARDS=4 needs a hash tag in REDIS_KEY_PREFIX/],
    [{ REDIS_SHARDS: '0' }, /REDIS_SHARDS must be >= 1/],
    [{ HTTP_REQUEST_TIMEOUT_MS: '0' }, /HTTP_REQUEST_TIMEOUT_MS must be >= 1000/],
    [{ HTTP_CONNECTION_TIMEOUT_MS: '30000' }, /HTTP_CONNECTION_TIMEOUT_MS must be >= 65000/],
    [{ SSE_HEARTBEAT_MS: '86000' }, /SSE_HEARTBEAT_MS=86000 must be at least 5 s shorter than HTTP_CONNECTION_TIMEOUT_MS=90000/],
    [{ JOB_TTL_SECONDS: '60' }, /JOB_TTL_SECONDS=60 must be longer than JOB_TIMEOUT_MS=300000 \(in seconds: 300\)/]
  ]
  for (const [env, message] of bad) t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  t.type(new ConfigError('x'), Error)
  t.equal(loadConfig({ ROLE: 'worker', REDIS_URL: 'redis://redis:6379' }).ROLE, 'worker', 'a worker with its Redis is fine')
  t.equal(loadConfig({ JOB_TTL_SECONDS: '60', JOB_TIMEOUT_MS: '59000' }).JOB_TTL_SECONDS, 60, 'a short TTL with a shorter run is fine')
  t.equal(loadConfig({ SSE_HEARTBEAT_MS: '120000', HTTP_CONNECTION_TIMEOUT_MS: '125000' }).SSE_HEARTBEAT_MS, 120000, 'a long heartbeat with a longer connection timeout is fine')
  t.match(loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://node-1:7000' }), { REDIS_CLUSTER: true, REDIS_KEY_PREFIX: 'dr:{0}:' }, 'the default prefix has its hash tag')
})

t.test('the runner\'s connections: 2 on a worker and 1 on a process that also serves the API, unless REDIS_RUNNER_CONNECTIONS names a number', async (t) => {
  const redis = { REDIS_URL: 'redis://redis:6379' }
  t.equal(runnerConnections(loadConfig({})), 1)
  t.equal(runnerConnections(loadConfig({ ...redis, ROLE: 'worker' })), 2)
  t.equal(runnerConnections(loadConfig({ ...redis, ROLE: 'worker', REDIS_RUNNER_CONNECTIONS: '1' })), 1, 'a number set wins')
  t.equal(runnerConnections(loadConfig({ REDIS_RUNNER_CONNECTIONS: '3' })), 3)
  t.throws(() => loadConfig({ REDIS_RUNNER_CONNECTIONS: '9' }), { name: 'ConfigError', message: /REDIS_RUNNER_CONNECTIONS must be <= 8/ })
  t.equal(runnerConnections(loadConfig({ ...redis, ROLE: 'worker', REDIS_RUNNER_CONNECTIONS: '0' })), 2, '0, set, chooses by ROLE as the default does')
  t.throws(() => loadConfig({ REDIS_RUNNER_CONNECTIONS: '-1' }), { name: 'ConfigError', message: /REDIS_RUNNER_CONNECTIONS must be >= 0/ })
})

t.test('Redis credentials are redacted from URLs', async (t) => {
  t.equal(redactUrl('redis://default:s3cret@redis.railway.internal:6379'), 'redis://default:***@redis.railway.internal:6379')
  t.equal(redactUrl('rediss://:s3cret@host:6380/0'), 'rediss://:***@host:6380/0')
  t.equal(redactUrl('redis://token@host'), 'redis://***@host')
  t.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379')
  t.equal(redactUrl('redis://default:p@ss:w0rd@host:6379'), 'redis://default:***@host:6379', 'an @ and a : in the password')
  t.equal(redactUrl('redis://default:p%40ss@host'), 'redis://default:***@host', 'a percent-encoded @')
  t.equal(redactUrl('rediss://user:a@b@c@host/0?x=@'), 'rediss://user:***@host/0?x=@', 'nothing of the password, whatever it holds')
})

/** The `| \`NAME\` | default | ... |` rows of a Markdown table, by name. */
function settingRows (file: string): Map<string, string> {
  const text = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')
  return new Map(text.split('\n').flatMap((line) => {
    const name = /^\| `([A-Z][A-Z0-9_]+)` \|/.exec(line)?.[1]
    return name === undefined ? [] : [[name, line] as [string, string]]
  }))
}

function shownDefault (name: string): string | RegExp {
  const declared = String((ConfigSchema.properties as Record<string, { default?: unknown }>)[name]?.default)
  return declared === '' ? /\(empty\)/ : declared
}

t.test('docs/configuration.md documents every variable with its default, and nothing else', async (t) => {
  const rows = settingRows('docs/configuration.md')
  const defaults = loadConfig({}) as Record<string, unknown>
  for (const name of Object.keys(ConfigSchema.properties)) {
    t.ok(rows.has(name), `${name} has a row in docs/configuration.md`)
    t.match(rows.get(name) ?? '', shownDefault(name), `${name}'s row shows its default`)
    t.not(defaults[name], undefined)
  }
  t.same([...rows.keys()].filter((name) => !(name in ConfigSchema.properties)), [], 'no row for a variable the service does not read')
})

t.test('the README\'s table of the settings people change names real variables with their defaults', async (t) => {
  const rows = settingRows('README.md')
  t.ok(rows.size >= 8, `the README lists the common settings (${rows.size})`)
  for (const [name, row] of rows) {
    t.ok(name in ConfigSchema.properties, `${name} is a variable the service reads`)
    t.match(row, shownDefault(name), `${name}'s row shows its default`)
  }
})

t.test('--demo slows each research step down so progress can be watched, unless RESEARCH_STEP_DELAY_MS is set; other arguments are refused', async (t) => {
  t.equal(loadConfig(environmentFor(['--demo'], {})).RESEARCH_STEP_DELAY_MS, Number(DEMO_STEP_DELAY_MS))
  t.equal(loadConfig(environmentFor(['--demo'], { RESEARCH_STEP_DELAY_MS: '50' })).RESEARCH_STEP_DELAY_MS, 50, 'an explicit setting wins')
  t.equal(loadConfig(environmentFor([], {})).RESEARCH_STEP_DELAY_MS, 0, 'full speed without it')
  t.throws(() => environmentFor(['--port', '80'], {}), { name: 'ConfigError', message: /Unknown argument --port: the server takes only --demo/ })
})
