// What a research job's report gives a person over HTTP: whether the question was answered (a
// field, not text to parse), what was searched, and sources that open: a corpus source links
// to a read-only route of the service, behind the same keys as the jobs.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { sha256Hex } from '../../src/auth/keys.js'
import { json, pollJob, startApp } from '../helpers/app.js'

const KEY = 'alice-secret-key-1'
const KEYS = { API_KEYS: `alice:${sha256Hex(KEY)}` }

async function listen (app: Awaited<ReturnType<typeof startApp>>): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}

/** Creates a job over a real socket and polls it until it ends, as a client would. */
async function research (base: string, query: string, headers: Record<string, string> = {}): Promise<any> {
  const created = await fetch(`${base}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, depth: 'standard' }) })
  if (created.status !== 202) throw new Error(`create answered ${created.status}`)
  const { job_id: id } = await created.json() as { job_id: string }
  for (let i = 0; i < 500; i++) {
    const job = await (await fetch(`${base}/v1/jobs/${id}`, { headers })).json() as any
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`job ${id} did not end`)
}

t.test('a completed job says it answered, what it searched, and links each source to a page that opens', async (t) => {
  const app = await startApp(t)
  const base = await listen(app)
  const job = await research(base, 'What does appendfsync everysec lose in a crash?')
  t.equal(job.status, 'completed')
  t.match(job.result.answer, { status: 'answered', parts: [{ question: 'What does appendfsync everysec lose in a crash', answered: true, sources: [1] }] })
  t.match(job.result.searched, { sources: ['corpus'], documents: 14 })
  t.same(job.result.searched.queries, ['What does appendfsync everysec lose in a crash?'], 'one search: leaving out "lose" alone would search the same words again')
  t.ok(job.result.stats.rounds >= 1)
  t.equal(job.result.unsupported_claims, 0)
  const [source] = job.result.sources
  t.match(source, { id: 1, path_or_url: 'corpus/redis-persistence.md', link: '/v1/corpus/redis-persistence.md', kind: 'corpus' })
  t.ok(source.quotes.length > 0 && source.quotes.every((q: any) => typeof q.heading === 'string' && job.result.markdown.includes(q.text)), 'the passages quoted, each in the report')

  const opened = await fetch(`${base}${source.link}`)
  t.equal(opened.status, 200)
  t.equal(opened.headers.get('content-type'), 'text/plain; charset=utf-8', 'a browser gets the document as text')
  const text = await opened.text()
  t.match(text, /^# Redis persistence: RDB snapshots and the append-only file/)
  for (const quote of source.quotes) t.ok(text.replace(/\s+/g, ' ').includes(quote.text), `the document holds "${quote.text.slice(0, 40)}..."`)

  const asJson = await fetch(`${base}${source.link}`, { headers: { accept: 'application/json' } })
  t.match(await asJson.json(), { path: 'redis-persistence.md', title: 'Redis persistence: RDB snapshots and the append-only file', link: '/v1/corpus/redis-persistence.md', text })
  const accepts: Array<[string, string]> = [['application/json, text/plain, */*', 'application/json'], ['text/html,application/xhtml+xml,*/*;q=0.8', 'text/plain'], ['text/plain;q=0.5, application/json;q=0.9', 'application/json'], ['application/json;q=0', 'text/plain'], ['*/*', 'text/plain']]
  for (const [accept, type] of accepts) {
    t.match((await fetch(`${base}${source.link}`, { headers: { accept } })).headers.get('content-type'), type, `Accept: ${accept}`)
  }
  const list = await (await fetch(`${base}/v1/corpus`)).json() as any
  t.equal(list.documents.length, 14)
  t.match(list.documents[0], { path: 'async-http-apis.md', link: '/v1/corpus/async-http-apis.md' })
})

t.test('a question the sources do not answer completes as "not found": nothing cited, no sections', async (t) => {
  const app = await startApp(t)
  const job = await research(await listen(app), 'How long should I let sourdough bread rise?')
  t.equal(job.status, 'completed')
  t.match(job.result, { answer: { status: 'not_found', parts: [{ answered: false, sources: [] }] }, sources: [], sections: [] })
  t.match(job.result.summary, /^No answer found in the sources searched: the corpus \(14 documents/)
  t.notMatch(job.result.markdown, /\[\d+\]/)
})

t.test('only the corpus\'s own documents are served; anything else is a 404 problem, never a file from elsewhere', async (t) => {
  const app = await startApp(t)
  // Raw paths through inject: fetch would resolve the dots before the request leaves.
  for (const path of ['nope.md', '..%2Fpackage.json', '%2e%2e%2F%2e%2e%2Fetc%2Fpasswd', '..%2F..%2F..%2Fetc%2Fpasswd', 'redis-persistence.md%00.txt', 'REDIS-PERSISTENCE.md', '%2Fetc%2Fpasswd']) {
    const res = await app.inject({ url: `/v1/corpus/${path}` })
    t.equal(res.statusCode, 404, path)
    t.match(json(res), { status: 404, error: 'not_found' }, `${path}: a problem document`)
    t.notMatch(res.body, /"name":|dependencies|root:/, 'nothing of another file')
  }
  for (const path of ['../package.json', 'x/../../package.json', 'redis-persistence.md/']) t.equal((await app.inject({ url: `/v1/corpus/${path}` })).statusCode, 404, path)
  t.equal((await app.inject({ url: '/v1/corpus/redis-persistence.md', method: 'DELETE' })).statusCode, 405, 'read-only')
})

t.test('a corpus folder with links, loops and odd entries: its regular documents only, and a 503 when it cannot be read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'corpus-'))
  writeFileSync(join(dir, 'kept.md'), '# Kept\n\nA lighthouse keeper keeps the lamp burning every night.')
  mkdirSync(join(dir, 'deeper'))
  writeFileSync(join(dir, 'deeper', 'notes.txt'), 'Lighthouses guide ships.')
  mkdirSync(join(dir, 'folder.md'))
  symlinkSync('/etc/hostname', join(dir, 'leak.md'))
  symlinkSync(dir, join(dir, 'loop'))
  const app = await startApp(t, { RESEARCH_CORPUS_DIR: dir })
  const list = json(await app.inject({ url: '/v1/corpus' }))
  t.same(list.documents.map((d: any) => d.path), ['deeper/notes.txt', 'kept.md'], 'no symbolic link followed, no folder read as a file, the loop left alone')
  t.equal((await app.inject({ url: '/v1/corpus/leak.md' })).statusCode, 404)
  const nested = await app.inject({ url: '/v1/corpus/deeper%2Fnotes.txt' })
  t.equal(nested.statusCode, 200, 'a document in a subfolder opens at its link')
  t.equal(nested.body, 'Lighthouses guide ships.')

  const missing = await startApp(t, { RESEARCH_CORPUS_DIR: join(dir, 'nowhere') })
  const res = await missing.inject({ url: '/v1/corpus/kept.md' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '30')
  t.match(json(res), { error: 'corpus_unavailable', message: /Cannot read the research corpus at .*nowhere/ })
})

t.test('the documents are behind the same keys as the jobs', async (t) => {
  const app = await startApp(t, KEYS)
  const base = await listen(app)
  const without = await fetch(`${base}/v1/corpus/redis-persistence.md`)
  t.equal(without.status, 401)
  t.match(await without.json(), { error: 'unauthorized' })
  t.equal((await fetch(`${base}/v1/corpus`, { headers: { 'x-api-key': 'wrong' } })).status, 401)
  t.equal((await fetch(`${base}/v1/corpus/redis-persistence.md`, { headers: { authorization: `Bearer ${KEY}` } })).status, 200)
})

t.test('the OpenAPI document describes the answer, the searched sources and the corpus route', async (t) => {
  const app = await startApp(t)
  const doc = json(await app.inject({ url: '/docs/json' }))
  const titled = (title: string, node: any = doc): any => {
    if (node === null || typeof node !== 'object') return undefined
    if (node.title === title) return node
    for (const value of Object.values(node)) {
      const found = titled(title, value)
      if (found !== undefined) return found
    }
    return undefined
  }
  const report = titled('Report')
  t.ok(report?.properties?.answer !== undefined, 'result.answer')
  t.same(titled('Answer')?.properties?.status?.enum, ['answered', 'partial', 'not_found'])
  t.ok(report?.properties?.searched !== undefined && report?.properties?.unsupported_claims !== undefined && report?.properties?.dropped_claims !== undefined, 'searched, unsupported_claims, dropped_claims')
  t.ok(titled('ReportSource') !== undefined || report?.properties?.sources?.items?.properties?.link !== undefined, 'a source\'s link')
  const route = Object.entries(doc.paths).find(([path]) => path.startsWith('/v1/corpus/'))?.[1] as any
  t.match(route?.get, { operationId: 'getCorpusDocument', tags: ['sources'] }, 'the route that opens a source')
  const job = await pollJob(app, json(await app.inject({ method: 'POST', url: '/v1/research', payload: { query: 'How do I bake bread?' } })).job_id)
  t.equal(job.result.answer.status, 'not_found')
})
