import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import t from 'tap'
import { json, startApp } from '../helpers/app.js'

const RUNS = 10_000

const id = fc.oneof(
  fc.uuid(),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.stringMatching(/^[0-9a-f-]{30,40}$/),
  fc.integer({ min: 1, max: 5000 }).map((n) => 'a'.repeat(n)),
  fc.constantFrom('job:*', '../../etc/passwd', '%00', '{"$gt":""}', 'null', 'FLUSHALL')
)
const query = fc.dictionary(
  fc.constantFrom('status', 'limit', 'cursor', 'depth', 'x'),
  fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.constantFrom('pending', 'completed', '0', '101', '-1', '1e9')),
  { maxKeys: 3 }
)
const path = fc.oneof(
  fc.constantFrom('/v1/research', '/v1/jobs', '/health', '/v1/stats', '/metrics', '/docs/json', '/api/v4/deep-research', '/api/v4/admin/cleanup-jobs', '/', '/v2'),
  id.map((v) => `/v1/jobs/${encodeURIComponent(v)}`),
  id.map((v) => `/v1/jobs/${encodeURIComponent(v)}/cancel`),
  id.map((v) => `/api/v4/job/${encodeURIComponent(v)}`),
  fc.string({ maxLength: 30 }).map((v) => `/${encodeURIComponent(v)}`)
)
const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.record({
    query: fc.oneof(fc.string({ maxLength: 100 }), fc.string({ unit: 'grapheme', maxLength: 50 }), fc.integer({ min: 1990, max: 2100 }).map((n) => 'q'.repeat(n)), fc.integer(), fc.constant(null), fc.array(fc.string())),
    depth: fc.oneof(fc.constantFrom('quick', 'standard', 'deep', 'DEEP', ''), fc.integer(), fc.constant(null))
  }, { requiredKeys: [] }).chain((b) => fc.oneof(fc.constant(b), fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }).map((extra) => ({ ...extra, ...b })))).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.integer({ min: 1, max: 80 }).map((kb) => JSON.stringify({ query: 'x'.repeat(kb * 1024) }))
)
const headerValue = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 })
const headers = fc.record({
  'content-type': fc.oneof(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/json; charset=utf-16'), headerValue),
  accept: fc.oneof(fc.constantFrom('application/json', '*/*', 'text/html'), headerValue),
  'x-request-id': headerValue,
  'x-api-key': headerValue,
  'if-none-match': headerValue
}, { requiredKeys: [] })
const method = fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD') as fc.Arbitrary<'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH' | 'OPTIONS' | 'HEAD'>

interface Request { m: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH' | 'OPTIONS' | 'HEAD', p: string, q: Record<string, string>, b: string | undefined, h: Record<string, string> }
const anything: fc.Arbitrary<Request> = fc.record({ m: method, p: path, q: query, b: body, h: headers })
// Near-valid creates, so the fuzzing also reaches the handlers behind validation.
const creates: fc.Arbitrary<Request> = fc.record({
  m: fc.constant('POST' as const),
  p: fc.constantFrom('/v1/research', '/api/v4/deep-research'),
  q: fc.constant({}),
  b: fc.record({ query: fc.string({ unit: 'grapheme', minLength: 0, maxLength: 300 }), depth: fc.constantFrom('quick', 'standard', 'deep', 'extreme') }, { requiredKeys: ['query'] }).map((v) => JSON.stringify(v)),
  h: fc.constant({ 'content-type': 'application/json' })
})
const request = fc.oneof({ arbitrary: anything, weight: 4 }, { arbitrary: creates, weight: 1 })

t.test(`${RUNS} generated requests at every route: no 5xx, every 4xx a problem document (FastAPI's { detail } on the legacy routes), the process stays healthy`, async (t) => {
  const app = await startApp(t, { MEMORY_MAX_JOBS: 20_000, BODY_LIMIT_BYTES: 65536 })
  const statuses = new Map<number, number>()
  let runs = 0
  await fc.assert(fc.asyncProperty(request, async ({ m, p, q, b, h }) => {
    runs++
    const res = await app.inject({ method: m, url: p, query: q, payload: m === 'GET' || m === 'HEAD' ? undefined : b, headers: h })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 500) throw new Error(`${m} ${p} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
    if (res.statusCode >= 400 && m !== 'HEAD') {
      const parsed = json(res)
      // The original service's routes keep FastAPI's `{ detail }`; every other error is a problem document.
      const legacy = p.startsWith('/api/v4/') && res.statusCode !== 405
      if (legacy && parsed.detail === undefined) throw new Error(`${m} ${p} ${res.statusCode} without FastAPI's detail: ${res.body.slice(0, 300)}`)
      if (!legacy && (typeof parsed.error !== 'string' || typeof parsed.message !== 'string' || parsed.status !== res.statusCode)) throw new Error(`${m} ${p} ${res.statusCode} without { error, message, status }: ${res.body.slice(0, 300)}`)
      if (/\n\s+at /.test(res.body)) throw new Error(`stack trace in ${res.body.slice(0, 300)}`)
    }
  }), { numRuns: RUNS })
  t.equal(runs, RUNS)
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`)
  t.ok([...statuses.keys()].some((s) => s === 202), 'some generated bodies were valid and created jobs')
  t.ok([...statuses.keys()].some((s) => s === 400), 'and many were refused')

  const health = await app.inject({ url: '/health' })
  t.equal(health.statusCode, 200, 'still healthy afterwards')
  t.ok(app.store.memory.size <= 20_000, 'the job store stayed within its bound')
  // What the process holds on to, not what the collector has yet to sweep (that depends on when
  // it last ran, which differs between Node versions and machines): a full collection first.
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
  const heap = process.memoryUsage().heapUsed
  t.ok(heap < 512 * 2 ** 20, `heap ${Math.round(heap / 2 ** 20)} MiB retained afterwards`)
})
