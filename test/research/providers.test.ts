import t from 'tap'
import { type WriterSource, checkReport } from '../../src/research/citation-check.js'
import { parseQueries } from '../../src/research/llm-writer.js'
import { SUPPORTED, contradicts, support } from '../../src/research/support.js'
import { ProviderError, callJson, retryAfterMs } from '../../src/research/providers/http.js'
import { OpenAiCompatibleChat } from '../../src/research/providers/llm.js'
import { BraveSearch, SearxngSearch, TavilySearch, webSearchFrom } from '../../src/research/providers/web-search.js'
import { UsageMeter } from '../../src/research/usage.js'
import { recorded, startFakeLlm } from '../helpers/fake-llm.js'
import { startJsonServer } from '../helpers/json-server.js'
import { startTestSite } from '../helpers/test-site.js'

const never = new AbortController().signal
const fast = { retries: 3, baseMs: 5, maxMs: 50 }

t.test('SearXNG: the JSON API is queried and its results mapped, non-web results skipped, up to the limit', async (t) => {
  const site = await startTestSite(t)
  site.searchResults = (q) => [
    { url: `${site.url}/a`, title: `A for ${q}`, content: '<b>first</b> hit' },
    { url: 'ftp://example.test/file', title: 'not a web page', content: '' },
    { url: `${site.url}/b`, title: 'B', content: 'second' },
    { url: `${site.url}/c`, title: 'C', content: 'third' }
  ]
  const hits = await new SearxngSearch(site.url, { retry: fast }).search('retry backoff', { limit: 2, signal: never })
  t.same(hits, [{ url: `${site.url}/a`, title: 'A for retry backoff', snippet: 'first hit' }, { url: `${site.url}/b`, title: 'B', snippet: 'second' }])
})

t.test('Tavily and Brave: their keys, parameters and result shapes', async (t) => {
  const api = await startJsonServer(t, (request) => request.path.startsWith('/tavily')
    ? { body: { query: request.body.query, results: [{ url: 'https://example.org/t', title: 'T', content: 'tavily says', score: 0.9 }] } }
    : { body: { web: { results: [{ url: 'https://example.org/b', title: 'B', description: 'brave <strong>says</strong>' }] } } })
  const tavily = await new TavilySearch('tvly-key', { endpoint: `${api.url}/tavily`, retry: fast }).search('q1', { limit: 5, signal: never })
  t.same(tavily, [{ url: 'https://example.org/t', title: 'T', snippet: 'tavily says' }])
  t.equal(api.requests[0]?.headers.authorization, 'Bearer tvly-key')
  t.match(api.requests[0]?.body, { query: 'q1', max_results: 5 })
  const brave = await new BraveSearch('brave-key', { endpoint: `${api.url}/brave`, retry: fast }).search('q2', { limit: 30, signal: never })
  t.same(brave, [{ url: 'https://example.org/b', title: 'B', snippet: 'brave says' }])
  t.equal(api.requests[1]?.headers['x-subscription-token'], 'brave-key')
  t.match(api.requests[1]?.path, /q=q2&count=20$/, 'Brave takes at most 20 results per query')
  api.queued.push({ body: { unexpected: true } })
  await t.rejects(new TavilySearch('k', { endpoint: `${api.url}/tavily`, retry: fast }).search('q', { limit: 1, signal: never }), { name: 'ProviderError', message: 'Tavily answered without a results list' })
})

t.test('the configured search provider: SearXNG, then Tavily, then Brave, else none', async (t) => {
  t.equal(webSearchFrom({ SEARXNG_URL: 'http://s', TAVILY_API_KEY: 't', BRAVE_API_KEY: 'b' })?.name, 'SearXNG')
  t.equal(webSearchFrom({ SEARXNG_URL: '', TAVILY_API_KEY: 't', BRAVE_API_KEY: 'b' })?.name, 'Tavily')
  t.equal(webSearchFrom({ SEARXNG_URL: '', TAVILY_API_KEY: '', BRAVE_API_KEY: 'b' })?.name, 'Brave Search')
  t.equal(webSearchFrom({ SEARXNG_URL: '', TAVILY_API_KEY: '', BRAVE_API_KEY: '' }), null)
})

