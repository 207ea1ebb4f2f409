import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import t from 'tap'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { startReceiver } from '../helpers/receiver.js'
import { RedisServer } from '../helpers/redis-server.js'
import { RedisKeys } from '../../src/store/keys.js'

const SECRET = `whsec_${randomBytes(32).toString('base64')}`
const FAST = { WEBHOOK_SECRET: SECRET, ALLOW_PRIVATE_URLS: true, WEBHOOK_POLL_MS: 20, WEBHOOK_RETRY_BASE_MS: 50 }

t.test('a finished job POSTs its record, signed per Standard Webhooks (checked with the reference library)', async (t) => {
  const receiver = await startReceiver(t)
  const app = await startApp(t, FAST)
  const created = await createJob(app, { query: 'lease expiry', depth: 'quick', webhook_url: receiver.url })
  t.match(created.webhook, { url: receiver.url, status: 'pending', message_id: `msg_${created.job_id}`, deliveries: [] })
  const job = await pollJob(app, created.job_id, (j) => j.webhook?.status !== 'pending' && j.status === 'completed')
  t.equal(receiver.received.length, 1)
  const delivery = receiver.received[0] as { headers: Record<string, string>, body: string }
  const payload = new Webhook(SECRET).verify(delivery.body, delivery.headers) as any
  t.match(payload, { type: 'job.completed', data: { job_id: created.job_id, status: 'completed', progress: 100 } })
  t.ok(payload.data.result.sources.length > 0, 'the record carries the report')
  t.equal(delivery.headers['webhook-id'], `msg_${created.job_id}`)
  t.match(delivery.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/)
  t.throws(() => new Webhook(SECRET).verify(delivery.body.replace('completed', 'failed!!!'), delivery.headers), 'a changed body does not verify')
  t.throws(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(delivery.body, delivery.headers), 'another secret does not verify')
  t.match(job.webhook, { status: 'delivered', next_attempt_at: null, deliveries: [{ attempt: 1, status_code: 200, error: null }] })
  t.ok(job.webhook.delivered_at)
})

t.test('failed deliveries are retried with backoff, with the same webhook-id, each attempt on the record', async (t) => {
  const receiver = await startReceiver(t)
  receiver.answers.push(500, 503)
  const app = await startApp(t, FAST)
  const created = await createJob(app, { query: 'q', depth: 'quick', webhook_url: receiver.url })
  const job = await pollJob(app, created.job_id, (j) => j.webhook?.status === 'delivered')
  t.same(job.webhook.deliveries.map((d: any) => [d.attempt, d.status_code, d.error]), [[1, 500, 'HTTP 500'], [2, 503, 'HTTP 503'], [3, 200, null]])
  t.same(receiver.received.map((r) => r.headers['webhook-id']), Array(3).fill(`msg_${created.job_id}`))
  const gaps = job.webhook.deliveries.slice(1).map((d: any, i: number) => Date.parse(d.at) - Date.parse(job.webhook.deliveries[i].at))
  t.ok(gaps[1] >= gaps[0] * 0.9 || gaps[1] >= 25, `backoff grows: ${gaps.join(', ')} ms`)
})

t.test('past the retry window the webhook is marked failed and no longer tried', async (t) => {
  const receiver = await startReceiver(t)
  receiver.answers.push(...Array(100).fill(500))
  const app = await startApp(t, { ...FAST, WEBHOOK_RETRY_WINDOW_MS: 1000, WEBHOOK_RETRY_BASE_MS: 100 })
  const created = await createJob(app, { query: 'q', depth: 'quick', webhook_url: receiver.url })
  const job = await pollJob(app, created.job_id, (j) => j.webhook?.status === 'failed')
  t.ok(job.webhook.deliveries.length >= 3)
  t.equal(job.webhook.next_attempt_at, null)
  const count = receiver.received.length
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(receiver.received.length, count, 'nothing more is sent')
})

t.test('cancelled jobs call back too', async (t) => {
  const receiver = await startReceiver(t)
  const app = await startApp(t, FAST, { engine: new PacedEngine(500) })
  const created = await createJob(app, { query: 'q', depth: 'deep', webhook_url: receiver.url })
  await app.inject({ method: 'POST', url: `/v1/jobs/${created.job_id}/cancel` })
  await waitFor('the delivery', () => receiver.received.length === 1)
  t.equal(JSON.parse(receiver.received[0]?.body as string).type, 'job.cancelled')
})

