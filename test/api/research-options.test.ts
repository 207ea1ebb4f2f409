import t from 'tap'
import { createJob, json, pollJob, startApp, waitFor } from '../helpers/app.js'
import { startFakeLlm } from '../helpers/fake-llm.js'
import { startTestSite } from '../helpers/test-site.js'

const QUESTION = 'How should failed background jobs be retried with backoff and jitter?'

t.test('request options are validated with clear 400s', async (t) => {
  const app = await startApp(t)
  t.same(json(await app.inject({ url: '/health' })).research, { engine: 'research', web_search: null, llm: null }, '/health says no provider is configured')
  const cases: Array<[object, string, RegExp]> = [
    [{ urls: ['ftp://example.org/file'] }, 'validation_error', /body\/urls\/0 must match pattern/],
    [{ urls: Array.from({ length: 21 }, (_, i) => `https://example.org/${i}`) }, 'validation_error', /body\/urls must NOT have more than 20 items/],
    [{ max_sources: 0 }, 'validation_error', /body\/max_sources must be >= 1/],
    [{ max_sources: 51 }, 'validation_error', /body\/max_sources must be <= 50/],
    [{ max_duration_s: 0 }, 'validation_error', /body\/max_duration_s must be >= 1/],
    [{ report_format: 'pdf' }, 'validation_error', /body\/report_format must be one of: markdown, json/],
    [{ sources: [] }, 'validation_error', /body\/sources must NOT have fewer than 1 items/],
    [{ sources: ['corpus', 'corpus'] }, 'validation_error', /duplicate items/],
    [{ sources: ['urls'] }, 'invalid_options', /^sources includes "urls" but no urls were given$/],
    [{ sources: ['corpus'], urls: ['https://example.org/'] }, 'invalid_options', /^urls were given but sources does not include "urls"$/],
    [{ sources: ['web'] }, 'source_unavailable', /^the "web" source is unavailable: no web search provider is configured \(set SEARXNG_URL, TAVILY_API_KEY or BRAVE_API_KEY\)$/]
  ]
  for (const [extra, error, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: QUESTION, ...extra } })
    t.equal(res.statusCode, 400, JSON.stringify(extra))
    t.match(json(res), { error, message }, JSON.stringify(extra))
  }
  const list = json(await app.inject({ method: 'GET', url: '/v1/jobs' }))
  t.equal(list.jobs.length, 0, 'no job was created by a refused request')
})

t.test('the record shows the options with their defaults filled in', async (t) => {
  const app = await startApp(t)
  t.same((await createJob(app, { query: QUESTION, depth: 'deep' })).options, { sources: ['corpus'], urls: [], max_sources: 12, max_duration_s: null, report_format: 'markdown' })
  t.same((await createJob(app, { query: QUESTION, urls: ['https://example.org/a'], max_sources: 3, max_duration_s: 60, report_format: 'json' })).options,
    { sources: ['corpus', 'urls'], urls: ['https://example.org/a'], max_sources: 3, max_duration_s: 60, report_format: 'json' })
})

t.test('over HTTP: a job reads the local test site and completes with citations that all resolve, and its usage', async (t) => {
  const site = await startTestSite(t)
  const app = await startApp(t, { ALLOW_PRIVATE_URLS: true })
  const created = await createJob(app, { query: QUESTION, sources: ['urls'], urls: [`${site.url}/`] })
  const seen = new Set<string>()
  const job = await pollJob(app, created.job_id, (j) => {
    seen.add(j.current_step)
    return j.status === 'completed' || j.status === 'failed'
  })
  t.equal(job.status, 'completed', job.error ?? '')
  const report = job.result
  const cited = new Set([...(report.markdown as string).matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])))
  t.same([...cited].sort(), report.sources.map((s: any) => s.id), 'every [n] is a source, every source is cited')
  for (const source of report.sources) t.ok(site.requests.includes(new URL(source.path_or_url).pathname), `${source.path_or_url} was read`)
  t.match(report.usage, { pages_fetched: 3, llm_calls: 0, cost_usd: 0 })
  t.equal(report.writer, 'extractive')
  t.ok([...seen].every((step) => typeof step === 'string'))
})

t.test('without ALLOW_PRIVATE_URLS a local URL is refused by the SSRF guard and the job says why', async (t) => {
  const site = await startTestSite(t)
  const app = await startApp(t)
  const created = await createJob(app, { query: QUESTION, sources: ['urls'], urls: [`${site.url}/`] })
  const job = await pollJob(app, created.job_id)
  t.equal(job.status, 'failed')
  t.match(job.error, /^No source could be read: http:\/\/127\.0\.0\.1:\d+\/ \(refused: private, loopback or link-local address \(set ALLOW_PRIVATE_URLS=true to allow it\)\)$/)
  t.equal(job.attempts, 1, 'a permanent error is not retried')
  t.match(job.current_step, /^Failed during: Reading 1\/1: http:\/\/127\.0\.0\.1/, 'the step named is the one that failed, reading the page')
  t.same(site.requests, [])
})