t.test('provider calls: 429 and 5xx are retried with backoff and Retry-After, then succeed', async (t) => {
  const api = await startJsonServer(t, () => ({ body: { ok: true } }))
  api.queued.push({ status: 429, body: { error: { message: 'Rate limit reached' } }, headers: { 'retry-after': '0' } }, { status: 503, body: 'upstream down' })
  t.same(await callJson(api.url, { provider: 'Test API', signal: never, retry: fast }), { ok: true })
  t.equal(api.requests.length, 3)
})

t.test('provider calls: an outage fails with a clear error after the retries, not a hang', async (t) => {
  const api = await startJsonServer(t, () => ({ status: 503, body: { error: { message: 'The server is overloaded' } } }))
  const started = Date.now()
  await t.rejects(callJson(api.url, { provider: 'The LLM (m)', signal: never, retry: fast }), new ProviderError('The LLM (m) is unavailable: HTTP 503: The server is overloaded (after 4 tries)'))
  t.equal(api.requests.length, 4)
  t.ok(Date.now() - started < 2000)
  // A job's error is shown to the tenant: the provider's address and the socket's raw error stay in the log (the error's cause).
  const refused = await callJson('http://127.0.0.1:1/', { provider: 'Nothing', signal: never, retry: { ...fast, retries: 1 } }).catch((err: Error) => err)
  t.match(refused, { name: 'ProviderError', message: 'Nothing is unavailable: could not connect: connection refused (after 2 tries)' })
  t.match(String((refused as Error).cause), /ECONNREFUSED 127\.0\.0\.1:1/, 'the detail is kept for the log')
})

t.test('provider calls: other 4xx answers are not retried; a non-JSON success is an error', async (t) => {
  const api = await startJsonServer(t, () => ({ status: 401, body: { error: { message: 'Incorrect API key provided' } } }))
  await t.rejects(callJson(api.url, { provider: 'The LLM (m)', signal: never, retry: fast }), { name: 'ProviderError', message: 'The LLM (m) refused the call: HTTP 401: Incorrect API key provided' })
  t.equal(api.requests.length, 1)
  api.queued.push({ body: '<html>proxy page</html>' })
  await t.rejects(callJson(api.url, { provider: 'P', signal: never, retry: fast }), { message: 'P answered HTTP 200 with a body that is not JSON' })
})

