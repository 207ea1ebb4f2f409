import type { IncomingHttpHeaders } from 'node:http'
import type { TestContext } from './app.js'
import { startLocalServer } from './local-server.js'

export interface RecordedRequest { method: string, path: string, headers: IncomingHttpHeaders, body: any }
export interface JsonAnswer { status?: number, body: unknown, headers?: Record<string, string> }

export interface JsonServer {
  url: string
  requests: RecordedRequest[]
  /** Answers given before the handler is asked, first in first out (to script outages). */
  queued: JsonAnswer[]
}

/** A real HTTP server on 127.0.0.1 that answers JSON from `handler`, recording every request. */
export async function startJsonServer (t: TestContext, handler: (request: RecordedRequest) => JsonAnswer): Promise<JsonServer> {
  const state: JsonServer = { url: '', requests: [], queued: [] }
  state.url = (await startLocalServer(t, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      const request: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: raw === '' ? undefined : JSON.parse(raw) }
      state.requests.push(request)
      const answer = state.queued.shift() ?? handler(request)
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers }).end(text)
    })
  })).url
  return state
}
