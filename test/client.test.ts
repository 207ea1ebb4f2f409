import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ApiError, ResearchClient } from '../src/client/index.js'
import { parseEventStream } from '../src/client/sse.js'
import { pollJob, startApp } from './helpers/app.js'
import { startJsonServer } from './helpers/json-server.js'
import { FailingEngine, PacedEngine } from './helpers/engines.js'
import { PermanentError } from '../src/research/engine.js'

const root = new URL('..', import.meta.url).pathname

t.test('the typed client is generated from the committed OpenAPI document: a stale client fails here', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'client-')), 'api-types.ts')
  const run = spawnSync(process.execPath, [join(root, 'node_modules/openapi-typescript/bin/cli.js'), 'openapi/openapi.json', '-o', out], { cwd: root, encoding: 'utf8' })
  t.equal(run.status, 0, run.stderr)
  t.equal(readFileSync(out, 'utf8'), readFileSync(join(root, 'src/client/generated/api-types.ts'), 'utf8'), 'src/client/generated/api-types.ts is up to date (npm run openapi regenerates it)')
})

t.test('submit, get, list and cancel through the typed client; API errors carry status, code and message', async (t) => {
  const app = await startApp(t, {}, { engine: new PacedEngine(200) })
  const client = new ResearchClient({ baseUrl: `${await app.listen({ port: 0, host: '127.0.0.1' })}/` })
  const job = await client.submit({ query: 'lease expiry', depth: 'quick' }, { idempotencyKey: 'client-1' })
  t.equal(job.status, 'pending')
  t.equal((await client.submit({ query: 'lease expiry', depth: 'quick' }, { idempotencyKey: 'client-1' })).job_id, job.job_id, 'the idempotency key is sent')
  t.equal((await client.get(job.job_id)).job_id, job.job_id)
  t.same((await client.list({ limit: 5 })).jobs.map((j) => j.job_id), [job.job_id])
  t.equal((await client.cancel(job.job_id)).status, 'cancelled')
  const error = await client.cancel(job.job_id).catch((err: unknown) => err) as ApiError
  t.ok(error instanceof ApiError)
  t.match(error, { status: 409, code: 'already_finished', message: /is already cancelled/ })
  await t.rejects(client.submit({ query: ' ' }), { status: 400, code: 'validation_error' })
  await t.rejects(client.get('5b1c3f3e-0000-4000-8000-000000000000'), { status: 404, code: 'not_found' })
})

t.test('waitForJob follows the event stream, or polls when told to; progress only grows', async (t) => {
  const app = await startApp(t, { SSE_POLL_MS: 20 }, { engine: new PacedEngine(30) })
  const client = new ResearchClient({ baseUrl: await app.listen({ port: 0, host: '127.0.0.1' }) })
  for (const stream of [true, false]) {
    const job = await client.submit({ query: 'circuit breaker', depth: 'quick' })
    const seen: number[] = []
    const steps: string[] = []
    const done = await client.waitForJob(job.job_id, { stream, pollIntervalMs: 20, onProgress: (p) => { seen.push(p.progress); steps.push(p.current_step) } })
    t.equal(done.status, 'completed', `stream: ${stream}`)
    t.ok(done.result !== null && done.result.sources.length > 0, 'the final record holds the report')
    t.same(seen, [...seen].sort((a, b) => a - b))
    t.equal(seen.at(-1), 100)
    if (stream) t.ok(steps.some((s) => s.startsWith('Round 1/1')), 'every step arrives through the stream')
  }
})

t.test('waitForJob returns failed jobs as they are, and an abort stops it', async (t) => {
  const app = await startApp(t, {}, { engine: new FailingEngine(new PermanentError('no such corpus')) })
  const client = new ResearchClient({ baseUrl: await app.listen({ port: 0, host: '127.0.0.1' }) })
  const failed = await client.waitForJob((await client.submit({ query: 'q' })).job_id)
  t.match(failed, { status: 'failed', error: 'no such corpus' })
  const slow = await startApp(t, {}, { engine: new PacedEngine(1000) })
  const slowClient = new ResearchClient({ baseUrl: await slow.listen({ port: 0, host: '127.0.0.1' }) })
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 200)
  await t.rejects(slowClient.waitForJob((await slowClient.submit({ query: 'q' })).job_id, { signal: controller.signal }))
})

t.test('the event-stream parser follows the spec: comments, multi-line data, CRLF, split chunks', async (t) => {
  const text = ': hello\r\nretry: 1000\r\n\r\nid: 1-0\nevent: progress\ndata: {"a":\ndata: 1}\n\ndata: plain\n\n'
  const bytes = new TextEncoder().encode(text)
  async function * chunks (): AsyncGenerator<Uint8Array> { for (let i = 0; i < bytes.length; i += 7) yield bytes.slice(i, i + 7) }
  const events = []
  for await (const event of parseEventStream(chunks())) events.push(event)
  t.same(events, [{ id: '1-0', event: 'progress', data: '{"a":\n1}' }, { id: null, event: 'message', data: 'plain' }])
})

t.test('waitForJob rides out 503s (a job not visible on this replica yet, a store outage) and returns the record', async (t) => {
  const app = await startApp(t)
  const created = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'visible later', depth: 'quick' } })
  const record = await pollJob(app, JSON.parse(created.body).job_id)
  const unavailable = { status: 503, body: { error: 'job_not_visible_yet', message: 'not visible yet; retry shortly' }, headers: { 'retry-after': '1' } }
  const api = await startJsonServer(t, () => ({ body: record }))
  api.queued.push(unavailable, unavailable, unavailable)
  const client = new ResearchClient({ baseUrl: api.url })
  const done = await client.waitForJob(record.job_id, { pollIntervalMs: 10 })
  t.equal(done.status, 'completed')
  t.same(api.requests.map((r) => r.path.replace(record.job_id, 'ID')), ['/v1/jobs/ID/events', '/v1/jobs/ID', '/v1/jobs/ID', '/v1/jobs/ID'], 'the stream answered 503, then polls until the record came')
})

t.test('without the stream, waitForJob long polls: one request per change, plus one', async (t) => {
  const app = await startApp(t, {}, { engine: new PacedEngine(150) })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const requests: string[] = []
  const client = new ResearchClient({ baseUrl: base, fetch: async (input, init) => { requests.push(String(input instanceof Request ? input.url : input)); return await fetch(input, init) } })
  const job = await client.submit({ query: 'long polls from the client', depth: 'quick' })
  const changes: string[] = []
  const done = await client.waitForJob(job.job_id, { stream: false, onProgress: (p) => changes.push(`${p.status} ${p.progress}`) })
  t.equal(done.status, 'completed')
  const polls = requests.filter((url) => url.includes(`/v1/jobs/${job.job_id}?wait=30`))
  t.ok(polls.length <= changes.length + 1, `${polls.length} polls for ${changes.length} changes seen`)
  t.ok(changes.length >= 3, `it saw the job move: ${changes.join(', ')}`)
})
