import t, { type Test } from 'tap'
import type { Report, RunContext } from '../../src/research/engine.js'
import { SearxngSearch } from '../../src/research/providers/web-search.js'
import { OpenAiCompatibleChat } from '../../src/research/providers/llm.js'
import { resolveOptions } from '../../src/schemas/options.js'
import type { CreateResearchInput } from '../../src/schemas/requests.js'
import { startFakeLlm } from '../helpers/fake-llm.js'
import { researchEngine } from '../helpers/research.js'
import { type TestSite, startTestSite } from '../helpers/test-site.js'

const QUESTION = 'How should failed background jobs be retried with backoff and jitter?'
const fast = { retries: 2, baseMs: 5, maxMs: 50 }

function recorder (): RunContext & { steps: Array<[number, string]> } {
  const steps: Array<[number, string]> = []
  return { signal: new AbortController().signal, steps, progress: async (percent, step) => { steps.push([percent, step]) } }
}

function request (body: Omit<CreateResearchInput, 'query'>, query = QUESTION): { query: string, depth: 'quick' | 'standard' | 'deep', options: ReturnType<typeof resolveOptions> } {
  return { query, depth: body.depth ?? 'standard', options: resolveOptions(body) }
}

/** Every [n] resolves to a listed source, every source is cited, and every source was fetched from the site. */
function citationsResolve (t: Test, report: Report, site: TestSite): void {
  const text = [report.summary, ...report.sections.map((s) => s.body)].join('\n')
  const cited = new Set([...text.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])))
  t.ok(cited.size > 0, 'the report cites something')
  t.same([...cited].sort((a, b) => a - b), report.sources.map((s) => s.id), 'the citations are exactly the sources 1..n')
  for (const source of report.sources) {
    if (source.kind === 'corpus') continue
    t.ok(site.requests.includes(new URL(source.path_or_url).pathname), `${source.path_or_url} was read`)
  }
}

t.test('URLs: the given page is read, relevant links followed, the unrelated one not, and the report cites what was read', async (t) => {
  const site = await startTestSite(t)
  const context = recorder()
  const report = await researchEngine().run(request({ sources: ['urls'], urls: [`${site.url}/`] }), context)
  t.same(site.requests, ['/', '/retry-backoff.html', '/jitter.html'], 'the index, then the two links that share words with the question')
  citationsResolve(t, report, site)
  t.ok(report.sources.every((s) => s.kind === 'url'))
  t.ok(report.sources.some((s) => s.path_or_url.endsWith('/retry-backoff.html')))
  t.match(report.summary, /backoff|jitter/i)
  t.equal(report.writer, 'extractive')
  t.same(report.unread, [])
  t.match(report.usage, { llm_calls: 0, input_tokens: 0, output_tokens: 0, pages_fetched: 3, search_queries: 0, cost_usd: 0 })
  t.ok((report.usage?.bytes_fetched ?? 0) > 2000)
  const steps = context.steps.map(([, step]) => step)
  t.match(steps, [/^Reading 1\/1: http:\/\/127\.0\.0\.1:\d+\/$/, /^Reading 2\/3: Retry backoff for failed jobs$/, /^Reading 3\/3: Why retries need jitter$/, /^Ranking/, /^Writing the report/])
  const percents = context.steps.map(([p]) => p)
  t.same(percents, [...percents].sort((a, b) => a - b), 'progress never goes down')
})

t.test('quick research reads only the pages given; max_sources caps the fetches and lists what was left', async (t) => {
  const site = await startTestSite(t)
  const quick = await researchEngine().run(request({ depth: 'quick', sources: ['urls'], urls: [`${site.url}/`] }), recorder())
  t.equal(quick.usage?.pages_fetched, 1)
  site.requests.length = 0
  const urls = ['/retry-backoff.html', '/jitter.html', '/notes.txt', '/sourdough.html'].map((p) => site.url + p)
  const capped = await researchEngine().run(request({ sources: ['urls'], urls, max_sources: 2 }), recorder())
  t.same(site.requests, ['/retry-backoff.html', '/jitter.html'])
  t.same(capped.unread, urls.slice(2).map((url) => ({ url, reason: 'not read: max_sources (2) reached' })))
  t.ok(capped.sources.length <= 2)
  citationsResolve(t, capped, site)
})

