import { type IncomingHttpHeaders, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from './app.js'

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
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      const status = state.answers.shift() ?? 200
      state.received.push({ headers: req.headers, body, answered: status })
      res.writeHead(status).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.port = (server.address() as AddressInfo).port
  state.url = `http://127.0.0.1:${state.port}/hooks/research`
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return state
}