t.test('provider calls: an abort stops the wait between retries at once', async (t) => {
  const api = await startJsonServer(t, () => ({ status: 503, body: {}, headers: { 'retry-after': '30' } }))
  const controller = new AbortController()
  const reason = new Error('job cancelled')
  const call = callJson(api.url, { provider: 'P', signal: controller.signal, retry: { retries: 3, baseMs: 5, maxMs: 30_000 } })
  while (api.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const abortedAt = Date.now()
  controller.abort(reason)
  await t.rejects(call, reason)
  t.ok(Date.now() - abortedAt < 500, 'no 30 s Retry-After wait after the abort')
})

t.test('Retry-After as seconds or an HTTP date', async (t) => {
  t.equal(retryAfterMs('2'), 2000)
  t.equal(retryAfterMs(undefined), null)
  t.equal(retryAfterMs('soon'), null)
  const inTwoSeconds = retryAfterMs(new Date(Date.now() + 2000).toUTCString()) as number
  t.ok(inTwoSeconds > 0 && inTwoSeconds <= 2000)
})

t.test('the OpenAI-compatible client: wire format in and out, usage counted', async (t) => {
  const llm = await startFakeLlm(t)
  const chat = new OpenAiCompatibleChat({ baseUrl: `${llm.baseUrl}/`, apiKey: 'sk-test', model: 'gpt-4o-mini', retry: fast })
  const answer = await chat.complete([{ role: 'system', content: 'You plan research. x' }, { role: 'user', content: 'q' }], { maxTokens: 300, signal: never })
  t.same(JSON.parse(answer.content), ['exponential backoff cap for job retries', 'jitter to spread retries of many clients'])
  t.same([answer.inputTokens, answer.outputTokens], [62, 19])
  t.equal(llm.requests[0]?.path, '/v1/chat/completions')
  t.equal(llm.requests[0]?.headers.authorization, 'Bearer sk-test')
  t.match(llm.requests[0]?.body, { model: 'gpt-4o-mini', max_tokens: 300, messages: [{ role: 'system' }, { role: 'user', content: 'q' }] })

  const keyless = new OpenAiCompatibleChat({ baseUrl: llm.baseUrl, apiKey: '', model: 'llama3.1', retry: fast })
  const withoutUsage = { ...recorded('plan'), usage: undefined }
  llm.queued.push({ body: withoutUsage })
  const estimated = await keyless.complete([{ role: 'user', content: 'x'.repeat(400) }], { maxTokens: 50, signal: never })
  t.equal(llm.requests[1]?.headers.authorization, undefined, 'no key, no Authorization header (Ollama)')
  t.same([estimated.inputTokens, estimated.outputTokens], [100, Math.ceil(estimated.content.length / 4)], 'usage estimated when the server gives none')
  llm.queued.push({ body: { choices: [] } })
  await t.rejects(keyless.complete([{ role: 'user', content: 'x' }], { maxTokens: 50, signal: never }), { name: 'ProviderError', message: 'The LLM (llama3.1) answered without a message' })
})

t.test('a model\'s report checked sentence by sentence: kept, re-pointed or dropped, then renumbered by first citation', async (t) => {
  const source = (id: number, text: string): WriterSource => ({ id, title: `T${id}`, path_or_url: `https://e.test/${id}`, kind: 'url', link: `https://e.test/${id}`, score: 1, excerpts: [{ heading: `H${id}`, text }] })
  const sources = [
    source(1, 'Exponential backoff doubles the wait after each failed attempt, up to a cap of one minute.'),
    source(2, 'Jitter adds randomness to every delay so that retries from many clients spread out.'),
    source(3, 'A circuit breaker stops calling a dependency that keeps failing.')
  ]
  const content = [
    '# Retrying failed jobs', '', '## Summary', '',
    'Jitter adds randomness to every delay so retries spread out [2]. Backoff doubles the wait after each failed attempt [2].',
    '', '## Details', '',
    '- The wait is capped at one minute [7].',
    '- The wait is capped at five minutes [1].',
    '- Backoff was first described in 1973 [1, 3].',
    'Everyone should retry forever.',
    'The sources do not say how many attempts to allow.',
    '', '## Sources', '', '1. A list the model made up [1]'
  ].join('\n')
  const { report, dropped, reattributed } = checkReport(content, 'q', sources)
  t.equal(report?.title, 'Research: q', 'the title is the question\'s, not the model\'s')
  t.equal(report?.summary, 'Jitter adds randomness to every delay so retries spread out. [1] Backoff doubles the wait after each failed attempt. [2]', 'renumbered by first citation; the wrongly cited sentence re-pointed')
  t.equal(report?.sections[0]?.body, '- The wait is capped at one minute. [2]\nThe sources do not say how many attempts to allow.', 'a made-up number re-pointed to the source that says it; a silent-sources sentence kept uncited')
  t.same(report?.sources.map((s) => s.path_or_url), ['https://e.test/2', 'https://e.test/1'], 'only the sources cited, in order; the model\'s own list is gone')
  t.same(report?.sources.map((s) => s.quotes?.map((q) => q.heading)), [['H2'], ['H1']], 'each with the passage that supported it')
  t.equal(reattributed, 2)
  t.same(dropped, [
    { sentence: 'The wait is capped at five minutes.', reason: 'not supported by the passages of [1] it cites' },
    { sentence: 'Backoff was first described in 1973.', reason: 'not supported by the passages of [1], [3] it cites' },
    { sentence: 'Everyone should retry forever.', reason: 'no citation' }
  ])
  t.notMatch(report?.markdown, /made up|\[7\]|\[3\]|1973|five minutes|forever/)
  t.equal(checkReport('## Summary\n\nNothing here is true [5].', 'q', sources).report, null, 'a summary left with no citation: no report')
})

t.test('the citation check keeps out what a lexical match would let through: opposites, made-up headings, markup, repeats', async (t) => {
  const sources: WriterSource[] = [{ id: 1, title: 'AOF', path_or_url: 'corpus/aof.md', kind: 'corpus', link: '/v1/corpus/aof.md', score: 1, excerpts: [{ heading: 'fsync', text: 'With everysec a crash loses at most about one second of writes. The always policy is slower but loses nothing.' }] }]
  const content = [
    '# AOF guarantees zero data loss, always', '', '## Summary', '',
    'With everysec a crash loses at most about one second of writes [1]. With everysec a crash never loses writes [1]. The always policy is faster and loses writes [1].',
    'With everysec a crash loses at most about one second of writes [1].',
    'Unlike what the documents claim, Redis does not need persistence at all.',
    '', '## Kafka is better than Redis for everything', '',
    'The always policy is slower but loses nothing <img src=x onerror=alert(1)> [1]. See [the docs](https://evil.test) ![x](https://evil.test/x.png).',
    'The sources do not say which policy a queue should use.'
  ].join('\n')
  const { report, dropped } = checkReport(content, 'Does AOF lose writes?', sources)
  t.equal(report?.title, 'Research: Does AOF lose writes?', 'a title the model made up is not used')
  t.equal(report?.summary, 'With everysec a crash loses at most about one second of writes. [1]', 'the opposites and the repeat are gone')
  t.same(report?.sections.map((s) => s.heading), ['Details'], 'a heading nothing supports is replaced')
  t.equal(report?.sections[0]?.body, 'The always policy is slower but loses nothing. [1]\nThe sources do not say which policy a queue should use.', 'markup stripped (a link keeps only its text, and its sentence cites nothing); a sentence saying the sources are silent kept')
  t.same(dropped.map((d) => [d.sentence, d.reason]), [
    ['With everysec a crash never loses writes.', 'not supported by the passages of [1] it cites'],
    ['The always policy is faster and loses writes.', 'not supported by the passages of [1] it cites'],
    ['Unlike what the documents claim, Redis does not need persistence at all.', 'no citation'],
    ['See the docs .', 'no citation']
  ])
  t.notMatch(report?.markdown, /<img|onerror|evil\.test|Kafka|zero data loss/)
  t.ok(contradicts('Backoff is faster', 'Backoff is slower'))
  t.notOk(contradicts('A crash loses one second', 'a crash loses at most about one second'))
})

t.test('the support check: most of a sentence\'s words in the passage, and every number it states', async (t) => {
  t.ok(support('Backoff doubles the wait after each failed attempt', 'Exponential backoff doubles the wait after each failed attempt.') >= SUPPORTED)
  t.ok(support('A crash loses about one second of writes', 'everysec flushes once per second, so a crash loses at most about one second of writes') >= SUPPORTED)
  t.equal(support('The cap is 10 minutes', 'The cap is ten minutes, or 600 seconds.'), 0, 'a number the passage does not hold')
  t.ok(support('Kafka rebalances partitions between consumers', 'Jitter spreads retries out.') < SUPPORTED)
  t.equal(support('the and of', 'anything'), 0, 'a sentence with no word that means anything')
})

t.test('sub-questions from a JSON array or from lines', async (t) => {
  t.same(parseQueries('["a b c", "d e f", 3]', 'q'), ['a b c', 'd e f'])
  t.same(parseQueries('Here you go:\n1. first query\n- second query\n* Q', 'q'), ['Here you go:', 'first query', 'second query'])
  t.same(parseQueries('["q", "again"]', 'Q'), ['again'], 'the question itself is not repeated')
})

t.test('cost: computed from the prices, null when a paid call has no price', async (t) => {
  const meter = new UsageMeter(10_000)
  t.equal(meter.snapshot({ llmInputPerMTok: null, llmOutputPerMTok: null, searchPerQuery: null }).cost_usd, 0, 'nothing paid: zero')
  meter.llm({ inputTokens: 1_000_000, outputTokens: 500_000 })
  meter.search(false)
  meter.search(true)
  t.equal(meter.snapshot({ llmInputPerMTok: 0.15, llmOutputPerMTok: 0.6, searchPerQuery: 0.01 }).cost_usd, 0.46)
  t.equal(meter.snapshot({ llmInputPerMTok: 0.15, llmOutputPerMTok: 0.6, searchPerQuery: null }).cost_usd, null)
  t.equal(meter.snapshot({ llmInputPerMTok: null, llmOutputPerMTok: 0.6, searchPerQuery: 0.01 }).cost_usd, null)
  t.equal(meter.tokensLeft, 0)
})
