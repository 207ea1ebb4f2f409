import t from 'tap'
import { ON_CLUSTER, json, pollJob, startApp } from '../helpers/app.js'

t.test('POST /api/v4/deep-research creates a job like the original (200, the record)', async (t) => {
  const app = await startApp(t)
  const res = await app.inject({ method: 'POST', url: '/api/v4/deep-research', payload: { query: 'How do Redis TTLs expire job records?' } })
  t.equal(res.statusCode, 200)
  const job = json(res)
  t.match(job, { status: 'pending', progress: 0, current_step: 'Queued', result: null, error: null, completed_at: null })
  t.type(job.created_at, 'string')
  const done = json(await app.inject({ url: `/api/v4/job/${job.job_id}` }))
  t.equal(done.job_id, job.job_id, 'the original GET route reads it')
  const finished = await pollJob(app, job.job_id)
  t.equal(finished.result.sources[0].path_or_url, 'corpus/redis-expiration.md')
  t.same(json(await app.inject({ url: `/api/v4/job/${job.job_id}` })), finished, 'both routes serve the same record')
})

t.test('GET /api/v4/job/{id}: 404 {"detail": "Job not found"} for unknown ids of any shape', async (t) => {
  const app = await startApp(t)
  for (const id of ['6f1c1a52-4a37-4e6b-9f3e-1d7a0c2b9e55', 'abc', 'job:1']) {
    const res = await app.inject({ url: `/api/v4/job/${encodeURIComponent(id)}` })
    t.equal(res.statusCode, 404, id)
    t.same(json(res), { detail: 'Job not found' }, 'exactly FastAPI\'s body')
  }
})

t.test('validation errors answer 422 with detail, as FastAPI did', async (t) => {
  const app = await startApp(t)
  const res = await app.inject({ method: 'POST', url: '/api/v4/deep-research', payload: { depth: 'quick' } })
  t.equal(res.statusCode, 422)
  t.same(json(res), { detail: [{ loc: ['body', 'query'], msg: 'Field required', type: 'missing' }] })
  const text = await app.inject({ method: 'POST', url: '/api/v4/deep-research', headers: { 'content-type': 'text/plain' }, payload: 'hi' })
  t.equal(text.statusCode, 422, 'FastAPI answers a body that is not JSON with 422 too')
  t.same(json(text).detail[0].type, 'model_attributes_type')
})

t.test('DELETE /api/v4/admin/cleanup-jobs explains TTL cleanup and the store mode; it deletes nothing', async (t) => {
  const app = await startApp(t, { JOB_TTL_SECONDS: 3600 })
  const created = json(await app.inject({ method: 'POST', url: '/api/v4/deep-research', payload: { query: 'ttl' } }))
  const res = await app.inject({ method: 'DELETE', url: '/api/v4/admin/cleanup-jobs' })
  t.equal(res.statusCode, 200)
  const expected = ON_CLUSTER
    ? { store: 'redis', redis_connected: true, cleanup_method: 'Redis SETEX expiry' }
    : { store: 'memory', redis_connected: false, cleanup_method: 'in-memory TTL and size bound' }
  t.match(json(res), { message: /automatic/, ...expected, ttl_seconds: 3600 })
  t.equal((await app.inject({ url: `/api/v4/job/${created.job_id}` })).statusCode, 200, 'the job is still there')
})
