import { readFileSync } from 'node:fs'
import t from 'tap'
import { OPENAPI_FILE, generateOpenApi } from '../src/openapi.js'
import { json, startApp } from './helpers/app.js'

t.test('openapi/openapi.json matches the route schemas (run `npm run openapi` after changing them)', async (t) => {
  const generated = await generateOpenApi()
  t.equal(readFileSync(OPENAPI_FILE, 'utf8'), generated, 'the committed document has drifted from the code')
})

t.test('the live document at /docs/json documents every route, and /docs serves Swagger UI', async (t) => {
  const app = await startApp(t)
  const doc = json(await app.inject({ url: '/docs/json' }))
  t.equal(doc.openapi, '3.1.0')
  t.same(Object.keys(doc.paths).sort(), [
    '/api/v4/admin/cleanup-jobs', '/api/v4/deep-research', '/api/v4/job/{job_id}', '/health',
    '/metrics', '/v1/jobs', '/v1/jobs/{job_id}', '/v1/jobs/{job_id}/cancel', '/v1/jobs/{job_id}/events', '/v1/research', '/v1/stats'
  ])
  const create = doc.paths['/v1/research'].post
  t.same(Object.keys(create.responses).sort(), ['200', '202', '400', '409', '415', '422', '503'], 'including the idempotent replay (200) and its conflicts')
  t.equal(create.requestBody.content['application/json'].schema.additionalProperties, false)
  t.ok(doc.paths['/v1/jobs/{job_id}/events'].get.responses['200'].content['text/event-stream'], 'the event stream is documented as text/event-stream')
  const ui = await app.inject({ url: '/docs/' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  t.match(ui.body, /swagger/i)
})
