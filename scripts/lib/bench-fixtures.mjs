// Loopback fixtures the benchmark's research runs share: HTTP servers closed on the way out,
// and a fake OpenAI-compatible LLM answering from the recorded responses in test/fixtures/llm.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'

/** HTTP servers on 127.0.0.1, all closed (connections included) by `closeAll`. */
export class LoopbackServers {
  /** @type {import('node:http').Server[]} */
  #servers = []

  /** Starts a server with `handler`; returns its base URL. */
  async serve (handler) {
    const server = createServer(handler)
    this.#servers.push(server)
    await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
    return `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`
  }

  async closeAll () {
    for (const server of this.#servers) server.closeAllConnections()
    await Promise.all(this.#servers.map((server) => new Promise((resolve) => server.close(resolve))))
  }
}

/** A request handler given the whole body once it has arrived. */
export function withBody (answer) {
  return (req, res) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => answer(req, res, Buffer.concat(chunks)))
  }
}

/**
 * POST /v1/chat/completions as test/helpers/fake-llm.ts answers it: the planning prompt gets
 * `plan`, the gap check `reflect`, any other the report; each after `delayMs`. `counts` is told
 * each request's kind.
 */
export function fakeLlm (root, { delayMs = 0, counts = { plan: 0, reflect: 0, report: 0 } } = {}) {
  const recorded = (name) => readFileSync(join(root, `test/fixtures/llm/${name}.json`), 'utf8')
  const answers = { plan: recorded('plan'), reflect: recorded('reflect'), report: recorded('report') }
  return withBody((req, res, body) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}')
      return
    }
    let system = ''
    try { system = String(JSON.parse(body.toString()).messages?.[0]?.content ?? '') } catch {}
    const kind = system.startsWith('You plan research') ? 'plan' : system.startsWith('You check research') ? 'reflect' : 'report'
    counts[kind]++
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(answers[kind]), delayMs)
  })
}
