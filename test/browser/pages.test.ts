import { existsSync, mkdirSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'
import t, { type Test } from 'tap'
import { startApp } from '../helpers/app.js'
import { PacedEngine } from '../helpers/engines.js'
import { startTestSite } from '../helpers/test-site.js'

// Used only inside page.evaluate(), which runs them in the browser.
declare const document: { body: { scrollHeight: number } } & Record<string, any>
declare const localStorage: { getItem: (key: string) => string | null, setItem: (key: string, value: string) => void }

// Debian's chromium package (`.ci/run` installs it); CHROMIUM_PATH points elsewhere if needed.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const OUTPUT = new URL('../../test-output/', import.meta.url).pathname
// Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

async function browser (t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`)
  const launched = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  t.teardown(() => launched.close())
  mkdirSync(OUTPUT, { recursive: true })
  return launched
}

t.test('the jobs page: submit a question, watch the bar reach 100% live, read the report', async (t) => {
  const app = await startApp(t, { SSE_POLL_MS: 20 }, { engine: new PacedEngine(150) })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const page = await (await browser(t)).newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${base}/`)
  t.equal(await page.title(), 'Deep Research Jobs')
  t.equal(await page.getAttribute('nav a', 'href'), '/docs', 'a link to Swagger UI')
  await page.fill('#query', 'How do leases let another worker take over a crashed job?')
  await page.selectOption('#depth', 'quick')
  await page.click('#submit')
  const bar = page.locator('.job .bar').first()
  await page.waitForFunction(() => { const v = Number(document.querySelector('.job .bar')?.getAttribute('aria-valuenow')); return v > 0 && v < 100 }, undefined, { timeout: 15_000 })
  const midway = Number(await bar.getAttribute('aria-valuenow'))
  t.ok(midway > 0 && midway < 100, `the bar moved while the job ran (${midway}%)`)
  t.match(await page.textContent('.job .step'), /\S/, 'the current step is shown')
  await page.waitForSelector('.job[data-status="completed"] .report-title', { timeout: 20_000 })
  t.equal(await bar.getAttribute('aria-valuenow'), '100')
  t.match(await page.textContent('.job .status'), 'completed · 100%')
  t.match(await page.textContent('.report-title'), /^Research: How do leases let another worker take over a crashed job\?/)
  t.ok(await page.locator('.report .sources li').count() > 0, 'the sources are listed')
  t.match(await page.textContent('.report'), /\[1\]/, 'the report carries its citations')
  t.match(await page.textContent('.report .answer'), 'Answered from the sources', 'whether the sources answered is said first')
  await page.click('.report-title')
  const source = page.locator('.report .sources li').first()
  t.match(await page.locator('.report a.cite').first().getAttribute('href'), /^#source-[0-9a-f-]+-1$/, '[1] links to its source')
  t.ok(await source.locator('.quotes blockquote').count() > 0, 'the source shows the passage quoted')
  t.ok((await page.textContent('.report .summary') as string).includes(await source.locator('.quotes blockquote').first().textContent() as string), 'and it is the passage the summary states')
  t.match(await source.locator('a.open-source').getAttribute('href'), /^\/v1\/corpus\/[\w-]+\.md$/, 'a corpus source opens at the service\'s route')
  await source.locator('a.open-source').click()
  await page.waitForSelector('#document-dialog[open] .document-text mark')
  t.match(await page.textContent('#document-dialog .document-text'), /^# /, 'the document opens in the page')
  t.ok(await page.locator('#document-dialog mark').count() > 0, 'with the quoted passage marked')
  await page.screenshot({ path: `${OUTPUT}jobs-page-source.png`, fullPage: false })
  await page.click('#close-document')
  await page.waitForSelector('#document-dialog', { state: 'hidden' })
  await page.screenshot({ path: `${OUTPUT}jobs-page.png`, fullPage: true })

  await page.reload()
  await page.waitForSelector('.job[data-status="completed"] .report-title')
  t.equal(await page.locator('.job').count(), 1, 'after a reload the page lists the job from the API')
  t.same(errors, [], 'no script errors')
})

t.test('Swagger UI: "Try it out" creates a job and fetches it', async (t) => {
  const app = await startApp(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const page = await (await browser(t)).newPage()
  await page.goto(`${base}/docs`)
  const create = page.locator('#operations-research-createResearch')
  await create.locator('.opblock-summary').click()
  await create.locator('.try-out__btn').click()
  // The body Swagger UI fills in by itself (the documented example) must work as it is.
  t.match(await create.locator('textarea.body-param__text').inputValue(), /"query"/, 'a body is filled in')
  await create.locator('.execute').click()
  await create.locator('.live-responses-table tr.response .response-col_status').first().waitFor({ timeout: 15_000 })
  t.equal((await create.locator('.live-responses-table tr.response .response-col_status').first().textContent())?.trim(), '202')
  const body = await create.locator('.live-responses-table .response-col_description pre').first().textContent() ?? ''
  const jobId = /"job_id": "([0-9a-f-]{36})"/.exec(body)?.[1] as string
  t.match(jobId, /^[0-9a-f-]{36}$/, 'the response shows the new job')

  const get = page.locator('#operations-jobs-getJob')
  await get.locator('.opblock-summary').click()
  await get.locator('.try-out__btn').click()
  await get.locator('input[placeholder="job_id"]').fill(jobId)
  await get.locator('.execute').click()
  await get.locator('.live-responses-table tr.response .response-col_status').first().waitFor({ timeout: 15_000 })
  t.equal((await get.locator('.live-responses-table tr.response .response-col_status').first().textContent())?.trim(), '200')
  t.match(await get.locator('.live-responses-table .response-col_description pre').first().textContent(), `"job_id": "${jobId}"`)
  await page.screenshot({ path: `${OUTPUT}swagger-ui.png`, fullPage: true })
  await page.evaluate(() => { (globalThis as any).scrollTo(0, 0) })
  await page.screenshot({ path: `${OUTPUT}swagger-ui-top.png` })
  t.equal((await app.inject({ url: `/v1/jobs/${jobId}` })).statusCode, 200, 'the job exists on the server')
})

t.test('the jobs page against an API with keys: refused without one, working once it is entered', async (t) => {
  const key = 'page-test-key-0123456789'
  const { createHash } = await import('node:crypto')
  const app = await startApp(t, { SSE_POLL_MS: 20, API_KEYS: `page:${createHash('sha256').update(key).digest('hex')}` }, { engine: new PacedEngine(20) })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const page = await (await browser(t)).newPage()
  await page.goto(`${base}/`)
  await page.waitForSelector('#form-error:not([hidden])')
  t.match(await page.textContent('#form-error'), /Could not list jobs: .*key/i, 'the page says why it cannot list jobs')
  await page.fill('#api-key', key)
  await page.dispatchEvent('#api-key', 'change')
  await page.waitForSelector('#form-error', { state: 'hidden' })
  await page.fill('#query', 'What does appendfsync everysec mean?')
  await page.selectOption('#depth', 'quick')
  await page.click('#submit')
  await page.waitForSelector('.job[data-status="completed"] .report-title', { timeout: 20_000 })
  t.equal(await page.locator('.job .bar').first().getAttribute('aria-valuenow'), '100', 'the event stream was followed with the key')
  t.equal(await page.evaluate(() => localStorage.getItem('deep-research-key')), key, 'the key is kept for the next visit')
  await page.click('.report-title')
  await page.locator('.report a.open-source').first().click()
  await page.waitForSelector('#document-dialog[open] .document-text mark')
  t.match(await page.textContent('#document-dialog .document-text'), /everysec/, 'a source opens with the key too (the route is behind it)')
})

t.test('the jobs page people keep open: collapsed reports, cancel and delete, times, load more, safe rich text, failures explained, phone width, no serious axe violations', async (t) => {
  const engine = new PacedEngine(0)
  const site = await startTestSite(t)
  const app = await startApp(t, { SSE_POLL_MS: 20, ALLOW_PRIVATE_URLS: true }, { engine })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const post = async (payload: object): Promise<string> => JSON.parse((await app.inject({ method: 'POST', url: '/v1/research', payload })).body).job_id
  const ids: string[] = []
  for (let i = 0; i < 23; i++) ids.push(await post({ query: i % 2 === 0 ? `How does the Redis append-only file work? (${i})` : `What does a job lease do? (${i})`, depth: 'quick' }))
  const failedId = await post({ query: 'A page that cannot be read', sources: ['urls'], urls: ['http://127.0.0.1:9/'] })
  const webId = await post({ query: 'Why add jitter to retry backoff?', depth: 'quick', sources: ['urls'], urls: [`${site.url}/retry-backoff.html`] })
  for (const id of [...ids, failedId, webId]) await waitForFinal(app, id)
  engine.stepMs = 3000
  const slowId = await post({ query: 'A slow one to cancel', depth: 'deep' })

  // bypassCSP: only so the test can inject axe-core; the page itself runs under the real policy.
  const page = await (await (await browser(t)).newContext({ bypassCSP: true })).newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  page.on('dialog', (dialog) => { void dialog.accept() })
  await page.goto(`${base}/`)
  await page.waitForSelector(`#job-${ids[10] as string} .report-title`)
  t.equal(await page.locator('.job').count(), 20, 'the first page holds 20 jobs')
  t.equal(await page.locator('details.report-details[open]').count(), 0, 'every report starts collapsed')
  const height = await page.evaluate(() => document.body.scrollHeight)
  t.ok(height < 20 * 260, `20 jobs fit in ${height} px (about ${Math.round(height / 20)} px each)`)
  t.ok(await page.isVisible('#load-more'), 'more can be loaded')
  await page.click('#load-more')
  await page.waitForFunction(() => document.querySelectorAll('.job').length === 26)
  await page.waitForSelector('#load-more', { state: 'hidden' })
  t.pass('and then nothing is left to load')

  const first = page.locator(`#job-${ids[22] as string}`)
  const second = page.locator(`#job-${ids[21] as string}`)
  await first.locator('summary').click()
  t.equal(await first.locator('details').getAttribute('open'), '', 'a report opens from its title')
  await second.locator('summary').click()
  // The page closes the others on the 'toggle' event, which fires in a task after the click.
  await first.locator('details:not([open])').waitFor({ timeout: 5000 }).catch(() => {})
  t.equal(await first.locator('details').getAttribute('open'), null, 'opening another closes it: one at a time')
  const cite = second.locator('a.cite').first()
  const target = (await cite.getAttribute('href') as string).slice(1)
  t.equal(await page.locator(`[id="${target}"]`).count(), 1, `a citation links to its source (${target})`)
  t.notMatch(await second.locator('.report').textContent(), /`/, 'Markdown code marks are rendered, not shown raw')
  t.match(await first.locator('.times time').first().getAttribute('title'), /\d/, 'the exact time is on hover')
  t.match(await first.locator('.times').textContent(), /created .*· finished /)

  const web = page.locator(`#job-${webId}`)
  await web.locator('summary').click()
  t.equal(await web.locator('.sources a').first().getAttribute('href'), `${site.url}/retry-backoff.html`, 'a web source is a link')
  t.match(await page.locator(`#job-${failedId} .step`).textContent(), /^Failed during: Reading 1\/1: http:\/\/127\.0\.0\.1:9\/\. Reason: No source could be read/, 'a failure names the step and the reason')

  await page.waitForSelector(`#job-${slowId}[data-status="processing"]`)
  await page.click(`#job-${slowId} .cancel`)
  await page.waitForSelector(`#job-${slowId}[data-status="cancelled"]`)
  t.equal(JSON.parse((await app.inject({ url: `/v1/jobs/${slowId}` })).body).status, 'cancelled', 'cancelled on the server, after a confirmation')
  await page.click(`#job-${slowId} .delete`)
  await page.waitForSelector(`#job-${slowId}`, { state: 'detached' })
  t.equal((await app.inject({ url: `/v1/jobs/${slowId}` })).statusCode, 404, 'deleted on the server')

  engine.stepMs = 0
  await page.fill('#query', 'How does a circuit breaker recover?')
  await page.click('#submit')
  await page.waitForFunction(() => document.querySelectorAll('.job').length === 26)
  t.equal(await page.inputValue('#query'), '', 'the question box is cleared after a submit')

  await page.addScriptTag({ path: new URL('../../node_modules/axe-core/axe.min.js', import.meta.url).pathname })
  const violations = await page.evaluate(async () => (await (globalThis as any).axe.run(document)).violations.filter((v: any) => ['serious', 'critical'].includes(v.impact)).map((v: any) => `${v.id as string}: ${v.help as string}`))
  t.same(violations, [], 'axe-core: no serious or critical accessibility violations')
  await page.screenshot({ path: `${OUTPUT}jobs-page-list.png`, fullPage: false })

  await page.setViewportSize({ width: 375, height: 800 })
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth)
  t.ok(overflow <= 375, `nothing wider than a phone screen (${overflow} px)`)
  await page.screenshot({ path: `${OUTPUT}jobs-page-phone.png`, fullPage: false })
  t.same(errors, [], 'no script errors')
})

async function waitForFinal (app: Awaited<ReturnType<typeof startApp>>, id: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const status = JSON.parse((await app.inject({ url: `/v1/jobs/${id}` })).body).status
    if (['completed', 'failed', 'cancelled'].includes(status)) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`job ${id} did not finish`)
}

t.test('the jobs page asks for nothing that is missing (its icon included), and a blank question is refused in plain words', async (t) => {
  const app = await startApp(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const page = await (await browser(t)).newPage()
  const missing: string[] = []
  page.on('response', (response) => { if (response.status() >= 400) missing.push(`${response.status()} ${response.url()}`) })
  await page.goto(`${base}/`)
  await page.waitForLoadState('networkidle')
  t.same(missing, [], 'no request of the page failed')
  const icon = await fetch(`${base}/favicon.ico`)
  t.equal(icon.status, 200, '/favicon.ico answers, for browsers that ask for it anyway')
  t.match(icon.headers.get('content-type'), /^image\/svg\+xml/)
  await page.fill('#query', '   ')
  await page.click('#submit')
  await page.waitForSelector('#form-error:not([hidden])')
  t.equal(await page.textContent('#form-error'), 'The question (query) is blank: write the question to research')
})
