import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { CorpusRetriever } from '../../src/research/corpus-retriever.js'
import { splitDocument } from '../../src/research/corpus.js'
import { DEPTH_PLAN } from '../../src/research/corpus-retriever.js'
import { researchEngine } from '../helpers/research.js'
import { PermanentError, type Report, type RunContext } from '../../src/research/engine.js'
import { keyTerms, sentences, similarity, stem, truncate } from '../../src/research/text.js'

const engine = researchEngine()

function recorder (signal = new AbortController().signal): RunContext & { steps: Array<[number, string]> } {
  const steps: Array<[number, string]> = []
  return { signal, steps, progress: async (percent, step) => { steps.push([percent, step]) } }
}

/** Every [n] in the text points at a listed source, and every source is cited. */
function citationsHold (t: Test, report: Report): void {
  const cited = new Set([...(report.markdown ?? '').matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])))
  const ids = new Set(report.sources.map((s) => s.id))
  t.ok([...cited].every((n) => ids.has(n)), `citations ${[...cited].join(',')} all point at sources`)
  t.ok([...ids].every((n) => cited.has(n)), 'every source is cited')
  t.same(report.sources.map((s) => s.id), report.sources.map((_s, i) => i + 1), 'sources are numbered 1..n')
}

t.test('answers a question with passages of the documents that treat it, cited', async (t) => {
  const context = recorder()
  const report = await engine.run({ query: 'What does appendfsync everysec mean for Redis AOF durability?', depth: 'standard' }, context)
  t.equal(report.sources[0]?.path_or_url, 'corpus/redis-persistence.md', 'the persistence document ranks first')
  t.match(report.summary, /everysec/, 'the summary quotes the relevant sentence')
  t.match(report.markdown, /^# Research: What does appendfsync/)
  t.match(report.markdown, /## Sources\n\n1\. \*\*Redis persistence/)
  t.ok(report.sections.length >= 2)
  t.ok(report.sections.every((s) => /\[\d+\]/.test(s.body)), 'every section carries citations')
  t.equal(report.stats.documents_searched, 14)
  t.ok(report.stats.passages_read >= report.sections.length)
  citationsHold(t, report)
})

t.test('depth sets the number of retrieval passes, and progress climbs with the real steps', async (t) => {
  for (const depth of ['quick', 'standard', 'deep'] as const) {
    const context = recorder()
    const report = await engine.run({ query: 'exponential backoff with jitter for retries', depth }, context)
    const passes = context.steps.filter(([, step]) => step.startsWith('Pass '))
    t.equal(passes.length, DEPTH_PLAN[depth].passes, `${depth}: ${passes.length} passes`)
    const percents = context.steps.map(([p]) => p)
    t.same(percents, [...percents].sort((a, b) => a - b), `${depth}: progress never goes down`)
    t.ok(percents.every((p) => p >= 0 && p < 100), 'the engine leaves 100 to the runner')
    t.match(context.steps.map(([, s]) => s).join('\n'), /Indexing the corpus\nIndexed 14 documents[^]*Ranking[^]*Writing the report/)
    t.ok(report.sources.length > 0)
    citationsHold(t, report)
  }
})

t.test('deeper research reads more passages through feedback terms', async (t) => {
  const quick = await engine.run({ query: 'lease expiry and crashed workers', depth: 'quick' }, recorder())
  const deep = await engine.run({ query: 'lease expiry and crashed workers', depth: 'deep' }, recorder())
  t.ok(deep.stats.passages_read > quick.stats.passages_read, `${deep.stats.passages_read} > ${quick.stats.passages_read}`)
  t.ok(deep.sections.length >= quick.sections.length)
})

t.test('a question the corpus does not treat gets an honest empty report', async (t) => {
  const report = await engine.run({ query: 'zzqx wvvk', depth: 'quick' }, recorder())
  t.same(report.sources, [])
  t.same(report.sections, [])
  t.match(report.summary, /No passage of the sources searched matched/)
})

t.test('an aborted signal stops the engine at its next step', async (t) => {
  const controller = new AbortController()
  const steps: string[] = []
  const run = engine.run({ query: 'circuit breaker half-open state', depth: 'deep' }, {
    signal: controller.signal,
    progress: async (_p, step) => {
      steps.push(step)
      if (step.startsWith('Pass 2')) controller.abort(new Error('stop here'))
    }
  })
  await t.rejects(run, { message: 'stop here' })
  t.notOk(steps.some((s) => s.startsWith('Pass 3')), 'no pass ran after the abort')
})

t.test('a missing or empty corpus is a permanent error, and the next job may retry the index', async (t) => {
  const missing = researchEngine({ corpus: new CorpusRetriever('/nonexistent/corpus') })
  await t.rejects(missing.run({ query: 'anything', depth: 'quick' }, recorder()), PermanentError)
  const empty = mkdtempSync(join(tmpdir(), 'corpus-'))
  const emptyEngine = researchEngine({ corpus: new CorpusRetriever(empty) })
  await t.rejects(emptyEngine.run({ query: 'anything', depth: 'quick' }, recorder()), /no \.md or \.txt documents/)
  writeFileSync(join(empty, 'notes.txt'), 'Lighthouses guide ships along dangerous coasts at night.\n\nA lighthouse keeper maintained the lamp.')
  const report = await emptyEngine.run({ query: 'lighthouse keeper', depth: 'quick' }, recorder())
  t.equal(report.sources[0]?.title, 'notes', 'a document without a heading is titled by its file name')
})

t.test('documents are cut into passages under their headings', async (t) => {
  const long = 'word '.repeat(200).trim()
  const passages = splitDocument('a/b.md', `# Title\n\nIntro.\n\n## Part one\n\n${long}\n\n${long}\n\n## Part two\n\nEnd.`)
  t.same(passages.map((p) => p.heading), ['Title', 'Part one', 'Part one', 'Part two'])
  t.ok(passages.every((p) => p.title === 'Title' && p.path === 'a/b.md'))
})

t.test('text helpers', async (t) => {
  t.same(keyTerms('How does the Redis AOF work in 2024?'), ['redis', 'aof', 'work'])
  t.same(['retries', 'retrying', 'retried', 'retry'].map(stem), ['retry', 'retry', 'retry', 'retry'], 'one stem for the forms of a word')
  t.same(['leases', 'processes', 'status', 'running', 'failed', 'jobs', 'bus'].map(stem), ['lease', 'process', 'status', 'run', 'fail', 'job', 'bus'])
  t.same(sentences('One sentence. Two here! Three? yes'), ['One sentence.', 'Two here!', 'Three? yes'])
  t.equal(similarity('a b c', 'a b c'), 1)
  t.equal(similarity('', 'a'), 0)
  t.equal(truncate('short', 10), 'short')
  t.equal(truncate('lighthouse keepers work', 16), 'lighthouse…', 'cut at a word boundary')
  t.equal(truncate('abcdefghijklmnop', 8), 'abcdefg…', 'or mid-word when no space is near')
})
