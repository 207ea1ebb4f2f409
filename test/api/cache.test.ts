// The shared cache of pages and LLM answers, through the HTTP API: the same question over the
// same pages again within the cache's lifetime fetches nothing and asks the LLM nothing;
// `cache: false` fetches and asks everything again; tenants never share answers unless
// CACHE_SCOPE=shared. Counted by the local site's and the fake LLM's own request logs.
import t from 'tap'
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { type TestContext, json, pollJob, startApp } from '../helpers/app.js'
import { startFakeLlm } from '../helpers/fake-llm.js'
import { startTestSite } from '../helpers/test-site.js'

const PAGES = ['/', '/about.html', '/jitter.html', '/retry-backoff.html', '/sourdough.html', '/notes.txt']
const QUESTION = 'How should retries use backoff and jitter?'
const KEYS = { alice: 'alice-key-0123456789', bob: 'bob-key-0123456789' }
const API_KEYS = Object.entries(KEYS).map(([name, key]) => `${name}:${createHash('sha256').update(key).digest('hex')}`).join(',')

async function research (app: FastifyInstance, siteUrl: string, extra: object = {}, key?: string): Promise<any> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/research',
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
    payload: { query: QUESTION, depth: 'standard', sources: ['urls'], urls: PAGES.map((p) => `${siteUrl}${p}`), max_sources: 6, ...extra }
  })
  if (res.statusCode !== 202) throw new Error(`create answered ${res.statusCode}: ${res.body}`)
  return await pollJob(app, json(res).job_id, undefined, 30_000, key === undefined ? {} : { authorization: `Bearer ${key}` })
}

async function setup (t: TestContext, config: object = {}) {
  const site = await startTestSite(t)
  const llm = await startFakeLlm(t)
  const app = await startApp(t, { ALLOW_PRIVATE_URLS: true, LLM_BASE_URL: llm.baseUrl, LLM_MODEL: 'fake-model', ...config })
  /** Page fetches and LLM requests since the last call. */
  let seen = { pages: 0, llm: 0 }
  const since = (): { pages: number, llm: number } => {
    const now = { pages: site.requests.length, llm: llm.requests.length }
    const delta = { pages: now.pages - seen.pages, llm: now.llm - seen.llm }
    seen = now
    return delta
  }
  return { site, llm, app, since }
}

t.test('the same question over the same pages again: no page fetched, no LLM request; with cache: false, all of them again', async (t) => {
  const { site, app, since } = await setup(t)
  const first = await research(app, site.url)
  t.equal(first.status, 'completed')
  const cold = since()
  t.equal(cold.pages, 6, 'the first job fetched the six pages')
  t.ok(cold.llm >= 2, `the first job asked the LLM (${cold.llm} requests)`)
  t.equal(first.result.usage.cached_pages, 0)

  const again = await research(app, site.url)
  t.same(since(), { pages: 0, llm: 0 }, 'the second job fetched nothing and asked the LLM nothing')
  t.equal(again.result.summary, first.result.summary, 'and wrote the same report')
  t.same(again.result.sources.map((s: any) => s.path_or_url), first.result.sources.map((s: any) => s.path_or_url))
  t.equal(again.result.usage.cached_pages, 6)
  t.equal(again.result.usage.cached_llm_calls, cold.llm)
  t.equal(again.result.usage.pages_fetched, 0)
  t.equal(again.result.usage.llm_calls, 0, 'no tokens spent: no call made')
  t.equal(again.result.usage.input_tokens, 0)

  const fresh = await research(app, site.url, { cache: false })
  t.same(since(), cold, 'cache: false fetched every page and sent every LLM request again')
  t.equal(fresh.options.cache, false, 'the job shows it was asked not to use the cache')
  t.equal(fresh.result.usage.cached_pages, 0)

  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /research_cache_lookups_total\{kind="page",outcome="hit"\} 6/)
  t.match(metrics, /research_cache_lookups_total\{kind="page",outcome="skipped"\} 6/)
  t.match(metrics, /research_steps_total\{outcome="ran"\} \d+/)
})

t.test('tenants never share cached answers (CACHE_SCOPE=tenant, the default); CACHE_SCOPE=shared lets them', async (t) => {
  for (const scope of ['tenant', 'shared'] as const) {
    const { site, app, since } = await setup(t, { API_KEYS, CACHE_SCOPE: scope })
    await research(app, site.url, {}, KEYS.alice)
    t.equal(since().pages, 6)
    await research(app, site.url, {}, KEYS.bob)
    t.equal(since().pages, scope === 'tenant' ? 6 : 0, `${scope}: bob ${scope === 'tenant' ? 'fetches the pages himself' : 'gets alice\'s pages'}`)
    await research(app, site.url, {}, KEYS.alice)
    t.equal(since().pages, 0, `${scope}: alice gets her own pages back`)
  }
})

t.test('CACHE_ENABLED=false: every job fetches its pages', async (t) => {
  const { site, app, since } = await setup(t, { CACHE_ENABLED: false })
  await research(app, site.url)
  t.equal(since().pages, 6)
  const again = await research(app, site.url)
  t.equal(since().pages, 6)
  t.equal(again.result.usage.cached_pages, 0)
})

t.test('a job asking cache: false must say so as a boolean', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ method: 'POST', url: '/v1/research', payload: { query: QUESTION, cache: 'no' } })
  t.equal(res.statusCode, 400)
  t.match(json(res), { error: 'validation_error', message: /cache/ })
})

t.test('paced research (RESEARCH_STEP_DELAY_MS, as demos and the chaos suite run it) still uses the cache and its steps', async (t) => {
  const { site, app, since } = await setup(t, { RESEARCH_STEP_DELAY_MS: 5 })
  await research(app, site.url)
  t.equal(since().pages, 6)
  const again = await research(app, site.url)
  t.same(since(), { pages: 0, llm: 0 }, 'the paced engine passed the cache on to the engine it paces')
  t.equal(again.result.usage.cached_pages, 6)
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /research_steps_total\{outcome="ran"\} [1-9]/, 'and its steps')
})
