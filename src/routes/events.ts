import type { IncomingMessage } from 'node:http'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ServiceError } from '../errors.js'
import { JobIdParams } from '../schemas/requests.js'
import { problems } from '../schemas/responses.js'
import { JobEventStream } from '../jobs/event-stream.js'
import { StreamSlots } from '../jobs/stream-slots.js'
import { EVENT_ID } from '../schemas/events.js'

const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: EVENT_ID.source, description: 'The `id:` of the last event received: the stream resumes after it (browsers send it when they reconnect).' }))
})

const EventsQuery = Type.Object({
  last_event_id: Type.Optional(Type.String({ pattern: EVENT_ID.source, description: 'Same as the Last-Event-ID header, for clients that cannot set headers.' }))
}, { additionalProperties: false })

export interface EventRouteOptions {
  heartbeatMs: number
  /** How often a stream reads again while notices cannot be trusted (the subscriber is reconnecting). */
  pollMs: number
  /** Open streams this process serves at most, and per client (API key, or address). */
  maxStreams: number
  maxStreamsPerClient: number
  /** A record lives this long after its last write: a stream of a job that expired ends. */
  ttlSeconds: number
}

/**
 * Live progress as Server-Sent Events. Each change of a job is an event kept with the job (in
 * Redis, shared by replicas), so a client reconnecting with Last-Event-ID to any replica gets
 * exactly the events it missed. A stream reads events when a notice says its job changed (no
 * polling: an idle stream costs Redis nothing), and ends after the final event, when its job is
 * deleted or expires. Resumed at or after the final event it answers 204, which tells a
 * browser's EventSource to stop reconnecting.
 */
const eventRoutes: FastifyPluginAsyncTypebox<EventRouteOptions> = async (app, options) => {
  const open = new Set<Promise<void>>()
  const slots = new StreamSlots(options.maxStreams, options.maxStreamsPerClient)
  const closing = new AbortController()
  app.addHook('preClose', async () => {
    closing.abort()
    await Promise.allSettled([...open])
  })

  app.get('/v1/jobs/:job_id/events', {
    config: { budget: 'poll' },
    schema: {
      operationId: 'watchJobEvents',
      tags: ['jobs'],
      summary: 'Watch a job live (Server-Sent Events)',
      description: 'A `text/event-stream` of events `status`, `progress`, then one of `completed`, `failed`, `cancelled`, after which the server ends the stream. ' +
        'Each event has an `id:` and JSON `data`: `{ job_id, status, progress, current_step, attempts, error }`. Reconnect with `Last-Event-ID` to resume without gaps or repeats while the job runs, on any replica; ' +
        'resumed at or after the final event, the answer is 204 (an EventSource stops reconnecting). A finished job keeps its final event alone: a client arriving after the end, ' +
        'or resuming from before it, gets the final event without the progress before it. The stream also ends when the job is deleted or expires. ' +
        'Comment lines (`: heartbeat`) keep idle connections open through proxies.',
      params: JobIdParams,
      headers: EventsHeaders,
      querystring: EventsQuery,
      response: {
        200: { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        204: Type.Null({ description: 'The stream is over: resumed at or after the final event' }),
        ...problems(400, 401, 404, 414, 429, 503)
      }
    }
  }, async (request, reply) => {
    const client = request.principal.tenant ?? `ip:${request.ip}`
    // Taken before the first await: streams opened at once must not all pass one check (#25).
    const slot = slots.take(client)
    if (slot === null) {
      throw new ServiceError('too_many_streams', `Too many open event streams (at most ${options.maxStreamsPerClient} per client); close one, or long poll with ?wait=`, { retryAfter: 5 })
    }
    const gone = hangUpSignal(request.raw)
    let streaming = false
    try {
      const job = await app.jobs.get(request.params.job_id, request.principal.tenant)
      const cursor = request.headers['last-event-id'] ?? request.query.last_event_id ?? null
      const events = await JobEventStream.open(app.jobs, job, cursor, options)
      if (events === 'over') return await reply.code(204).send(null)
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        ...reply.getHeaders() as Record<string, string>,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no'
      })
      const stream = events.run((text) => res.write(text), AbortSignal.any([gone, closing.signal])).catch((err: unknown) => {
        request.log.warn({ err, job_id: job.job_id }, 'event stream stopped on an error')
      }).finally(() => {
        open.delete(stream)
        slot.release()
        res.end()
      })
      open.add(stream)
      streaming = true
    } finally {
      // Every way out before the stream runs (204, 404, an error) gives the place back.
      if (!streaming) slot.release()
    }
  })
}

/**
 * Aborts when the client hangs up, including before this was called: a client gone while its
 * stream was opening would otherwise hold its place until the job ends.
 */
function hangUpSignal (raw: IncomingMessage): AbortSignal {
  const gone = new AbortController()
  if (raw.destroyed || raw.socket?.destroyed === true) gone.abort()
  else raw.once('close', () => gone.abort())
  return gone.signal
}

export default eventRoutes
