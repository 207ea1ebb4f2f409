import t from 'tap'
import { sha256Hex } from '../../src/auth/keys.js'
import { json, startApp, waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

const post = (app: any, key: string | undefined, body: object = { query: 'idempotent research', depth: 'quick' }, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/v1/research', headers: { ...(key === undefined ? {} : { 'idempotency-key': key }), ...headers }, payload: body })

t.test('the same Idempotency-Key and body return the same job (200), in memory mode', async (t) => {
  const app = await startApp(t)
  const first = await post(app, 'order-42')
  t.equal(first.statusCode, 202)
  const again = await post(app, 'order-42')
  t.equal(again.statusCode, 200)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(json(again).job_id, json(first).job_id)
  t.equal(again.headers.location, `/v1/jobs/${json(first).job_id}`)
  t.equal(json(await app.inject({ url: '/v1/jobs' })).jobs.length, 1, 'one job, not two')
  const other = await post(app, 'order-43')
  t.not(json(other).job_id, json(first).job_id, 'another key, another job')
  t.equal((await post(app, undefined)).statusCode, 202, 'no key: a new job every time')
})

t.test('the same key with a different body is a 422; a malformed key is a 400', async (t) => {
  const app = await startApp(t)
  await post(app, 'k1', { query: 'first question' })
  const reused = await post(app, 'k1', { query: 'another question' })
  t.equal(reused.statusCode, 422)
  t.match(json(reused), { error: 'idempotency_key_reused', message: /different request body/ })
  t.equal((await post(app, 'k1', { query: '  first question  ' })).statusCode, 200, 'the body is compared after trimming, as the job stores it')
  for (const bad of ['has space', 'x'.repeat(256)]) {
    const res = await post(app, bad)
    t.equal(res.statusCode, 400, JSON.stringify(bad).slice(0, 20))
    t.equal(json(res).error, 'validation_error')
  }
})

t.test('keys are per tenant', async (t) => {
  const app = await startApp(t, { API_KEYS: `alice:${sha256Hex('a-key')}, bob:${sha256Hex('b-key')}` })
  const alice = await post(app, 'shared', undefined, { authorization: 'Bearer a-key' })
  const bob = await post(app, 'shared', undefined, { authorization: 'Bearer b-key' })
  t.equal(alice.statusCode, 202)
  t.equal(bob.statusCode, 202)
  t.not(json(alice).job_id, json(bob).job_id)
})

t.test('atomic across two replicas sharing Redis: concurrent retries create exactly one job', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const a = await startApp(t, { REDIS_URL: redis.url })
  const b = await startApp(t, { REDIS_URL: redis.url })
  await waitFor('both on Redis', () => a.store.mode === 'redis' && b.store.mode === 'redis')
  const answers = await Promise.all(Array.from({ length: 10 }, (_v, i) => post(i % 2 === 0 ? a : b, 'payment-7')))
  const ids = new Set(answers.map((r) => json(r).job_id))
  t.equal(ids.size, 1, 'every answer names the same job')
  t.same(answers.map((r) => r.statusCode).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 202], 'one 202, nine replays')
  t.equal(json(await b.inject({ url: '/v1/jobs' })).jobs.length, 1)
})
