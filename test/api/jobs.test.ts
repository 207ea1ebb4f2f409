import t from 'tap'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'

const UNKNOWN = '6f1c1a52-4a37-4e6b-9f3e-1d7a0c2b9e55'

t.test('create -> poll -> completed with a real report', async (t) => {
  const app = await startApp(t)
  const res = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: '  How should a job service retry transient failures?  ', depth: 'quick' } })
  t.equal(res.statusCode, 202)
  const created = json(res)
  t.equal(res.headers.location, `/v1/jobs/${created.job_id}`)
  t.equal(res.headers['retry-after'], '1')
  t.match(created, {
    job_id: /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    status: 'pending',
    progress: 0,
    query: 'How should a job service retry transient failures?',
    depth: 'quick',
    started_at: null,
    completed_at: null,
    attempts: 0,
    result: null,
    error: null
  })
  t.notOk('version' in created, 'the store version stays internal')
  t.equal(Date.parse(created.expires_at) - Date.parse(created.updated_at), 86400_000, 'expires 24 h after its last change')
  const done = await pollJob(app, created.job_id)
  t.equal(done.status, 'completed')
  t.equal(done.progress, 100)
  t.equal(done.attempts, 1)
  t.ok(['corpus/retries-and-backoff.md', 'corpus/job-queues.md'].includes(done.result.sources[0].path_or_url), `the report draws on the retry documents (${done.result.sources[0].path_or_url})`)
  t.match(done.result.summary, /transient/i)
  t.match(done.result.markdown, /\[1\]/)
  t.ok(done.result.stats.duration_ms >= 0)
})

t.test('depth defaults to standard', async (t) => {
  const app = await startApp(t)
  t.equal((await createJob(app, { query: 'circuit breakers' })).depth, 'standard')
})

t.test('bad input gets a 400 naming the problem, and creates nothing', async (t) => {
  const app = await startApp(t)
  const cases: Array<[string, unknown, RegExp]> = [
    ['unknown field', { query: 'q', priority: 'high' }, /unknown field "priority"/],
    ['missing query', { depth: 'quick' }, /missing the required field "query"/],
    ['blank query', { query: '   ' }, /^The question \(query\) is blank: write the question to research$/],
    ['empty query', { query: '' }, /body\/query must NOT have fewer than 1 characters/],
    ['query too long', { query: 'x'.repeat(2001) }, /body\/query must NOT have more than 2000 characters/],
    ['query not a string', { query: 123 }, /body\/query must be string/],
    ['unknown depth', { query: 'q', depth: 'extreme' }, /body\/depth must be one of: quick, standard, deep/],
    ['body not an object', ['q'], /body must be object/]
  ]
  for (const [name, payload, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/v1/research', payload: payload as object })
    t.equal(res.statusCode, 400, name)
    t.match(json(res), { error: 'validation_error', message }, name)
  }
  const badJson = await app.inject({ method: 'POST', url: '/v1/research', headers: { 'content-type': 'application/json' }, payload: '{"query": ' })
  t.equal(badJson.statusCode, 400)
  t.equal(json(badJson).error, 'invalid_json')
  const text = await app.inject({ method: 'POST', url: '/v1/research', headers: { 'content-type': 'text/plain' }, payload: 'query' })
  t.equal(text.statusCode, 415)
  t.equal(json(text).error, 'unsupported_media_type')
  const empty = await app.inject({ method: 'POST', url: '/v1/research', headers: { 'content-type': 'application/json' } })
  t.equal(empty.statusCode, 400)
  t.equal(json(empty).error, 'invalid_body')
  const huge = await app.inject({ method: 'POST', url: '/v1/research', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ query: 'x'.repeat(2_000_000) }) })
  t.equal(huge.statusCode, 413)
  t.equal(json(huge).error, 'payload_too_large')
  t.same(json(await app.inject({ url: '/v1/jobs' })).jobs, [], 'no job was created by any of them')
  t.equal(JSON.stringify(json(badJson)).includes('at '), false, 'no stack trace in error bodies')
})

