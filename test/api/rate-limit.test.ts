import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { sha256Hex } from '../../src/auth/keys.js'
import { json, startApp, waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

const limits = { RATE_LIMIT_ENABLED: true, RATE_LIMIT_CREATE_MAX: 3, RATE_LIMIT_POLL_MAX: 5, RATE_LIMIT_WINDOW_MS: 1500 }
const create = (app: any, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/v1/research', headers, payload: { query: 'rate limits', depth: 'quick' } })

t.test('creating past the budget answers 429 with Retry-After and X-RateLimit-* headers, then recovers', async (t) => {
  const app = await startApp(t, limits)
  const first = await create(app)
  t.equal(first.statusCode, 202)
  t.equal(first.headers['x-ratelimit-limit'], '3')
  t.equal(first.headers['x-ratelimit-remaining'], '2')
  await create(app)
  await create(app)
  const limited = await create(app)
  t.equal(limited.statusCode, 429)
  t.match(json(limited), { error: 'rate_limited', message: /Rate limit reached: 3 creates per 1.5 s/ })
  t.ok(Number(limited.headers['retry-after']) >= 1)
  t.equal(limited.headers['x-ratelimit-remaining'], '0')
  const poll = await app.inject({ url: `/v1/jobs/${json(first).job_id}` })
  t.equal(poll.statusCode, 200, 'polling has its own budget')
  t.equal(poll.headers['x-ratelimit-limit'], '5')
  for (let i = 0; i < 4; i++) await app.inject({ url: '/v1/jobs' })
  t.equal((await app.inject({ url: '/v1/jobs' })).statusCode, 429, 'and it runs out too')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'health is never limited')
  await sleep(1600)
  t.equal((await create(app)).statusCode, 202, 'a new window, a new budget')
})

t.test('each API key has its own budget', async (t) => {
  const app = await startApp(t, { ...limits, API_KEYS: `alice:${sha256Hex('alice-key')}, bob:${sha256Hex('bob-key')}` })
  for (let i = 0; i < 3; i++) await create(app, { authorization: 'Bearer alice-key' })
  t.equal((await create(app, { authorization: 'Bearer alice-key' })).statusCode, 429)
  t.equal((await create(app, { authorization: 'Bearer bob-key' })).statusCode, 202, 'bob is not limited by alice')
})

t.test('replicas share the budget through Redis, and count locally while Redis is down', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const config = { ...limits, RATE_LIMIT_WINDOW_MS: 60_000, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: 200, REDIS_BREAKER_MS: 100 }
  const a = await startApp(t, config)
  const b = await startApp(t, config)
  await waitFor('both on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  t.equal((await create(a)).statusCode, 202)
  t.equal((await create(a)).statusCode, 202)
  t.equal((await create(b)).statusCode, 202)
  const limited = await create(b)
  t.equal(limited.statusCode, 429, 'the third create on A and B together used the budget up')

  await redis.kill()
  const c = await startApp(t, config)
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await create(c)).statusCode)
  t.same(statuses, [202, 202, 202, 429], 'with Redis down each process enforces the limit itself')
})

t.test('polls past the poll budget leave the create budget whole, and creates past theirs leave polls whole', async (t) => {
  const app = await startApp(t, { ...limits, RATE_LIMIT_POLL_MAX: 4, RATE_LIMIT_WINDOW_MS: 60_000 })
  const first = await create(app)
  t.equal(first.statusCode, 202)
  const polls = []
  for (let i = 0; i < 6; i++) polls.push((await app.inject({ url: `/v1/jobs/${json(first).job_id}` })).statusCode)
  t.same(polls, [200, 200, 200, 200, 429, 429], 'the poll budget ran out')
  t.equal((await create(app)).statusCode, 202, 'a poller can still start a job')

  const other = await startApp(t, { ...limits, RATE_LIMIT_POLL_MAX: 4, RATE_LIMIT_WINDOW_MS: 60_000 })
  for (let i = 0; i < 3; i++) await create(other)
  t.equal((await create(other)).statusCode, 429, 'the create budget ran out')
  t.equal((await other.inject({ url: '/v1/jobs' })).statusCode, 200, 'and polls go on')
})

t.test('a 429 names the window, and Retry-After gives the time left in it', async (t) => {
  const app = await startApp(t, { ...limits, RATE_LIMIT_WINDOW_MS: 60_000 })
  for (let i = 0; i < 3; i++) await create(app)
  await sleep(1100)
  const limited = await create(app)
  t.equal(limited.statusCode, 429)
  t.match(json(limited).message, /^Rate limit reached: 3 creates per 60 s; retry in (58|59) s$/)
  t.ok(['58', '59'].includes(limited.headers['retry-after'] as string), `Retry-After ${limited.headers['retry-after'] as string}`)
})

t.test('wrong API keys are throttled per IP: past the budget, every keyed request from that IP gets 429', async (t) => {
  const app = await startApp(t, { ...limits, RATE_LIMIT_AUTH_FAILURES_MAX: 5, RATE_LIMIT_WINDOW_MS: 60_000, API_KEYS: `alice:${sha256Hex('alice-key')}` })
  const from = (ip: string, key: string) => app.inject({ url: '/v1/jobs', remoteAddress: ip, headers: { authorization: `Bearer ${key}` } })
  const guesses = []
  for (let i = 0; i < 7; i++) guesses.push((await from('203.0.113.9', `guess-${i}`)).statusCode)
  t.same(guesses, [401, 401, 401, 401, 401, 429, 429])
  const right = await from('203.0.113.9', 'alice-key')
  t.equal(right.statusCode, 429, 'a right guess from there is not told apart from a wrong one')
  t.ok(Number(right.headers['retry-after']) > 0)
  t.equal((await from('198.51.100.7', 'alice-key')).statusCode, 200, 'another address is not affected')
})

t.test('X-Forwarded-For is believed only from trusted proxies (TRUST_PROXY), so the per-IP key cannot be chosen by the client', async (t) => {
  const rotate = async (app: any, remoteAddress: string): Promise<number[]> => {
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await app.inject({ method: 'POST', url: '/v1/research', remoteAddress, headers: { 'x-forwarded-for': `198.51.100.${i}` }, payload: { query: 'spoofed', depth: 'quick' } })).statusCode)
    return statuses
  }
  t.same(await rotate(await startApp(t, { ...limits, RATE_LIMIT_WINDOW_MS: 60_000 }), '203.0.113.9'), [202, 202, 202, 429], 'by default no proxy is trusted: one client, one budget')
  const behindRailway = await startApp(t, { ...limits, RATE_LIMIT_WINDOW_MS: 60_000, TRUST_PROXY: '1' })
  t.same(await rotate(behindRailway, '10.0.0.1'), [202, 202, 202, 202], 'one trusted hop (Railway\'s edge): the forwarded client address is the key')
})
