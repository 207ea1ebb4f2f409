import type { TestContext } from './app.js'
import { startLocalServer } from './local-server.js'

type Value = string | number | boolean

/** One exported span, flattened from OTLP/HTTP JSON. */
export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** '' for a root span. */
  parentSpanId: string
  name: string
  /** OTLP's enum: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number
  attributes: Record<string, Value>
  links: Array<{ traceId: string, spanId: string, attributes: Record<string, Value> }>
  status: { code?: number, message?: string }
  /** The exporting process's resource (service.name, service.instance.id, ...). */
  resource: Record<string, Value>
  startNs: bigint
}

export interface OtlpReceiver {
  /** What OTEL_EXPORTER_OTLP_ENDPOINT is set to (the exporters add /v1/traces). */
  endpoint: string
  spans: ReceivedSpan[]
  /** Requests to paths other than /v1/traces (metrics, logs): none is expected. */
  otherPaths: string[]
}

/** An OTLP/HTTP receiver (JSON encoding, OTEL_EXPORTER_OTLP_PROTOCOL=http/json) on 127.0.0.1. */
export async function startOtlpReceiver (t: TestContext): Promise<OtlpReceiver> {
  const receiver: OtlpReceiver = { endpoint: '', spans: [], otherPaths: [] }
  const server = await startLocalServer(t, (req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      if (req.url !== '/v1/traces') receiver.otherPaths.push(req.url ?? '')
      else receiver.spans.push(...flatten(JSON.parse(body)))
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  receiver.endpoint = server.url
  return receiver
}

function flatten (request: any): ReceivedSpan[] {
  const spans: ReceivedSpan[] = []
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes)
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: span.name,
          kind: span.kind,
          attributes: attributesOf(span.attributes),
          links: (span.links ?? []).map((link: any) => ({ traceId: hex(link.traceId), spanId: hex(link.spanId), attributes: attributesOf(link.attributes) })),
          status: span.status ?? {},
          resource,
          startNs: BigInt(span.startTimeUnixNano ?? 0)
        })
      }
    }
  }
  return spans
}

function attributesOf (list: Array<{ key: string, value: Record<string, unknown> }> = []): Record<string, Value> {
  const out: Record<string, Value> = {}
  for (const { key, value } of list) {
    const v = value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue
    out[key] = typeof v === 'string' && 'intValue' in value ? Number(v) : v as Value
  }
  return out
}

/** OTLP JSON carries ids as hex; some encoders send base64. */
function hex (id: unknown): string {
  if (typeof id !== 'string' || id === '') return ''
  return /^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex')
}

/** The spans of one trace as an indented tree, for a test's comment (and a closing note). */
export function traceTree (spans: ReceivedSpan[], traceId: string, label: (span: ReceivedSpan) => string = (s) => s.name): string {
  const inTrace = spans.filter((s) => s.traceId === traceId).sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0))
  const ids = new Set(inTrace.map((s) => s.spanId))
  const lines: string[] = []
  const walk = (parent: string, depth: number): void => {
    for (const span of inTrace.filter((s) => s.parentSpanId === parent || (depth === 0 && parent === '' && !ids.has(s.parentSpanId)))) {
      lines.push(`${'  '.repeat(depth)}${label(span)}`)
      walk(span.spanId, depth + 1)
    }
  }
  walk('', 0)
  return lines.join('\n')
}
