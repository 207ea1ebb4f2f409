// HTML is parsed in worker threads, within limits checked before the parse and a time limit
// that stops the thread: a hostile page costs one page, never the process.
import { readFileSync } from 'node:fs'
import { MessageChannel } from 'node:worker_threads'
import t, { type Test } from 'tap'
import { anyAddress } from '../../src/net/address-guard.js'
import { pastHtmlLimits } from '../../src/research/reader/html-limits.js'
import { HtmlPool, type HtmlPoolOptions } from '../../src/research/reader/html-pool.js'
import readHtml, { type HtmlTaskResult } from '../../src/research/reader/html-worker.js'
import { PageFetcher } from '../../src/research/reader/page-fetcher.js'
import { PageReader } from '../../src/research/reader/page-reader.js'
import { nestedPage, startTestSite } from '../helpers/test-site.js'

const never = new AbortController().signal
const limits = { maxDepth: 256, maxElements: 50_000 }

function reader (t: Test, options: HtmlPoolOptions = {}): PageReader {
  const r = new PageReader(new PageFetcher({ policy: anyAddress }), new HtmlPool(options))
  t.teardown(() => r.close())
  return r
}

t.test('the pre-parse count: depth and elements as the parser builds them, refused past a limit', async (t) => {
  // html, body, the divs and the p: 253 divs make 256 levels.
  t.equal(pastHtmlLimits(nestedPage(253), limits), null, 'at the depth limit')
  t.equal(pastHtmlLimits(nestedPage(254), limits), 'the page is nested too deeply to read (more than 256 levels)')
  const flat = (n: number): string => `<html><body>${'<p>words</p>'.repeat(n)}</body></html>`
  t.equal(pastHtmlLimits(flat(49_998), limits), null, '50,000 elements with html and body')
  t.equal(pastHtmlLimits(flat(49_999), limits), 'the page has too many elements to read (more than 50000)')
  // HTML leaves end tags out: a list item or paragraph ends where the next begins, <br> never opens.
  const unclosed = `<html><body><ul>${'<li>item<br>'.repeat(5000)}</ul>${'<p>text'.repeat(5000)}<table>${'<tr><td>cell'.repeat(5000)}</table></body></html>`
  t.equal(pastHtmlLimits(unclosed, { maxDepth: 8, maxElements: 50_000 }), null, 'implied end tags and void elements do not nest')
  t.equal(pastHtmlLimits('<html><body><p>Text <!-- <div><div><div> --> <script>"<div><div><div>"</script></p></body></html>', { maxDepth: 4, maxElements: 100 }), null, 'tags in comments and scripts are not elements')
})

t.test('the count stops at the first limit passed: a page 150,000 deep (1.6 MB) is refused at once', async (t) => {
  const html = nestedPage(150_000)
  const started = performance.now()
  t.equal(pastHtmlLimits(html, limits), 'the page is nested too deeply to read (more than 256 levels)')
  // Counted to the end, htmlparser2's own stack handling takes about 9 s on this page.
  const ms = performance.now() - started
  t.ok(ms < 500, `refused in ${ms.toFixed(1)} ms`)
})

t.test('through the reader: a page past a limit is a PageReadError with the reason; readable pages still read', async (t) => {
  const site = await startTestSite(t)
  await t.rejects(reader(t).read(`${site.url}/nested?depth=3000`, never), { name: 'PageReadError', url: `${site.url}/nested?depth=3000`, message: 'the page is nested too deeply to read (more than 256 levels)' })
  // retry-backoff.html has 16 elements, jitter.html 10.
  const r = reader(t, { maxElements: 12 })
  await t.rejects(r.read(`${site.url}/retry-backoff.html`, never), { name: 'PageReadError', message: 'the page has too many elements to read (more than 12)' })
  t.equal((await r.read(`${site.url}/jitter.html`, never)).title, 'Why retries need jitter', 'a page within the limits')
})

