// The error catalogue: every code a client meets is in it, with the status it is answered with,
// and docs/api.md shows it exactly. Each probe goes through a real socket, as a client meets it.
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { ERROR_CATALOGUE, type ErrorCode } from '../src/errors.js'
import { sha256Hex } from '../src/auth/keys.js'
import { documentedTable, errorTable } from './helpers/error-table.js'
import { startApp } from './helpers/app.js'
import { buildApp } from '../src/app.js'
import { defaultConfig } from '../src/config.js'

const ID = '0190a0b0-0000-7000-8000-000000000000'

/** Asserts a problem document of a catalogue code, with its catalogue status and title. */
function isCatalogued (t: Test, status: number, type: string | null, body: any, code: ErrorCode): void {
  t.equal(body.code, code, `answered ${code}`)
  t.ok(Object.hasOwn(ERROR_CATALOGUE, body.code), `${body.code} is in the catalogue`)
  t.equal(status, ERROR_CATALOGUE[code].status, `${code} with its catalogue status ${ERROR_CATALOGUE[code].status}`)
  t.match(type, /^application\/problem\+json/)
  t.match(body, { type: `urn:deep-research:problem:${code}`, title: ERROR_CATALOGUE[code].title, status, error: code, detail: String, message: String })
}

async function probe (t: Test, base: string, code: ErrorCode, path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(`${base}${path}`, init)
  isCatalogued(t, res.status, res.headers.get('content-type'), await res.clone().json(), code)
  return res
}

/** Sends raw bytes and reads the whole answer (the server closes the connection after a parser error). */
async function raw (port: number, bytes: string): Promise<{ status: number, type: string | null, body: any }> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let data = ''
    socket.on('data', (chunk) => { data += chunk.toString() })
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
  })
  const [head = '', body = ''] = text.split('\r\n\r\n')
  return { status: Number(head.split(' ')[1]), type: /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? null, body: JSON.parse(body) }
}

t.test('docs/api.md shows the catalogue exactly (npm run docs:errors writes it)', async (t) => {
  t.equal(documentedTable(), errorTable())
})

t.test('every code has a 4xx or 5xx status, a title and a meaning', async (t) => {
  for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
    t.ok(entry.status >= 400 && entry.status < 600, `${code}: ${entry.status}`)
    t.ok(entry.title.length > 0 && entry.meaning.endsWith('.'), `${code} is described`)
  }
})

t.test('the framework\'s and the parser\'s errors answer catalogue problems over a real socket', async (t) => {
  const app = await startApp(t, { BODY_LIMIT_BYTES: 1024 })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const port = Number(new URL(base).port)
  await probe(t, base, 'validation_error', '/v1/jobs/not-an-id')
  await probe(t, base, 'invalid_json', '/v1/research', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad' })
  await probe(t, base, 'invalid_body', '/v1/research', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' })
  await probe(t, base, 'invalid_url', '/v1/jobs/%E0%A4%A')
  await probe(t, base, 'invalid_cursor', '/v1/jobs?cursor=nonsense')
  await probe(t, base, 'not_found', `/v1/jobs/${ID}`)
  await probe(t, base, 'not_found', '/v1/nothing')
  const wrong = await probe(t, base, 'method_not_allowed', '/v1/jobs', { method: 'PUT' })
  t.equal(wrong.headers.get('allow'), 'GET, HEAD, OPTIONS')
  await probe(t, base, 'payload_too_large', '/v1/research', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'x'.repeat(2000) }) })
  await probe(t, base, 'uri_too_long', `/v1/jobs/${'a'.repeat(120)}`)
  await probe(t, base, 'unsupported_media_type', '/v1/research', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' })

  const garbage = await raw(port, 'HELLO WORLD\r\n\r\n')
  isCatalogued(t, garbage.status, garbage.type, garbage.body, 'bad_request')
  const longUrl = await raw(port, `GET /v1/jobs?q=${'x'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  isCatalogued(t, longUrl.status, longUrl.type, longUrl.body, 'headers_too_large')
})

t.test('a request that does not arrive in time answers 408 request_timeout as a problem', async (t) => {
  const app = await startApp(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  // The timeout Node's own check raises (test/api/timeouts.test.ts waits for it) is raised here at once, on the real server socket.
  const accepted = new Promise<import('node:net').Socket>((resolve) => app.server.once('connection', resolve))
  const answer = new Promise<string>((resolve) => {
    const socket = connect(Number(new URL(base).port), '127.0.0.1', () => socket.write('POST /v1/research HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"qu'))
    let data = ''
    socket.on('data', (chunk) => { data += chunk.toString() })
    socket.on('close', () => resolve(data))
  })
  const serverSide = await accepted
  await new Promise((resolve) => setTimeout(resolve, 50))
  app.server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), serverSide)
  const text = await answer
  const [head = '', body = ''] = text.split('\r\n\r\n')
  isCatalogued(t, Number(head.split(' ')[1]), /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? null, JSON.parse(body), 'request_timeout')
})

t.test('auth failures, quotas and idempotency conflicts answer catalogue problems', async (t) => {
  const app = await startApp(t, {
    API_KEYS: `alice:${sha256Hex('alice-key')}`,
    ADMIN_KEYS: `root:${sha256Hex('root-key')}`,
    RATE_LIMIT_ENABLED: true,
    RATE_LIMIT_CREATE_MAX: 2,
    RATE_LIMIT_AUTH_FAILURES_MAX: 2
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const alice = { authorization: 'Bearer alice-key', 'content-type': 'application/json' }
  await probe(t, base, 'unauthorized', '/v1/jobs')
  await probe(t, base, 'forbidden', '/metrics', { headers: alice })
  const body = JSON.stringify({ query: 'How do leases work?' })
  const created = await fetch(`${base}/v1/research`, { method: 'POST', headers: { ...alice, 'idempotency-key': 'k1' }, body })
  t.equal(created.status, 202)
  await probe(t, base, 'idempotency_key_reused', '/v1/research', { method: 'POST', headers: { ...alice, 'idempotency-key': 'k1' }, body: JSON.stringify({ query: 'Another question?' }) })
  const { job_id: id } = await created.json() as { job_id: string }
  const cancelled = await fetch(`${base}/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: alice.authorization } })
  t.equal(cancelled.status, 200)
  await probe(t, base, 'already_finished', `/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: alice.authorization } })
  await fetch(`${base}/v1/research`, { method: 'POST', headers: alice, body })
  const limited = await probe(t, base, 'rate_limited', '/v1/research', { method: 'POST', headers: alice, body })
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'with Retry-After')
  for (let i = 0; i < 2; i++) await fetch(`${base}/v1/jobs`, { headers: { authorization: 'Bearer wrong' } })
  await probe(t, base, 'too_many_auth_failures', '/v1/jobs', { headers: { authorization: 'Bearer wrong' } })
})

t.test('a request that arrives while the process stops answers 503 shutting_down, not the framework\'s plain 503', async (t) => {
  const app = await buildApp(defaultConfig({ LOG_LEVEL: 'silent', REDIS_URL: '' }))
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  // Holds the close open after it began, as a slow shutdown would.
  app.addHook('preClose', async () => { await held })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const closing = app.close()
  // The listener closes after the preClose hooks: until then a request still arrives.
  await probe(t, base, 'shutting_down', '/v1/jobs').then((res) => t.equal(res.headers.get('retry-after'), '1'))
  release()
  await closing
})
