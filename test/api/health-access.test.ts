// What /health tells whom: with API keys configured, anyone (the platform's health check
// included) gets liveness and readiness, always 200; the detail (Redis and its errors, queue
// depth and running jobs across tenants, the providers) needs an admin key, unless
// HEALTH_DETAILS=public. With no keys configured the API is open, and so is the detail.
import t from 'tap'
import { sha256Hex } from '../../src/auth/keys.js'
import { ON_CLUSTER, json, startApp } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

const KEYS = { alice: 'alice-secret-key-1', root: 'root-secret-key-3' }
const CONFIGURED = { API_KEYS: `alice:${sha256Hex(KEYS.alice)}`, ADMIN_KEYS: `root:${sha256Hex(KEYS.root)}` }
const as = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })
const DETAIL = ['store', 'redis', 'runner', 'auth', 'research', 'uptime_s', 'version']
// Under `npm run test:cluster` an app given no Redis is on the Cluster, not in memory.
const STORE = ON_CLUSTER ? 'redis' : 'memory'

t.test('with keys configured, /health without an admin key is status and role only, always 200; an admin key gets the detail', async (t) => {
  const app = await startApp(t, { ...CONFIGURED, LLM_MODEL: 'gpt-4o-mini' })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  for (const [who, headers] of [['no key', {}], ['a wrong key', as('not-a-key')], ['a client key', as(KEYS.alice)], ['a client key by X-API-Key', { 'x-api-key': KEYS.alice }]] as const) {
    const res = await fetch(`${base}/health`, { headers })
    t.equal(res.status, 200, `${who}: 200 for the platform's health check`)
    t.same(await res.json(), { status: 'ok', role: 'all' }, `${who}: liveness and readiness only`)
  }
  const admin = await fetch(`${base}/health`, { headers: as(KEYS.root) })
  t.equal(admin.status, 200)
  const detail = await admin.json() as Record<string, any>
  t.match(detail, { status: 'ok', role: 'all', store: STORE, auth: 'keys', runner: { running: 0, queued: 0 }, research: { llm: 'gpt-4o-mini' } })
  t.same(Object.keys(detail).sort(), ['role', 'status', ...DETAIL].sort())
})

t.test('with only client keys configured, no one gets the detail', async (t) => {
  const app = await startApp(t, { API_KEYS: CONFIGURED.API_KEYS })
  t.same(json(await app.inject({ url: '/health', headers: as(KEYS.alice) })), { status: 'ok', role: 'all' })
})

t.test('the minimal answer still tells readiness: degraded while Redis is down, without saying why', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  await redis.kill()
  const app = await startApp(t, { ...CONFIGURED, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: 200, REDIS_BREAKER_MS: 100 })
  const res = await app.inject({ url: '/health' })
  t.equal(res.statusCode, 200)
  t.same(json(res), { status: 'degraded', role: 'all' })
  t.match(json(await app.inject({ url: '/health', headers: as(KEYS.root) })), { status: 'degraded', redis: { configured: true, connected: false, error: String } })
})

t.test('HEALTH_DETAILS=public shows the detail to everyone', async (t) => {
  const app = await startApp(t, { ...CONFIGURED, HEALTH_DETAILS: 'public' })
  const res = await app.inject({ url: '/health' })
  t.equal(res.statusCode, 200)
  t.match(json(res), { status: 'ok', role: 'all', auth: 'keys', runner: { queued: 0 } })
})

t.test('with no keys configured the API is open, and /health shows the detail to anyone', async (t) => {
  const app = await startApp(t)
  t.match(json(await app.inject({ url: '/health' })), { status: 'ok', auth: 'open', store: STORE, redis: { configured: ON_CLUSTER }, runner: { queued: 0 } })
})