t.test('a 2000-character query is accepted', async (t) => {
  const app = await startApp(t)
  t.equal((await createJob(app, { query: 'redis '.repeat(400).slice(0, 2000) })).query.length, 2000)
})

t.test('GET: 404 for unknown ids, 400 for ids that are not UUIDs, upper-case UUIDs work', async (t) => {
  const app = await startApp(t)
  const missing = await app.inject({ url: `/v1/jobs/${UNKNOWN}` })
  t.equal(missing.statusCode, 404)
  t.match(json(missing), { error: 'not_found', message: /No job with id/ })
  for (const bad of ['123', 'job:abc', `${UNKNOWN}x`, '%2A']) {
    const res = await app.inject({ url: `/v1/jobs/${bad}` })
    t.equal(res.statusCode, 400, bad)
    t.match(json(res), { error: 'validation_error', message: /params\/job_id must be a UUID: 32 hex digits as 8-4-4-4-12/ })
  }
  const job = await createJob(app)
  t.equal((await app.inject({ url: `/v1/jobs/${job.job_id.toUpperCase()}` })).statusCode, 200)
  const route = await app.inject({ url: '/v2/nothing' })
  t.equal(route.statusCode, 404)
  t.match(json(route), { status: 404, error: 'not_found', message: 'Route GET /v2/nothing not found' })
})

t.test('list: newest first, records without reports, paging, status filter, bad parameters', async (t) => {
  const app = await startApp(t)
  const created: any[] = []
  for (let i = 0; i < 5; i++) created.push(await createJob(app, { query: `question ${i}`, depth: 'quick' }))
  const ids = created.map((j) => j.job_id)
  // Newest first; jobs created in the same millisecond are ordered by id, descending.
  const expected = [...created].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || (a.job_id < b.job_id ? 1 : -1)).map((j) => j.job_id)
  await Promise.all(ids.map((id) => pollJob(app, id)))
  const first = json(await app.inject({ url: '/v1/jobs?limit=2' }))
  t.equal(first.jobs.length, 2)
  t.notOk('result' in first.jobs[0], 'no report in listings')
  t.type(first.next_cursor, 'string')
  const seen: string[] = first.jobs.map((j: any) => j.job_id)
  let cursor = first.next_cursor
  while (cursor !== null) {
    const page = json(await app.inject({ url: `/v1/jobs?limit=2&cursor=${encodeURIComponent(cursor)}` }))
    seen.push(...page.jobs.map((j: any) => j.job_id))
    cursor = page.next_cursor
  }
  t.same(seen, expected, 'all five, newest first, over three pages')
  t.equal(json(await app.inject({ url: '/v1/jobs?status=completed' })).jobs.length, 5)
  t.same(json(await app.inject({ url: '/v1/jobs?status=failed' })), { jobs: [], next_cursor: null })
  t.equal(json(await app.inject({ url: '/v1/jobs' })).jobs.length, 5, 'default limit 20')
  for (const query of ['limit=0', 'limit=101', 'limit=abc', 'status=done', 'other=1']) {
    const res = await app.inject({ url: `/v1/jobs?${query}` })
    t.equal(res.statusCode, 400, query)
    t.equal(json(res).error, 'validation_error')
  }
  const badCursor = await app.inject({ url: '/v1/jobs?cursor=bm9wZQ' })
  t.equal(badCursor.statusCode, 400)
  t.equal(json(badCursor).error, 'invalid_cursor')
})

