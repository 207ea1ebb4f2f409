import t from 'tap'
import { createJob, json, pollJob, startApp } from '../helpers/app.js'

t.test('JSON answers carry OWASP\'s API headers; pages (jobs page, Swagger UI) carry helmet\'s full set', async (t) => {
  const app = await startApp(t)
  const job = await createJob(app)
  await pollJob(app, job.job_id)
  const answers = [
    await app.inject({ url: '/health' }),
    await app.inject({ url: `/v1/jobs/${job.job_id as string}` }),
    await app.inject({ url: '/v1/jobs/not-a-uuid' }),
    await app.inject({ url: '/no/such/route' }),
    await app.inject({ url: `/v1/jobs/${job.job_id as string}/events` })
  ]
  for (const res of answers) {
    const what = `${res.statusCode} ${res.headers['content-type'] as string}`
    t.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'", `${what}: nothing in it may load or be framed`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', what)
    t.equal(res.headers['x-frame-options'], 'DENY', what)
    t.match(res.headers['strict-transport-security'], /^max-age=\d+/, what)
    t.notOk('x-dns-prefetch-control' in res.headers, `${what}: no page-only headers on JSON`)
    t.notOk('access-control-allow-origin' in res.headers, `${what}: no CORS unless configured`)
  }
  t.equal(answers[1]?.headers['cache-control'], 'no-store', 'a poll is never answered from a cache')
  t.equal(answers[4]?.headers['cache-control'], 'no-cache, no-transform', 'the event stream keeps its own caching rule')

  for (const url of ['/', '/ui/app.js', '/docs/']) {
    const page = await app.inject({ url })
    t.equal(page.statusCode, 200, url)
    t.equal(page.headers['x-frame-options'], 'SAMEORIGIN', url)
    t.equal(page.headers['x-content-type-options'], 'nosniff', url)
    t.equal(page.headers['x-dns-prefetch-control'], 'off', `${url}: helmet's page headers`)
    t.match(page.headers['content-security-policy'], /script-src 'self'/, url)
    t.notMatch(page.headers['content-security-policy'], /upgrade-insecure-requests/, `${url}: plain-HTTP deployments keep working`)
  }
  t.match((await app.inject({ url: '/' })).headers['content-security-policy'], /default-src 'self'/)
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
