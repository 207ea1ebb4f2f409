import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestContext } from './app.js'
import { startLocalServer } from './local-server.js'

const FILES = fileURLToPath(new URL('../fixtures/site/', import.meta.url))
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.txt': 'text/plain; charset=utf-8' }

export interface TestSite {
  url: string
  /** Paths requested, in order. */
  requests: string[]
  /** When a request to /slow was dropped by the client (ms since epoch). */
  slowClosedAt: number | null
  /** Search results the /search endpoint (SearXNG's JSON API) answers with, by query. */
  searchResults: (query: string) => Array<{ url: string, title: string, content: string }>
}

/**
 * A small real web site on 127.0.0.1 for reader and engine tests: the pages in
 * test/fixtures/site, plus a redirect, a redirect loop, a page that never finishes, oversized
 * pages, pages nested N deep (/nested?depth=N), a PDF, an image, a 404, and SearXNG's JSON search
 * API. Closed after the test.
 */
export async function startTestSite (t: TestContext): Promise<TestSite> {
  const site: TestSite = { url: '', requests: [], slowClosedAt: null, searchResults: () => [] }
  site.url = (await startLocalServer(t, (req, res) => { void handle(site, req, res) })).url
  return site
}

async function handle (site: TestSite, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', site.url)
  site.requests.push(url.pathname)
  switch (url.pathname) {
    case '/moved': res.writeHead(301, { location: '/retry-backoff.html' }).end(); return
    case '/loop': res.writeHead(302, { location: '/loop' }).end(); return
    case '/redirect': res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end(); return
    case '/missing': res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not found</h1>'); return
    case '/paper.pdf': res.writeHead(200, { 'content-type': 'application/pdf' }).end('%PDF-1.4\n%...'); return
    case '/photo.png': res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(64)); return
    case '/empty.html': res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body><script>1</script></body></html>'); return
    case '/nested': res.writeHead(200, { 'content-type': 'text/html' }).end(nestedPage(Number(url.searchParams.get('depth') ?? 1))); return
    case '/huge-declared': res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(3 * 1024 * 1024) }).end(); return
    case '/huge': {
      // No Content-Length: the reader has to count as it goes.
      res.writeHead(200, { 'content-type': 'text/html' })
      const chunk = `<p>${'retry backoff jitter '.repeat(3000)}</p>`
      for (let sent = 0; sent < 3 * 1024 * 1024 && !res.destroyed; sent += chunk.length) {
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve))
      }
      res.end()
      return
    }
    case '/slow': {
      // Headers, then silence: only the client giving up ends this request.
      res.writeHead(200, { 'content-type': 'text/html' })
      res.write('<html><body><p>Loading')
      req.socket.once('close', () => { site.slowClosedAt = Date.now() })
      return
    }
    case '/search': {
      const results = site.searchResults(url.searchParams.get('q') ?? '')
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ query: url.searchParams.get('q'), results }))
      return
    }
  }
  const file = url.pathname === '/' ? 'index.html' : url.pathname.slice(1)
  try {
    const body = await readFile(join(FILES, file))
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body)
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
  }
}

/** A small page whose text sits `depth` <div>s deep: 11 bytes a level (3,000 deep: 33 KB). */
export function nestedPage (depth: number): string {
  return `<!doctype html><html><head><title>Nested ${depth} deep</title></head><body>${'<div>'.repeat(depth)}<p>Retries need backoff and jitter.</p>${'</div>'.repeat(depth)}</body></html>`
}
