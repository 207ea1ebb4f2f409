import t, { type Test } from 'tap'
import type { Report, RunContext } from '../../src/research/engine.js'
import { SearxngSearch } from '../../src/research/providers/web-search.js'
import { OpenAiCompatibleChat } from '../../src/research/providers/llm.js'
import { resolveOptions } from '../../src/schemas/options.js'
import type { CreateResearchInput } from '../../src/schemas/requests.js'
import { recorded, sourceNumber, startFakeLlm } from '../helpers/fake-llm.js'
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
  t.match(steps.join('\n'), /^Reading 1\/1: http:\/\/127\.0\.0\.1:\d+\/\nReading 2\/3: Retry backoff for failed jobs\nReading 3\/3: Why retries need jitter\nRound 1\/2: searching for "How should failed[^]*\nWriting the report$/)
  t.notOk(report.sources.some((s) => s.path_or_url.endsWith('/')), 'the index page (a list of links) is not cited')
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

t.test('with an LLM: sub-questions planned and searched, gaps named and searched again, the report written by the model, every sentence checked', async (t) => {
  const site = await startTestSite(t)
  site.searchResults = (q) => q.includes('jitter') ? [{ url: `${site.url}/jitter.html`, title: 'Why retries need jitter', content: '' }] : [{ url: `${site.url}/retry-backoff.html`, title: 'Retry backoff for failed jobs', content: '' }]
  // A model that cites right, cites the wrong page, cites a page never shown, makes a claim no page supports, and leaves one uncited.
  const llm = await startFakeLlm(t, (prompt) => {
    const backoff = sourceNumber(prompt, '/retry-backoff.html')
    const jitter = sourceNumber(prompt, '/jitter.html')
    return [
      '# Retrying failed background jobs', '', '## Summary', '',
      `Exponential backoff waits longer after each failed attempt, up to a cap such as one minute [${backoff}]. Jitter adds randomness to every delay so that the retries spread out [${jitter}].`,
      '', '## Backoff and its cap', '',
      `A retry budget bounds the damage: after a fixed number of attempts the job is marked failed for good [${jitter}].`,
      'The cap keeps a long outage from pushing retries hours into the future [9].',
      `Exponential backoff was invented at Xerox PARC in 1973 [${backoff}].`,
      'Retries should always happen immediately.',
      '', '## Jitter', '',
      `Full jitter picks a random delay between zero and the exponential value [${jitter}]. The sources do not say how many attempts to allow.`,
      '', '## Sources', '', '1. Some list the model made up'
    ].join('\n')
  })
  const engine = researchEngine({
    webSearch: new SearxngSearch(site.url, { retry: fast }),
    llm: new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: 'sk-test', model: 'gpt-4o-mini', retry: fast }),
    prices: { llmInputPerMTok: 0.15, llmOutputPerMTok: 0.6, searchPerQuery: null }
  })
  const context = recorder()
  const report = await engine.run(request({ sources: ['urls', 'web'], urls: [`${site.url}/notes.txt`] }), context)
  const steps = context.steps.map(([, s]) => s)
  t.match(steps.join('\n'), /^Planning sub-questions with gpt-4o-mini\nPlanned 2 sub-questions: "exponential backoff cap for job retries", "jitter to spread[^\n]*\nSearching the web \(SearXNG\) 1\/3[^]*Searching the web \(SearXNG\) 3\/3: "jitter[^]*\nRound 1\/2: searching for[^]*Searching the web \(SearXNG\) 1\/1: "retry budget after a fixed number of attempts"[^]*\nRound 2\/2: searching for[^]*"retry budget after a fixed number of attempts"[^]*\nWriting the report\nWriting the report with gpt-4o-mini$/)
  t.equal(report.writer, 'gpt-4o-mini')
  t.equal(report.title, `Research: ${QUESTION}`, 'the title is the question\'s: a model\'s title is a claim nothing checks')
  t.equal(report.unsupported_claims, 2, 'two sentences dropped')
  t.same(report.dropped_claims?.map((d) => d.sentence), ['Exponential backoff was invented at Xerox PARC in 1973.', 'Retries should always happen immediately.'])
  t.match(report.dropped_claims, [{ reason: /^not supported by the passages of \[\d\] it cites$/ }, { reason: 'no citation' }])
  t.notMatch(report.markdown, /\[9\]|made up|Xerox|immediately/, 'the page never shown is not cited; the unsupported and uncited claims are gone')
  const backoff = report.sources.find((s) => s.path_or_url.endsWith('/retry-backoff.html'))
  t.match(report.markdown, new RegExp(`retry budget bounds the damage[^\\n]*\\. \\[${backoff?.id}\\]`), 'the wrongly cited sentence now cites the page that says it')
  t.match(report.markdown, new RegExp(`hours into the future\\. \\[${backoff?.id}\\]`), 'the sentence citing a page never shown now cites one read that says it')
  t.match(report.markdown, /The sources do not say how many attempts to allow\./, 'a sentence saying the sources are silent needs no citation')
  citationsResolve(t, report, site)
  t.ok(report.sources.every((s) => (s.quotes?.length ?? 0) > 0), 'each source shows the passage its sentences come from')
  t.same(site.requests.filter((p) => p !== '/search'), ['/notes.txt', '/jitter.html', '/retry-backoff.html', '/'], 'the page given, the search results (the question itself names jitter), then a link whose text shares words with the question')
  const [plan, reflect, write] = [recorded('plan'), recorded('reflect'), recorded('report')].map((r) => r.usage)
  t.match(report.usage, { llm_calls: 3, input_tokens: plan.prompt_tokens + reflect.prompt_tokens + write.prompt_tokens, output_tokens: plan.completion_tokens + reflect.completion_tokens + write.completion_tokens, search_queries: 4, pages_fetched: 4 })
  t.equal(report.usage?.cost_usd, Math.round(((plan.prompt_tokens + reflect.prompt_tokens + write.prompt_tokens) * 0.15 + (plan.completion_tokens + reflect.completion_tokens + write.completion_tokens) * 0.6) / 1e6 * 1e6) / 1e6)
  const writePrompt = llm.requests.at(-1)?.body.messages[1].content as string
  t.match(writePrompt, /^Question: [^\n]+\n\nSources:\n\n\[1\] /, 'the model is shown numbered sources')
  t.ok(report.sources.every((s) => writePrompt.includes(s.path_or_url)), 'every cited source was in the material the model saw')
  const reflectPrompt = llm.requests[1]?.body.messages[1].content as string
  t.match(reflectPrompt, /^Question: [^\n]+\n\nFindings so far:\n- How should failed background jobs be retried with backoff and jitter\?\n {2}- /, 'the gap check sees what each part found')
})

