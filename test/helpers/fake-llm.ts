import { readFileSync } from 'node:fs'
import type { TestContext } from './app.js'
import { type JsonServer, startJsonServer } from './json-server.js'

type Recorded = 'plan' | 'reflect' | 'report' | 'report-no-citations'

/** Chat completion responses recorded in OpenAI's public wire format (test/fixtures/llm). */
export function recorded (name: Recorded): any {
  return JSON.parse(readFileSync(new URL(`../fixtures/llm/${name}.json`, import.meta.url), 'utf8'))
}

/** A recorded response with other content: the wire format stays the recorded one. */
function answering (name: Recorded, content: string): any {
  const response = recorded(name)
  response.choices[0].message.content = content
  return response
}

/**
 * What the fake model writes for a report: a recorded answer by name, or content a test
 * scripts from the prompt (which numbers the sources it shows, `[n] Title (url)`), so that a
 * script can cite the right source, the wrong one, or one that was never shown.
 */
export type ReportScript = 'report' | 'report-no-citations' | ((prompt: string) => string)

/**
 * An OpenAI-compatible endpoint (`POST /v1/chat/completions`) answering from recorded
 * responses: the planning prompt gets `plan`, the gap check `reflect`, any other prompt the
 * report. Script outages by pushing answers onto `queued`.
 */
export async function startFakeLlm (t: TestContext, report: ReportScript = 'report'): Promise<JsonServer & { baseUrl: string }> {
  const server = await startJsonServer(t, (request) => {
    if (request.method !== 'POST' || request.path !== '/v1/chat/completions') return { status: 404, body: { error: { message: 'not found' } } }
    const system = String(request.body?.messages?.[0]?.content ?? '')
    if (system.startsWith('You plan research')) return { body: recorded('plan') }
    if (system.startsWith('You check research')) return { body: recorded('reflect') }
    if (typeof report === 'function') return { body: answering('report', report(String(request.body?.messages?.[1]?.content ?? ''))) }
    return { body: recorded(report) }
  })
  return Object.assign(server, { baseUrl: `${server.url}/v1` })
}

/** The number the write prompt gave the source whose address ends with `path`. */
export function sourceNumber (prompt: string, path: string): number {
  const line = prompt.split('\n').find((l) => /^\[\d+\] /.test(l) && l.includes(`${path})`))
  if (line === undefined) throw new Error(`the prompt shows no source at ${path}`)
  return Number(/^\[(\d+)\]/.exec(line)?.[1])
}
