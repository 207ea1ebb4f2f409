import { readFileSync } from 'node:fs'
import fastJsonStringify from 'fast-json-stringify'
import t from 'tap'
import { newJob } from '../src/jobs/records.js'
import { OPENAPI_FILE } from '../src/openapi.js'
import { JobRecord, type ReportData, toPublic } from '../src/schemas/job.js'
import { JobList, QueueStatsBody } from '../src/schemas/responses.js'

// fast-json-stringify serializes an `anyOf` by running an Ajv validator per branch, each compiled
// on the route's first answer (about 150 ms of CPU for a job record), and a type list with a
// `typeof` check. The schemas of the answers served most say "or null" as a type list.

t.test('the job, job list and stats answers serialize without a schema validator', async (t) => {
  for (const [name, schema] of Object.entries({ JobRecord, JobList, QueueStatsBody })) {
    const code = fastJsonStringify(schema, { mode: 'standalone' }) as unknown as string
    t.notMatch(code, /getSchemaValidator/, `${name}: no Ajv validator in its serializer`)
  }
})

t.test('no schema in the OpenAPI document says "or null" with an anyOf', async (t) => {
  const found: string[] = []
  const visit = (node: unknown, path: string): void => {
    if (Array.isArray(node)) { node.forEach((item, i) => visit(item, `${path}/${i}`)); return }
    if (node === null || typeof node !== 'object') return
    const anyOf = (node as { anyOf?: Array<{ type?: unknown }> }).anyOf
    if (anyOf?.some((branch) => branch.type === 'null') === true) found.push(path)
    for (const [key, value] of Object.entries(node)) visit(value, `${path}/${key}`)
  }
  visit(JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')), '#')
  t.same(found, [], 'each is a type list (type: [..., "null"])')
})

t.test('a job with its webhook and report serializes as JSON.stringify writes it, nulls included', async (t) => {
  const serialize = fastJsonStringify(JobRecord)
  const report: ReportData = {
    title: 'T',
    summary: 'S',
    markdown: null,
    sections: [{ heading: 'H', body: 'B' }],
    sources: [],
    stats: { documents_searched: 1, passages_read: 2, duration_ms: 3 },
    usage: { llm_calls: 0, input_tokens: 0, output_tokens: 0, pages_fetched: 0, bytes_fetched: 0, search_queries: 0, duration_ms: 3, cost_usd: null }
  }
  const pending = toPublic(newJob({ query: 'q', depth: 'quick', webhookUrl: 'http://127.0.0.1:9/hook' }))
  const finished = {
    ...pending,
    status: 'completed' as const,
    started_at: pending.created_at,
    completed_at: pending.created_at,
    worker: 'w1',
    options: { ...pending.options, max_duration_s: 30 },
    attempt_history: [{ attempt: 1, worker: 'w1', started_at: pending.created_at, ended_at: pending.created_at, outcome: 'completed' as const, error: null }],
    webhook: { ...pending.webhook!, deliveries: [{ attempt: 1, at: pending.created_at, status_code: null, error: 'refused', duration_ms: 2 }], next_attempt_at: pending.created_at },
    result: report
  }
  for (const job of [pending, finished, { ...finished, webhook: null, result: null, error: 'boom' }]) {
    t.strictSame(JSON.parse(serialize(job)), JSON.parse(JSON.stringify(job)))
  }
})