t.test('pages that cannot be read are listed with their reason; the others are used', async (t) => {
  const site = await startTestSite(t)
  const urls = ['/missing', '/paper.pdf', '/jitter.html'].map((p) => site.url + p)
  const report = await researchEngine().run(request({ depth: 'quick', sources: ['urls'], urls }), recorder())
  t.same(report.unread?.map((u) => u.reason), ['HTTP 404', 'PDF documents are not read (no PDF text extraction here); link an HTML or text version'])
  t.same(report.sources.map((s) => s.path_or_url), [`${site.url}/jitter.html`])
  await t.rejects(researchEngine().run(request({ sources: ['urls'], urls: urls.slice(0, 2) }), recorder()), {
    name: 'PermanentError',
    message: `No source could be read: ${site.url}/missing (HTTP 404); ${site.url}/paper.pdf (PDF documents are not read`
  })
})

t.test('corpus and pages together: both kinds compete for the report', async (t) => {
  const site = await startTestSite(t)
  const report = await researchEngine().run(request({ urls: [`${site.url}/jitter.html`] }), recorder())
  t.same(report.sources.map((s) => s.kind).filter((k, i, all) => all.indexOf(k) === i).sort(), ['corpus', 'url'])
  t.equal(report.stats.documents_searched, 15, '14 corpus documents and one page')
  citationsResolve(t, report, site)
})

t.test('web search through SearXNG: results are read and cited as web sources', async (t) => {
  const site = await startTestSite(t)
  site.searchResults = () => [
    { url: `${site.url}/retry-backoff.html`, title: 'Retry backoff for failed jobs', content: 'backoff' },
    { url: `${site.url}/jitter.html`, title: 'Why retries need jitter', content: 'jitter' }
  ]
  const engine = researchEngine({ webSearch: new SearxngSearch(site.url, { retry: fast }) })
  const context = recorder()
  const report = await engine.run(request({ depth: 'quick', sources: ['web'] }), context)
  t.match(context.steps.map(([, s]) => s), [/^Searching the web \(SearXNG\) 1\/1: "How should failed/, /^Reading 1\/2: Retry backoff/, /^Reading 2\/2: Why retries/])
  t.ok(report.sources.length > 0 && report.sources.every((s) => s.kind === 'web'))
  t.match(report.usage, { search_queries: 1, pages_fetched: 2, cost_usd: 0 })
  citationsResolve(t, report, site)
})

t.test('the web source without a provider is unavailable, with a clear message', async (t) => {
  const engine = researchEngine()
  t.match(engine.unavailable(resolveOptions({ sources: ['web'] })), /no web search provider is configured \(set SEARXNG_URL, TAVILY_API_KEY or BRAVE_API_KEY\)/)
  t.equal(engine.unavailable(resolveOptions({})), null)
  await t.rejects(engine.run(request({ sources: ['corpus', 'web'] }), recorder()), { name: 'PermanentError', message: /the "web" source is unavailable/ })
})

t.test('with an LLM: sub-questions planned and searched, the report written by the model, its citations checked', async (t) => {
  const site = await startTestSite(t)
  site.searchResults = (q) => q.includes('jitter') ? [{ url: `${site.url}/jitter.html`, title: 'Why retries need jitter', content: '' }] : [{ url: `${site.url}/retry-backoff.html`, title: 'Retry backoff for failed jobs', content: '' }]
  const llm = await startFakeLlm(t)
  const engine = researchEngine({
    webSearch: new SearxngSearch(site.url, { retry: fast }),
    llm: new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: 'sk-test', model: 'gpt-4o-mini', retry: fast }),
    prices: { llmInputPerMTok: 0.15, llmOutputPerMTok: 0.6, searchPerQuery: null }
  })
  const context = recorder()
  const report = await engine.run(request({ sources: ['urls', 'web'], urls: [`${site.url}/notes.txt`] }), context)
  const steps = context.steps.map(([, s]) => s)
  t.match(steps, [/^Planning sub-questions with gpt-4o-mini/, /^Planned 2 sub-questions: "exponential backoff cap for job retries", "jitter to spread/, /^Searching the web \(SearXNG\) 1\/3/, /^Searching the web \(SearXNG\) 2\/3: "exponential backoff cap/, /^Searching the web \(SearXNG\) 3\/3: "jitter/])
  t.equal(report.writer, 'gpt-4o-mini')
  t.equal(report.title, 'Retrying failed background jobs')
  t.notMatch(report.markdown, /\[7\]|\[9\]|made up/, 'citations to sources that do not exist were dropped, and the model\'s own list replaced')
  citationsResolve(t, report, site)
  t.same(site.requests.filter((p) => p !== '/search'), ['/notes.txt', '/jitter.html', '/retry-backoff.html', '/'], 'the page given, the search results (the question itself names jitter), then a link whose text shares words with the question')
  t.match(report.usage, { llm_calls: 2, input_tokens: 62 + 1840, output_tokens: 19 + 171, search_queries: 3, pages_fetched: 4 })
  t.equal(report.usage?.cost_usd, 0.000399, '1,902 input tokens at $0.15/M and 190 output tokens at $0.60/M')
  const writePrompt = llm.requests[1]?.body.messages[1].content as string
  t.match(writePrompt, /\[1\] .*\n/, 'the model is shown numbered sources')
  t.ok(report.sources.every((s) => writePrompt.includes(s.path_or_url)), 'every cited source was in the material the model saw')
})

t.test('an LLM answer that cites nothing read falls back to the extractive report', async (t) => {
  const site = await startTestSite(t)
  const llm = await startFakeLlm(t, 'report-no-citations')
  const engine = researchEngine({ llm: new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: '', model: 'm', retry: fast }) })
  const report = await engine.run(request({ depth: 'quick', sources: ['urls'], urls: [`${site.url}/jitter.html`] }), recorder())
  t.equal(report.writer, 'extractive')
  t.equal(report.usage?.llm_calls, 1, 'quick research plans nothing; the one call was the report')
  t.equal(report.usage?.cost_usd, null, 'an LLM was paid for but no price is configured')
  citationsResolve(t, report, site)
})

