import type { IncomingHttpHeaders } from 'node:http'
import type { TestContext } from './app.js'
import { startLocalServer } from './local-server.js'

export interface Received { headers: IncomingHttpHeaders, body: string, answered: number }

export interface Receiver {
  url: string
  port: number
  received: Received[]
  /** Status codes to answer, in order; once used up, 200. */
  answers: number[]
}

/** A webhook receiver: a real HTTP server on 127.0.0.1 that records every delivery. */
export async function startReceiver (t: TestContext): Promise<Receiver> {
  const state: Receiver = { url: '', port: 0, received: [], answers: [] }
  const server = await startLocalServer(t, (req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      const status = state.answers.shift() ?? 200
      state.received.push({ headers: req.headers, body, answered: status })
      res.writeHead(status).end()
    })
  })
  state.port = server.port
  state.url = `${server.url}/hooks/research`
  return state
}