t.test('cancel stops a run that is waiting on a page within 1 s, and the page\'s connection is closed', async (t) => {
  const site = await startTestSite(t)
  const app = await startApp(t, { ALLOW_PRIVATE_URLS: true, PAGE_TIMEOUT_MS: 60_000 })
  const created = await createJob(app, { query: QUESTION, sources: ['urls'], urls: [`${site.url}/slow`] })
  await pollJob(app, created.job_id, (j) => /^Reading 1\/1/.test(j.current_step))
  await waitFor('the page request to arrive', () => site.requests.includes('/slow'))
  const cancelledAt = Date.now()
  const res = await app.inject({ method: 'POST', url: `/v1/jobs/${created.job_id}/cancel` })
  t.equal(res.statusCode, 200)
  await waitFor('the page connection to close', () => site.slowClosedAt !== null, 1000)
  const stopMs = (site.slowClosedAt as number) - cancelledAt
  t.ok(stopMs < 1000, `the in-flight request was aborted ${stopMs} ms after the cancel`)
  await waitFor('the runner to let go of the job', () => app.runner.stats().running === 0, 1000)
  t.equal((await pollJob(app, created.job_id)).status, 'cancelled')
})

t.test('max_duration_s: past it the job fails at once with the budget named, and is not retried', async (t) => {
  const site = await startTestSite(t)
  const app = await startApp(t, { ALLOW_PRIVATE_URLS: true, PAGE_TIMEOUT_MS: 60_000, JOB_RETRY_BASE_MS: 0 })
  const created = await createJob(app, { query: QUESTION, sources: ['urls'], urls: [`${site.url}/slow`], max_duration_s: 1 })
  const job = await pollJob(app, created.job_id, undefined, 5000)
  t.equal(job.status, 'failed')
  t.equal(job.error, 'The job did not finish within its time budget (max_duration_s = 1)')
  t.equal(job.attempts, 1)
  // The failure is written as the abort starts; the site sees its socket close a moment later.
  await waitFor('the site to see the page request aborted', () => site.slowClosedAt !== null, 1000)
  t.ok(site.slowClosedAt !== null, 'the page request was aborted')
})

t.test('an LLM configured through the environment writes the report; its outage fails the job with a clear error', async (t) => {
  const site = await startTestSite(t)
  const llm = await startFakeLlm(t)
  const app = await startApp(t, {
    ALLOW_PRIVATE_URLS: true,
    LLM_MODEL: 'gpt-4o-mini',
    LLM_BASE_URL: llm.baseUrl,
    LLM_API_KEY: 'sk-test',
    LLM_PRICE_INPUT_PER_MTOK: '0.15',
    LLM_PRICE_OUTPUT_PER_MTOK: '0.6',
    PROVIDER_RETRIES: 1,
    PROVIDER_RETRY_BASE_MS: 5
  })
  const done = await pollJob(app, (await createJob(app, { query: QUESTION, sources: ['urls'], urls: [`${site.url}/retry-backoff.html`, `${site.url}/jitter.html`] })).job_id)
  t.equal(done.status, 'completed', done.error ?? '')
  t.equal(done.result.writer, 'gpt-4o-mini')
  // The plan, the gap check and the report: 62 + 240 + 1,840 input and 19 + 14 + 171 output tokens at $0.15 and $0.60 per million.
  t.match(done.result.usage, { llm_calls: 3, input_tokens: 2142, output_tokens: 204, cost_usd: 0.000444 })
  t.equal(done.result.unsupported_claims, done.result.dropped_claims.length, 'the claims the citation check dropped are counted and listed')
  t.notMatch(done.result.markdown, /\[7\]|\[9\]|made up/, 'no citation of a source that was not read')
  t.equal(json(await app.inject({ url: '/health' })).research.llm, 'gpt-4o-mini')
  t.equal(llm.requests[0]?.headers.authorization, 'Bearer sk-test')

  llm.queued.push({ status: 500, body: { error: { message: 'boom' } } }, { status: 500, body: { error: { message: 'boom' } } })
  const failed = await pollJob(app, (await createJob(app, { query: QUESTION, sources: ['urls'], urls: [`${site.url}/jitter.html`] })).job_id)
  t.equal(failed.status, 'failed')
  t.equal(failed.error, 'The LLM (gpt-4o-mini) is unavailable: HTTP 500: boom (after 2 tries)')
  t.equal(failed.attempts, 1)
})

t.test('web search configured through SEARXNG_URL makes the web source available', async (t) => {
  const site = await startTestSite(t)
  site.searchResults = () => [{ url: `${site.url}/jitter.html`, title: 'Why retries need jitter', content: '' }]
  const app = await startApp(t, { ALLOW_PRIVATE_URLS: true, SEARXNG_URL: site.url })
  t.same(json(await app.inject({ url: '/health' })).research, { engine: 'research', web_search: 'SearXNG', llm: null }, '/health names the providers')
  const job = await pollJob(app, (await createJob(app, { query: QUESTION, depth: 'quick', sources: ['web'] })).job_id)
  t.equal(job.status, 'completed', job.error ?? '')
  t.same(job.result.sources.map((s: any) => [s.kind, s.path_or_url]), [['web', `${site.url}/jitter.html`]])
})

t.test('an Idempotency-Key reused with other options is a 422', async (t) => {
  const app = await startApp(t)
  const headers = { 'idempotency-key': 'opts-1' }
  const first = await app.inject({ method: 'POST', url: '/v1/research', headers, payload: { query: QUESTION, max_sources: 3 } })
  t.equal(first.statusCode, 202)
  const other = await app.inject({ method: 'POST', url: '/v1/research', headers, payload: { query: QUESTION, max_sources: 4 } })
  t.equal(other.statusCode, 422)
})
