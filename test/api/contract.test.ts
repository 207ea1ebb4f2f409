// The HTTP contract: RFC 9457 problem details for every error, the framework's own included
// (unknown route, wrong method, bad URL encoding, an over-long id, bad JSON), with the security
// headers; OPTIONS and 405 with Allow; and the legacy routes in the original FastAPI shapes.
import t, { type Test } from 'tap'
import { json, startApp } from '../helpers/app.js'

const ID = '6f1c1a52-4a37-4e6b-9f3e-1d7a0c2b9e55'

function isProblem (t: Test, res: { statusCode: number, headers: Record<string, unknown>, body: string }, status: number, code: string): void {
  t.equal(res.statusCode, status, `${status} ${code}`)
  t.match(res.headers['content-type'], /^application\/problem\+json/, 'problem+json')
  const body = json(res as never)
  t.match(body, { type: `urn:deep-research:problem:${code}`, title: String, status, detail: String, code, error: code, message: String })
  t.equal(res.headers['x-content-type-options'], 'nosniff', 'with the API security headers')
  t.equal(res.headers['cache-control'], 'no-store')
}

t.test('every error on the API is a problem document, the framework\'s own included', async (t) => {
  const app = await startApp(t)
  isProblem(t, await app.inject({ url: `/v1/jobs/${ID}` }), 404, 'not_found')
  isProblem(t, await app.inject({ url: '/v1/nothing' }), 404, 'not_found')
  isProblem(t, await app.inject({ url: '/v1/jobs/not-an-id' }), 400, 'validation_error')
  isProblem(t, await app.inject({ url: `/v1/jobs/${'a'.repeat(120)}` }), 414, 'uri_too_long')
  isProblem(t, await app.inject({ url: '/v1/jobs/%E0%A4%A' }), 400, 'invalid_url')
  isProblem(t, await app.inject({ method: 'POST', url: '/v1/research', payload: '{bad', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json')
  isProblem(t, await app.inject({ method: 'POST', url: '/v1/research', payload: 'text', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type')
  isProblem(t, await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'x'.repeat(70_000) } }), 413, 'payload_too_large')
})

t.test('a wrong method answers 405 with Allow; OPTIONS answers 204 with Allow', async (t) => {
  const app = await startApp(t)
  const put = await app.inject({ method: 'PUT', url: '/v1/jobs' })
  isProblem(t, put, 405, 'method_not_allowed')
  t.equal(put.headers.allow, 'GET, HEAD, OPTIONS')
  const patch = await app.inject({ method: 'PATCH', url: `/v1/jobs/${ID}` })
  isProblem(t, patch, 405, 'method_not_allowed')
  t.equal(patch.headers.allow, 'DELETE, GET, HEAD, OPTIONS')
  const options = await app.inject({ method: 'OPTIONS', url: `/v1/jobs/${ID}/cancel` })
  t.equal(options.statusCode, 204)
  t.equal(options.headers.allow, 'OPTIONS, POST')
  isProblem(t, await app.inject({ method: 'OPTIONS', url: '/v1/nothing' }), 404, 'not_found')
})

t.test('the legacy routes answer exactly as the original FastAPI service did', async (t) => {
  const app = await startApp(t)
  const missing = await app.inject({ url: `/api/v4/job/${ID}` })
  t.equal(missing.statusCode, 404)
  t.same(json(missing), { detail: 'Job not found' })
  t.same(json(await app.inject({ url: '/api/v4/job/not-an-id' })), { detail: 'Job not found' }, 'any unknown string is a 404 too')
  const extra = await app.inject({ method: 'POST', url: '/api/v4/deep-research', payload: { query: 'q', depth: 'quick', max_sources: 3, report_format: 'json' } })
  t.equal(extra.statusCode, 422, 'options of /v1 are not silently dropped')
  t.same(json(extra), { detail: [{ loc: ['body', 'max_sources'], msg: 'Extra inputs are not permitted', type: 'extra_forbidden' }] })
  const noQuery = await app.inject({ method: 'POST', url: '/api/v4/deep-research', payload: { depth: 'quick' } })
  t.equal(noQuery.statusCode, 422)
  t.same(json(noQuery), { detail: [{ loc: ['body', 'query'], msg: 'Field required', type: 'missing' }] })
  const badDepth = await app.inject({ method: 'POST', url: '/api/v4/deep-research', payload: { query: 'q', depth: 'deepest' } })
  t.same(json(badDepth), { detail: [{ loc: ['body', 'depth'], msg: "Input should be 'quick', 'standard' or 'deep'", type: 'enum' }] })
  const badJson = await app.inject({ method: 'POST', url: '/api/v4/deep-research', payload: '{bad', headers: { 'content-type': 'application/json' } })
  t.equal(badJson.statusCode, 422, 'malformed JSON is a 422, as FastAPI answers it')
  t.same(json(badJson), { detail: [{ loc: ['body', 0], msg: 'JSON decode error', type: 'json_invalid' }] })
  const created = await app.inject({ method: 'POST', url: '/api/v4/deep-research', payload: { query: 'How do leases work?', depth: 'quick' } })
  t.equal(created.statusCode, 200)
  t.equal(json(created).status, 'pending')
})
