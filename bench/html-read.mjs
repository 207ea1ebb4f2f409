// What reading a page costs the research engine, per page: its article's text blocks
// (extractHtml: linkedom and Readability, in the HTML pool's threads) and the tokens of that text
// (tokenize, which every passage of it goes through when the job's passages are indexed, on the
// main thread). Runnable alone after a build: `node bench/html-read.mjs`.
// Pages: the test site's (test/fixtures/site) and a generated long article (navigation, 120
// sections of headings, paragraphs, lists and links; 46 KB), plus any files named in
// HTML_READ_PAGES (comma-separated paths). HTML_READ_BEFORE=<a checkout with a built dist/> reads
// every page with that build too, alternating in this process, says whether both give the same
// text, and prints the ratio. Best of HTML_READ_ROUNDS (default 8) rounds: a shared machine's
// noise only ever adds time.
import { readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const before = process.env.HTML_READ_BEFORE ?? ''
const rounds = Number(process.env.HTML_READ_ROUNDS ?? 8)
const PAGE_URL = 'https://example.org/docs/page.html'

/** extractHtml and tokenize of one build (a runtime-built specifier: dist/ is not there to type-check against before a build). */
async function build (dir) {
  const { extractHtml } = await import(pathToFileURL(resolve(dir, 'dist/research/reader/html.js')).href)
  const { tokenize } = await import(pathToFileURL(resolve(dir, 'dist/research/text.js')).href)
  return { extractHtml, tokenize }
}

function longArticle () {
  const nav = Array.from({ length: 60 }, (_v, i) => `<a href="/section-${i}">Section ${i}</a>`).join(' ')
  const sections = Array.from({ length: 120 }, (_v, i) => `<h2>Retries, part ${i}</h2>` +
    `<p>Part ${i}: a client that retries with exponential backoff and jitter spreads its attempts, so a recovering service is not flooded again; see <a href="/notes/${i}">the notes</a> and <b>the limits</b> that keep it bounded.</p>` +
    `<ul><li>Cap the delay at a few seconds (part ${i}).</li><li>Give up after a budget of attempts, and say so.</li></ul>`).join('')
  return `<!doctype html><html><head><title>Retry notes</title></head><body><nav>${nav}</nav><article><h1>Retry notes</h1>${sections}</article><footer>Site footer</footer></body></html>`
}

const pages = new Map([['generated long article', longArticle()]])
const site = join(root, 'test/fixtures/site')
for (const file of readdirSync(site).filter((f) => f.endsWith('.html')).sort()) pages.set(`test site ${file}`, readFileSync(join(site, file), 'utf8'))
for (const file of (process.env.HTML_READ_PAGES ?? '').split(',').filter((f) => f !== '')) pages.set(file, readFileSync(file, 'utf8'))

const builds = [{ name: 'this build', code: await build(root) }]
if (before !== '') builds.push({ name: 'before', code: await build(before) })

/** Best ms per call of `work` over the rounds, the builds alternating which goes first; each round about 200 ms of calls per build. */
function timed (work) {
  const first = performance.now()
  work(builds[0].code)
  const calls = Math.max(1, Math.round(200 / Math.max(0.01, performance.now() - first)))
  const best = builds.map(() => Infinity)
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? builds.map((_b, i) => i) : builds.map((_b, i) => i).reverse()
    for (const i of order) {
      const started = performance.now()
      for (let c = 0; c < calls; c++) work(builds[i].code)
      best[i] = Math.min(best[i], (performance.now() - started) / calls)
    }
  }
  return best
}

const rows = []
for (const [name, html] of pages) {
  const texts = builds.map(({ code }) => code.extractHtml(html, PAGE_URL).text)
  const blocks = texts[0].split('\n\n')
  const read = timed((b) => b.extractHtml(html, PAGE_URL))
  const tokens = timed((b) => { for (const block of blocks) b.tokenize(block) })
  rows.push({ name, kb: html.length / 1000, read, tokens, same: texts.every((t) => t === texts[0]) })
}

const ms = (v) => v < 1 ? v.toFixed(3) : v.toFixed(1)
const us = (v) => (v * 1000).toFixed(v < 0.01 ? 1 : 0)
const header = before === ''
  ? ['page', 'KB', 'extractHtml ms', 'tokenize its text µs']
  : ['page', 'KB', 'extractHtml ms (before)', 'ratio', 'tokenize its text µs (before)', 'ratio', 'same text']
console.log(`| ${header.join(' | ')} |`)
console.log(`| ${header.map(() => '---').join(' | ')} |`)
for (const r of rows) {
  const cells = before === ''
    ? [r.name, r.kb.toFixed(1), ms(r.read[0]), us(r.tokens[0])]
    : [r.name, r.kb.toFixed(1), `${ms(r.read[0])} (${ms(r.read[1])})`, (r.read[0] / r.read[1]).toFixed(2), `${us(r.tokens[0])} (${us(r.tokens[1])})`, (r.tokens[0] / r.tokens[1]).toFixed(2), r.same ? 'yes' : 'NO']
  console.log(`| ${cells.join(' | ')} |`)
}
console.log(`Best of ${rounds} rounds, ${builds.map((b) => b.name).join(' and ')} alternating; Node ${process.version}.`)
if (rows.some((r) => !r.same)) process.exitCode = 1