t.test('the model is shown only the documents the extractive report may cite: those on the question\'s topic', async (t) => {
  let shown = ''
  const llm = await startFakeLlm(t, (prompt) => {
    shown = prompt
    return `## Summary\n\nWith appendonly yes, Redis appends every write command to the append-only file [${sourceNumber(prompt, 'corpus/redis-persistence.md')}].`
  })
  const engine = researchEngine({ llm: new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: '', model: 'm', retry: fast }) })
  const report = await engine.run(request({ depth: 'quick' }, 'How does Redis AOF persistence protect queued jobs?'), recorder())
  t.same(shown.split('\n').filter((l) => /^\[\d+\] /.test(l)).map((l) => /\((corpus\/[\w-]+\.md)\)$/.exec(l)?.[1]), ['corpus/redis-persistence.md'], 'not tls-for-redis.md, which the engine cited before #23')
  t.equal(report.writer, 'm')
  t.same(report.sources.map((s) => s.path_or_url), ['corpus/redis-persistence.md'])
})

t.test('a model whose every citation is made up is not trusted: the extractive report stands, and the dropped claims are counted', async (t) => {
  const site = await startTestSite(t)
  const llm = await startFakeLlm(t, () => '# A report\n\n## Summary\n\nJitter was invented by NASA [4]. Backoff is always exactly 7 seconds [5].')
  const engine = researchEngine({ llm: new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: '', model: 'm', retry: fast }) })
  const report = await engine.run(request({ depth: 'quick', sources: ['urls'], urls: [`${site.url}/jitter.html`] }), recorder())
  t.equal(report.writer, 'extractive')
  t.equal(report.unsupported_claims, 2)
  t.same(report.dropped_claims?.map((d) => d.reason), ['cites [4], which is not a source that was read', 'cites [5], which is not a source that was read'])
  t.notMatch(report.markdown, /NASA|7 seconds/)
  citationsResolve(t, report, site)
})

t.test('the token budget stops LLM calls that would pass it', async (t) => {
  const site = await startTestSite(t)
  const llm = await startFakeLlm(t)
  const engine = researchEngine({ llm: new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: '', model: 'm', retry: fast }), tokenBudget: 600 })
  const report = await engine.run(request({ sources: ['urls'], urls: [`${site.url}/retry-backoff.html`] }), recorder())
  t.same(llm.requests.map((r) => String(r.body.messages[0].content).split('.')[0]), ['You plan research', 'You check research for gaps'], 'planning and the gap check fit in the budget; writing did not')
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
  t.teardown(() => engine.close())
  const urls = [`${site.url}/jitter.html`, `${site.url}/slow`, `${site.url}/retry-backoff.html`]
  // The HTML threads start with the first page (over a second under the tests' TypeScript
  // loader, about 150 ms compiled): started before the timed run, not out of its 800 ms.
  await engine.run(request({ depth: 'quick', sources: ['urls'], urls: urls.slice(0, 1) }), recorder())
  const report = await engine.run(request({ depth: 'quick', sources: ['urls'], urls, max_duration_s: 1 }), recorder())
  t.same(report.unread, [{ url: urls[1], reason: 'no complete answer within 900 ms' }, { url: urls[2], reason: 'not read: the time budget (max_duration_s) ran out' }])
  t.same(report.sources.map((s) => s.path_or_url), [urls[0]])
})

t.test('report_format json leaves out the Markdown document', async (t) => {
  const report = await researchEngine().run(request({ depth: 'quick', report_format: 'json' }, 'Redis AOF everysec durability'), recorder())
  t.equal(report.markdown, null)
  t.ok(report.sections.length > 0)
})