t.test('cancel: 200 with the cancelled record and the engine stops; 409 once finished; 404 unknown', async (t) => {
  const engine = new PacedEngine(50)
  const app = await startApp(t, {}, { engine })
  const job = await createJob(app, { query: 'graceful shutdown', depth: 'deep' })
  await pollJob(app, job.job_id, (j) => j.status === 'processing')
  const res = await app.inject({ method: 'POST', url: `/v1/jobs/${job.job_id}/cancel` })
  t.equal(res.statusCode, 200)
  t.match(json(res), { status: 'cancelled', current_step: 'Cancelled' })
  t.ok(json(res).completed_at)
  await pollJob(app, job.job_id, () => engine.abortReasons.length === 1)
  t.equal(json(await app.inject({ url: `/v1/jobs/${job.job_id}` })).status, 'cancelled')
  const again = await app.inject({ method: 'POST', url: `/v1/jobs/${job.job_id}/cancel` })
  t.equal(again.statusCode, 409)
  t.match(json(again), { error: 'already_finished', message: /already cancelled/, job: { job_id: job.job_id, status: 'cancelled' } })
  t.equal((await app.inject({ method: 'POST', url: `/v1/jobs/${UNKNOWN}/cancel` })).statusCode, 404)

  engine.stepMs = 0
  const quick = await createJob(app, { query: 'jitter', depth: 'quick' })
  await pollJob(app, quick.job_id)
  const late = await app.inject({ method: 'POST', url: `/v1/jobs/${quick.job_id}/cancel` })
  t.equal(late.statusCode, 409, 'a completed job cannot be cancelled')
  t.equal(json(late).job.status, 'completed')
})

t.test('delete: 204, cancelling a running job first; then 404', async (t) => {
  const engine = new PacedEngine(50)
  const app = await startApp(t, {}, { engine })
  const job = await createJob(app, { query: 'leases', depth: 'deep' })
  await pollJob(app, job.job_id, (j) => j.status === 'processing')
  const res = await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.job_id}` })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  await waitFor('the engine stopped', () => engine.abortReasons.length === 1)
  t.equal((await app.inject({ url: `/v1/jobs/${job.job_id}` })).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.job_id}` })).statusCode, 404)
  t.same(json(await app.inject({ url: '/v1/jobs' })).jobs, [])
  engine.stepMs = 0
  const done = await createJob(app, { query: 'ttl', depth: 'quick' })
  await pollJob(app, done.job_id)
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/jobs/${done.job_id}` })).statusCode, 204, 'finished jobs delete too')
})

t.test('health in memory mode: ok, no Redis, runner stats, version', async (t) => {
  const app = await startApp(t, { RUNNER_CONCURRENCY: 3, REDIS_URL: '' })
  const res = await app.inject({ url: '/health' })
  t.equal(res.statusCode, 200)
  t.match(json(res), {
    status: 'ok',
    store: 'memory',
    redis: { configured: false, connected: false, latency_ms: null, error: null },
    runner: { running: 0, queued: 0, concurrency: 3 },
    version: '0.1.0'
  })
})

t.test('the store being full answers 503 with Retry-After, not 500', async (t) => {
  const app = await startApp(t, { MEMORY_MAX_JOBS: 10, RUNNER_CONCURRENCY: 1, REDIS_URL: '' }, { engine: new PacedEngine(1000) })
  for (let i = 0; i < 10; i++) await createJob(app, { query: `q${i}`, depth: 'deep' })
  const res = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'one too many' } })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.match(json(res), { error: 'store_full', message: /full/ })
})

t.test('job ids are canonical UUIDs: other spellings of one (urn:uuid:, braces) are a 400, and never reach the store', async (t) => {
  const app = await startApp(t)
  const job = await createJob(app, { query: 'canonical ids', depth: 'quick' })
  for (const id of [`urn:uuid:${job.job_id as string}`, `{${job.job_id as string}}`, (job.job_id as string).replaceAll('-', '')]) {
    const res = await app.inject({ url: `/v1/jobs/${encodeURIComponent(id)}` })
    t.equal(res.statusCode, 400, id)
    t.equal(json(res).error, 'validation_error')
  }
  t.equal((await app.inject({ url: `/v1/jobs/${(job.job_id as string).toUpperCase()}` })).statusCode, 200, 'upper case is the same id')
})