t.test('the token budget stops LLM calls that would pass it', async (t) => {
  const site = await startTestSite(t)
  const llm = await startFakeLlm(t)
  const engine = researchEngine({ llm: new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: '', model: 'm', retry: fast }), tokenBudget: 600 })
  const report = await engine.run(request({ sources: ['urls'], urls: [`${site.url}/retry-backoff.html`] }), recorder())
  t.equal(llm.requests.length, 1, 'planning fit in the budget; writing did not')
  t.equal(report.writer, 'extractive')
  t.ok((report.usage?.input_tokens ?? 0) + (report.usage?.output_tokens ?? 0) <= 600)
})

t.test('an LLM outage fails the run with the provider\'s error after the retries', async (t) => {
  const site = await startTestSite(t)
  const llm = await startFakeLlm(t)
  for (let i = 0; i < 3; i++) llm.queued.push({ status: 503, body: { error: { message: 'overloaded' } } })
  const engine = researchEngine({ llm: new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: '', model: 'm', retry: fast }) })
  await t.rejects(engine.run(request({ sources: ['urls'], urls: [`${site.url}/jitter.html`] }), recorder()), {
    name: 'ProviderError',
    message: 'The LLM (m) is unavailable: HTTP 503: overloaded (after 3 tries)'
  })
})

t.test('the time budget stops reading at 80% of max_duration_s; the report is written from what was read', async (t) => {
  const site = await startTestSite(t)
  const engine = researchEngine({ fetcher: { timeoutMs: 900 } })
  const urls = [`${site.url}/jitter.html`, `${site.url}/slow`, `${site.url}/retry-backoff.html`]
  const report = await engine.run(request({ depth: 'quick', sources: ['urls'], urls, max_duration_s: 1 }), recorder())
  t.same(report.unread, [{ url: urls[1], reason: 'no complete answer within 900 ms' }, { url: urls[2], reason: 'not read: the time budget (max_duration_s) ran out' }])
  t.same(report.sources.map((s) => s.path_or_url), [urls[0]])
})

t.test('report_format json leaves out the Markdown document', async (t) => {
  const report = await researchEngine().run(request({ depth: 'quick', report_format: 'json' }, 'Redis AOF everysec durability'), recorder())
  t.equal(report.markdown, null)
  t.ok(report.sections.length > 0)
})
