import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
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
    '/metrics', '/v1/corpus', '/v1/corpus/{path}', '/v1/jobs', '/v1/jobs/{job_id}', '/v1/jobs/{job_id}/cancel', '/v1/jobs/{job_id}/events', '/v1/research', '/v1/stats'
  ])
  t.same(Object.keys(doc.paths['/v1/corpus/{path}'].get.responses['200'].content).sort(), ['application/json', 'text/plain'], 'a source document as text, or as JSON')
  const create = doc.paths['/v1/research'].post
  t.same(Object.keys(create.responses).sort(), ['200', '202', '400', '401', '409', '413', '415', '422', '429', '503'], 'including the idempotent replay (200), its conflicts, and every error it can answer')
  t.ok(create.responses['503'].content['application/problem+json'], 'errors are problem documents')
  t.ok(create.responses['202'].headers.location, 'Location is documented')
  t.equal(create.requestBody.content['application/json'].schema.additionalProperties, false)
  t.ok(doc.paths['/v1/jobs/{job_id}/events'].get.responses['200'].content['text/event-stream'], 'the event stream is documented as text/event-stream')
  t.same(Object.keys(doc.paths['/metrics'].get.responses['200'].content), ['text/plain'], '/metrics is documented as the text it serves')
  t.same(doc.servers, [{ url: '/', description: 'This server' }])
  const operations = Object.values(doc.paths as Record<string, Record<string, any>>).flatMap((ops) => Object.values(ops))
  t.ok(operations.every((op) => typeof op.operationId === 'string' && op.summary !== undefined && op.description !== undefined), 'every operation has an operationId, a summary and a description')
  t.notOk(JSON.stringify(doc.paths).includes('Default Response'), 'every response says what it is')
  const ui = await app.inject({ url: '/docs/' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  t.match(ui.body, /swagger/i)
})

t.test('third-party linters pass the committed document: Redocly (recommended rules) and Spectral (spectral:oas), no errors or warnings', async (t) => {
  const root = new URL('..', import.meta.url).pathname
  const redocly = spawnSync(process.execPath, [join(root, 'node_modules/@redocly/cli/bin/cli.js'), 'lint', 'openapi/openapi.json', '--format', 'json'], { cwd: root, encoding: 'utf8', env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } })
  t.equal(redocly.status, 0, redocly.stderr)
  t.same(JSON.parse(redocly.stdout).totals, { errors: 0, warnings: 0, ignored: 1 }, 'the one ignored warning has its reason in .redocly.lint-ignore.yaml')
  const spectral = spawnSync(process.execPath, [join(root, 'node_modules/@stoplight/spectral-cli/dist/index.js'), 'lint', 'openapi/openapi.json', '--fail-severity', 'warn'], { cwd: root, encoding: 'utf8' })
  t.equal(spectral.status, 0, spectral.stdout + spectral.stderr)
})

t.test('every request example in the document works as it is (Swagger UI\'s "Try it out" sends them)', async (t) => {
  const app = await startApp(t)
  const doc = json(await app.inject({ url: '/docs/json' }))
  let sent = 0
  for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, operation] of Object.entries(operations)) {
      const media = operation.requestBody?.content?.['application/json']
      const examples = [...(media?.example === undefined ? [] : [media.example]), ...Object.values(media?.examples ?? {}).map((e: any) => e.value)]
      for (const example of examples) {
        const res = await app.inject({ method: method.toUpperCase() as 'POST', url: path, payload: example })
        t.ok(res.statusCode >= 200 && res.statusCode < 300, `${method.toUpperCase()} ${path} with its example: ${res.statusCode} ${res.statusCode >= 300 ? res.body : ''}`)
        sent++
      }
    }
  }
  t.ok(sent >= 2, `${sent} examples sent`)
})