t.test('a parse past the time limit has its thread stopped: the page is refused, and the next page reads on a new thread', async (t) => {
  const site = await startTestSite(t)
  // One thread: had the slow parse gone on, the next page would wait for it (about a minute).
  const r = reader(t, { threads: 1, timeoutMs: 300, maxDepth: 5000 })
  t.equal((await r.read(`${site.url}/jitter.html`, never)).title, 'Why retries need jitter', 'the thread is up')
  const started = performance.now()
  await t.rejects(r.read(`${site.url}/nested?depth=2000`, never), { name: 'PageReadError', message: 'the page took too long to read (more than 300 ms)' })
  const refusedMs = performance.now() - started
  t.ok(refusedMs < 3000, `refused ${refusedMs.toFixed(0)} ms after the read began`)
  const next = performance.now()
  t.equal((await r.read(`${site.url}/jitter.html`, never)).title, 'Why retries need jitter')
  const nextMs = performance.now() - next
  t.ok(nextMs < 10_000, `the next page read in ${nextMs.toFixed(0)} ms (a new thread started for it)`)
})

t.test('the job\'s abort stops a parse at once and surfaces as the abort reason', async (t) => {
  const site = await startTestSite(t)
  const r = reader(t, { threads: 1, maxDepth: 5000 })
  t.equal((await r.read(`${site.url}/jitter.html`, never)).title, 'Why retries need jitter', 'the thread is up')
  const controller = new AbortController()
  const reason = new Error('cancelled by the client')
  const read = r.read(`${site.url}/nested?depth=2000`, controller.signal)
  while (!site.requests.includes('/nested')) await new Promise((resolve) => setTimeout(resolve, 5))
  await new Promise((resolve) => setTimeout(resolve, 200))
  const abortedAt = performance.now()
  controller.abort(reason)
  await t.rejects(read, reason)
  t.ok(performance.now() - abortedAt < 1000, 'the read ended at once')
  t.equal((await r.read(`${site.url}/jitter.html`, never)).title, 'Why retries need jitter', 'and the pool reads on')
})

/** The worker's task, run in this thread; checks that it says when it starts. */
async function inThisThread (body: Uint8Array, pageUrl: string): Promise<HtmlTaskResult> {
  const { port1, port2 } = new MessageChannel()
  const told = new Promise((resolve) => port1.once('message', resolve))
  const result = readHtml({ body, pageUrl, limits, started: port2 })
  await told
  port1.close()
  return result
}

t.test('a page reads the same through the threads as in this thread', async (t) => {
  const site = await startTestSite(t)
  const r = reader(t)
  for (const file of ['index.html', 'retry-backoff.html', 'jitter.html', 'about.html', 'sourdough.html']) {
    const here = await inThisThread(readFileSync(new URL(`../fixtures/site/${file}`, import.meta.url)), `${site.url}/${file}`)
    const there = await r.read(`${site.url}/${file}`, never)
    t.same(here, { page: { title: there.title, text: there.text, links: there.links } }, file)
  }
  t.same(await inThisThread(Buffer.from('<html><body><script>1</script></body></html>'), 'http://site.test/empty'), { page: { title: 'site.test', text: '# site.test', links: [] } }, 'a page with no text: titled by its host, and nothing else')
  t.same(await inThisThread(Buffer.from(nestedPage(300)), 'http://site.test/deep'), { refused: 'the page is nested too deeply to read (more than 256 levels)' })
})

t.test('an error in a parse fails the page, not the job', async (t) => {
  const pool = new HtmlPool({ threads: 1 })
  t.teardown(() => pool.close())
  // Without a title, the page is named by its URL's host: an invalid URL throws in the thread.
  await t.rejects(pool.extract(Buffer.from('<p>text</p>'), 'not a url', 'http://example.test/', never), { name: 'PageReadError', url: 'http://example.test/', message: /^the page could not be parsed: Invalid URL/ })
})

t.test('a closed pool stops its threads and reads no more', async (t) => {
  const site = await startTestSite(t)
  const pool = new HtmlPool({ threads: 1 })
  const r = new PageReader(new PageFetcher({ policy: anyAddress }), pool)
  t.equal((await r.read(`${site.url}/jitter.html`, never)).title, 'Why retries need jitter')
  await r.close()
  await t.rejects(pool.extract(Buffer.from('<p>late</p>'), 'http://example.test/', 'http://example.test/', never), { message: 'the HTML pool is closed' })
  await pool.close()
})
