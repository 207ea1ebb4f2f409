import { AsyncLocalStorage } from 'node:async_hooks'
import { tracingChannel } from 'node:diagnostics_channel'
import { type Attributes, type Span, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api'
import { jobAttributes } from './spans.js'
import { isFunctionMissing } from '../store/lua-functions.js'

/**
 * Redis calls as spans, from the tracing channels node-redis (6+) publishes for every command
 * and pipeline, single node and Cluster alike: nothing is patched, and with no subscriber
 * node-redis skips the publishing. Only calls made inside a live span (a request, a job's run)
 * become spans: the claim loop, heartbeats and pollers would otherwise fill the backend with
 * root spans that explain nothing.
 */

/** What node-redis puts on each message (lib/client/tracing.js). */
interface RedisTraceMessage {
  command?: string
  args?: string[]
  database?: number
  serverAddress?: string
  serverPort?: number
  batchMode?: string
  batchSize?: number
  error?: unknown
}

const scriptNames = new Map<string, string>()

/** Names a Lua script by its SHA1 (and its source, for the EVAL after a NOSCRIPT), so its span says which script ran. */
export function nameRedisScript (name: string, sha: string, source: string): void {
  scriptNames.set(sha, name)
  scriptNames.set(source, name)
}

/**
 * The script an FCALL runs, while it is being sent: node-redis traces an FCALL's arguments as
 * '?' (it passes EVALSHA's SHA1 on), so the function's name cannot name the span. Kept only while
 * Redis calls are traced; elsewhere the call is made as it is.
 */
const callingScript = new AsyncLocalStorage<string>()
let tracing = 0

/** Runs `send` (an FCALL of `name`'s function) so that its span is named by the script. */
export function sendingScript<T> (name: string, send: () => T): T {
  return tracing > 0 ? callingScript.run(name, send) : send()
}

const TRACER = 'deep-research-api/redis'
const CHANNELS = ['node-redis:command', 'node-redis:batch'] as const

/** Starts turning Redis calls into spans; the returned function stops it. */
export function traceRedisCalls (): () => void {
  const spans = new WeakMap<object, Span>()
  const end = (message: RedisTraceMessage): void => {
    spans.get(message)?.end()
    spans.delete(message)
  }
  const handlers = {
    start (message: unknown) {
      const parent = context.active()
      const parentSpan = trace.getSpan(parent)
      // Not a span that has ended either: a loop that began inside a request and outlived it.
      if (parentSpan?.isRecording() !== true) return
      const call = message as RedisTraceMessage
      const { name, attributes } = describe(call)
      spans.set(call, trace.getTracer(TRACER).startSpan(name, { kind: SpanKind.CLIENT, attributes: { ...jobAttributes(parent) ?? idsOf(parentSpan), ...attributes } }, parent))
    },
    // A synchronous throw publishes error and end, never asyncEnd; a rejection publishes end first, then error.
    end (message: unknown) {
      if ((message as RedisTraceMessage).error !== undefined) end(message as RedisTraceMessage)
    },
    asyncStart () {},
    asyncEnd (message: unknown) { end(message as RedisTraceMessage) },
    error (message: unknown) {
      const call = message as RedisTraceMessage
      const span = spans.get(call)
      if (span === undefined) return
      const error = call.error instanceof Error ? call.error : new Error(String(call.error))
      // The first answer after a Redis restart, which the store answers with EVAL or FUNCTION LOAD: not a failure.
      if (error.message.startsWith('NOSCRIPT') || isFunctionMissing(error)) {
        span.setAttribute('db.response.status_code', error.message.startsWith('NOSCRIPT') ? 'NOSCRIPT' : 'ERR')
        return
      }
      span.recordException(error)
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
    }
  }
  const channels = CHANNELS.map((name) => tracingChannel(name))
  for (const channel of channels) channel.subscribe(handlers)
  tracing++
  return () => {
    tracing--
    for (const channel of channels) channel.unsubscribe(handlers)
  }
}

/**
 * The job and tenant a request's span carries (src/plugins/tracing.ts sets them on its handler's
 * span), for the Redis calls the handler makes: @fastify/otel starts them in a context of its own.
 */
function idsOf (span: Span): Attributes {
  // The SDK's spans are readable (its ReadableSpan); the API's no-op spans are not.
  const attributes = (span as { attributes?: Attributes }).attributes ?? {}
  const ids: Attributes = {}
  for (const key of ['job.id', 'tenant.id']) if (attributes[key] !== undefined) ids[key] = attributes[key]
  return ids
}

function describe (call: RedisTraceMessage): { name: string, attributes: Attributes } {
  const attributes: Attributes = { 'db.system.name': 'redis' }
  if (call.serverAddress !== undefined) attributes['server.address'] = call.serverAddress
  if (call.serverPort !== undefined) attributes['server.port'] = call.serverPort
  if (call.database !== undefined) attributes['db.namespace'] = String(call.database)
  if (call.command === undefined) {
    // A pipeline or MULTI as a whole; its commands are spans of their own where node-redis traces them.
    const mode = String(call.batchMode)
    attributes['db.operation.batch.size'] = Number(call.batchSize)
    attributes['db.operation.name'] = mode
    return { name: mode, attributes }
  }
  attributes['db.operation.name'] = call.command
  const script = call.command === 'FCALL' ? callingScript.getStore() : call.command.startsWith('EVAL') && call.args?.[1] !== undefined ? scriptNames.get(call.args[1]) : undefined
  // The arguments stay out: they hold job records, questions and reports.
  if (script === undefined) return { name: call.command, attributes }
  attributes['db.stored_procedure.name'] = script
  return { name: `${call.command} ${script}`, attributes }
}
