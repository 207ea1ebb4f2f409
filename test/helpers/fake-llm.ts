import { readFileSync } from 'node:fs'
import type { TestContext } from './app.js'
import { type JsonServer, startJsonServer } from './json-server.js'

/** Chat completion responses recorded in OpenAI's public wire format (test/fixtures/llm). */
export function recorded (name: 'plan' | 'report' | 'report-no-citations'): any {
  return JSON.parse(readFileSync(new URL(`../fixtures/llm/${name}.json`, import.meta.url), 'utf8'))
}

/**
 * An OpenAI-compatible endpoint (`POST /v1/chat/completions`) answering from recorded
 * responses: the planning prompt gets `plan`, any other prompt gets `report` (or the name the
 * test sets). Script outages by pushing answers onto `queued`.
 */
export async function startFakeLlm (t: TestContext, report: 'report' | 'report-no-citations' = 'report'): Promise<JsonServer & { baseUrl: string }> {
  const server = await startJsonServer(t, (request) => {
    if (request.method !== 'POST' || request.path !== '/v1/chat/completions') return { status: 404, body: { error: { message: 'not found' } } }
    const system = String(request.body?.messages?.[0]?.content ?? '')
    return { body: recorded(system.startsWith('You plan research') ? 'plan' : report) }
  })
  return Object.assign(server, { baseUrl: `${server.url}/v1` })
}
