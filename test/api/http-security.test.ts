import t from 'tap'
import { json, startApp } from '../helpers/app.js'

t.test('security headers on API responses; Swagger UI gets a CSP of its own', async (t) => {
  const app = await startApp(t)
  const res = await app.inject({ url: '/health' })
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  t.match(res.headers['content-security-policy'], /default-src 'self'/)
  t.notMatch(res.headers['content-security-policy'], /upgrade-insecure-requests/, 'plain-HTTP deployments keep working')
  t.notOk('access-control-allow-origin' in res.headers, 'no CORS unless configured')
  const docs = await app.inject({ url: '/docs/' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-security-policy'], /script-src 'self'/)
  t.notMatch(docs.headers['content-security-policy'], /upgrade-insecure-requests/)
})

t.test('CORS_ORIGINS allows exactly the listed origins, with the headers a browser client needs', async (t) => {
  const app = await startApp(t, { CORS_ORIGINS: 'https://app.example, https://admin.example' })
  const allowed = await app.inject({ method: 'OPTIONS', url: '/v1/research', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example')
  const created = await app.inject({ method: 'POST', url: '/v1/research', headers: { origin: 'https://admin.example' }, payload: { query: 'cors' } })
  t.equal(created.headers['access-control-allow-origin'], 'https://admin.example')
  t.match(created.headers['access-control-expose-headers'], /Location/)
  const other = await app.inject({ url: '/health', headers: { origin: 'https://evil.example' } })
  t.notOk('access-control-allow-origin' in other.headers, 'an unlisted origin gets no CORS headers')
  const open = await startApp(t, { CORS_ORIGINS: '*' })
  t.equal((await open.inject({ url: '/health', headers: { origin: 'https://any.example' } })).headers['access-control-allow-origin'], '*')
})

t.test('bodies over BODY_LIMIT_BYTES answer 413 with the usual error body', async (t) => {
  const app = await startApp(t, { BODY_LIMIT_BYTES: 2048 })
  const res = await app.inject({ method: 'POST', url: '/v1/research', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ query: 'x'.repeat(3000) }) })
  t.equal(res.statusCode, 413)
  t.match(json(res), { error: 'payload_too_large', message: /Request body is too large/ })
})