t.test('the SSRF guard applies to webhook URLs: private literals refused at once, names resolving to them at delivery', async (t) => {
  const receiver = await startReceiver(t)
  const app = await startApp(t, { ...FAST, ALLOW_PRIVATE_URLS: false })
  const literal = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'q', webhook_url: receiver.url } })
  t.equal(literal.statusCode, 400)
  t.match(json(literal), { error: 'invalid_options', message: /^webhook_url is refused: private, loopback or link-local address/ })
  const created = await createJob(app, { query: 'q', depth: 'quick', webhook_url: `http://localhost:${receiver.port}/hooks` })
  const job = await pollJob(app, created.job_id, (j) => j.webhook?.status === 'failed')
  t.match(job.webhook.deliveries, [{ attempt: 1, status_code: null, error: /^refused: private, loopback or link-local address .*ALLOW_PRIVATE_URLS/ }])
  t.equal(job.webhook.deliveries.length, 1, 'a refused address is not retried')
  t.equal(receiver.received.length, 0)
})

t.test('delivery errors on the record say "refused" or "could not resolve", never the address or the resolver\'s error; the log keeps them', async (t) => {
  const receiver = await startReceiver(t)
  const leaks = /127\.0\.0\.1|::1|resolves to|getaddrinfo|ENOTFOUND|EAI_/
  const lines: string[] = []
  const app = await startApp(t, { ...FAST, ALLOW_PRIVATE_URLS: false }, { logger: { level: 'warn', stream: { write: (line: string) => lines.push(line) } } })
  const literal = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'q', webhook_url: receiver.url } })
  t.equal(json(literal).message, 'webhook_url is refused: private, loopback or link-local address (set ALLOW_PRIVATE_URLS=true to allow it)')
  const named = await createJob(app, { query: 'q', depth: 'quick', webhook_url: `http://localhost:${receiver.port}/hooks` })
  const unknown = await createJob(app, { query: 'q', depth: 'quick', webhook_url: 'http://no-such-host.invalid/hooks' })
  const refused = await pollJob(app, named.job_id, (j) => j.webhook?.status === 'failed')
  const unresolved = await pollJob(app, unknown.job_id, (j) => j.webhook?.deliveries.length >= 1)
  t.same(refused.webhook.deliveries.map((d: any) => d.error), ['refused: private, loopback or link-local address (set ALLOW_PRIVATE_URLS=true to allow it)'])
  t.equal(unresolved.webhook.deliveries[0].error, 'could not resolve the host name')
  t.equal(unresolved.webhook.status, 'pending', 'a name that does not resolve now may later: retried')
  for (const job of [refused, unresolved]) t.notMatch(JSON.stringify(job.webhook), leaks)
  // The log line follows the record's write; the record is what the polls above waited for.
  await waitFor('both log lines', () => lines.filter((line) => line.includes('"component":"webhooks"')).length >= 2)
  const log = lines.join('')
  t.match(log, /"address":"(127\.0\.0\.1|::1)"/, 'the log names the address refused')
  t.match(log, /ENOTFOUND/, 'the log keeps the resolver\'s error')
  t.equal(receiver.received.length, 0)
})

t.test('without WEBHOOK_SECRET a webhook_url is refused with a clear 400', async (t) => {
  const app = await startApp(t)
  const res = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'q', webhook_url: 'https://example.org/hook' } })
  t.equal(res.statusCode, 400)
  t.match(json(res), { error: 'webhooks_unavailable', message: /WEBHOOK_SECRET/ })
  const bad = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'q', webhook_url: 'ftp://example.org/hook' } })
  t.equal(json(bad).error, 'validation_error')
})

t.test('at least once across replicas and restarts: a delivery another replica could not make is made by the next one', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const receiver = await startReceiver(t)
  receiver.answers.push(503)
  const a = await startApp(t, { ...FAST, REDIS_URL: redis.url, WORKER_ID: 'a', WEBHOOK_RETRY_BASE_MS: 400 })
  await waitFor('Redis ready', () => a.store.mode === 'redis')
  const created = await createJob(a, { query: 'q', depth: 'quick', webhook_url: receiver.url })
  await pollJob(a, created.job_id, (j) => j.webhook?.deliveries.length === 1)
  await a.close()
  const b = await startApp(t, { ...FAST, REDIS_URL: redis.url, WORKER_ID: 'b' })
  const job = await pollJob(b, created.job_id, (j) => j.webhook?.status === 'delivered', 10_000)
  t.same(job.webhook.deliveries.map((d: any) => d.status_code), [503, 200])
  t.same(receiver.received.map((r) => r.answered), [503, 200])
  t.same(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size, 1)
  const admin = await redis.client()
  t.equal(await admin.zScore(new RedisKeys().webhooks, created.job_id), null, 'the delivery left the due set once made')
  await admin.close()
})
