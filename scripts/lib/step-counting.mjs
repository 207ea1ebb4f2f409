// What a research job costs outside the service, counted where it lands: a local web site of
// six pages per job, each answering after a short delay (so jobs are mid-run for a while), and
// an OpenAI-compatible fake LLM answering from the recorded responses in test/fixtures/llm (as
// test/helpers/fake-llm.ts does). Both count every request they get; the chaos suite compares
// these counts between a run with a fault and one without.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'

/** The pages of each job: /<job>/p1.html .. /<job>/p6.html. */
export const PAGES = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']

function recorded (name) {
  return readFileSync(new URL(`../../test/fixtures/llm/${name}.json`, import.meta.url), 'utf8')
}

/** A page on retries, with sentences of its own for each job and page. */
function page (job, name) {
  return `<!doctype html><html><head><title>Retries ${job} ${name}</title></head><body><main><h1>Retry backoff notes ${job} ${name}</h1>` +
    `<p>Retries with exponential backoff and jitter spread the load after an outage (job ${job}, note ${name}).</p>` +
    `<p>Jitter keeps clients that failed together from retrying together, so the service recovers (job ${job}, note ${name}).</p>` +
    `<p>A cap on the backoff keeps a long outage from pushing retries hours away (job ${job}, note ${name}).</p></main></body></html>`
}

async function listen (listener) {
  const server = createServer(listener)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address())
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}

/**
 * The site: `requests` counts requests by path (any path, so a fetch of something else shows
 * too); each page answers after `minDelayMs`..`maxDelayMs`.
 */
export async function startPageSite ({ minDelayMs = 150, maxDelayMs = 300 } = {}) {
  /** @type {Map<string, number>} */
  const requests = new Map()
  const timers = new Set()
  const { url, close } = await listen((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    requests.set(path, (requests.get(path) ?? 0) + 1)
    const match = /^\/(\d+)\/(p\d)\.html$/.exec(path)
    if (match === null || !PAGES.includes(match[2])) {
      res.writeHead(404).end()
      return
    }
    const timer = setTimeout(() => {
      timers.delete(timer)
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(match[1], match[2]))
    }, minDelayMs + Math.random() * (maxDelayMs - minDelayMs))
    timers.add(timer)
  })
  return {
    url,
    requests,
    /** The URLs of job `job`'s six pages. */
    pagesOf: (job) => PAGES.map((name) => `${url}/${job}/${name}.html`),
    total: () => [...requests.values()].reduce((a, b) => a + b, 0),
    reset: () => requests.clear(),
    close: async () => {
      for (const timer of timers) clearTimeout(timer)
      await close()
    }
  }
}

/**
 * The fake LLM (POST /v1/chat/completions): the planning prompt gets the recorded `plan`, the
 * gap check `reflect`, any other prompt the `report`. `requests` counts them by kind.
 */
export async function startCountingLlm () {
  const answers = { plan: recorded('plan'), reflect: recorded('reflect'), report: recorded('report') }
  /** @type {Record<string, number>} */
  let requests = {}
  const { url, close } = await listen((req, res) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname
      if (req.method !== 'POST' || path !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }))
        return
      }
      let body = null
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch {}
      const system = String(body?.messages?.[0]?.content ?? '')
      const kind = system.startsWith('You plan research') ? 'plan' : system.startsWith('You check research') ? 'reflect' : 'report'
      requests[kind] = (requests[kind] ?? 0) + 1
      res.writeHead(200, { 'content-type': 'application/json' }).end(answers[kind])
    })
  })
  return {
    baseUrl: `${url}/v1`,
    get requests () { return requests },
    total: () => Object.values(requests).reduce((a, b) => a + b, 0),
    reset: () => { requests = {} },
    close
  }
}
