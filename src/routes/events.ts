import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ServiceError } from '../errors.js'
import { JobIdParams } from '../schemas/requests.js'
import { problems } from '../schemas/responses.js'
import { EVENT_ID, FINAL_EVENT_TYPES, type JobEvent, eventData, eventType } from '../store/job-events.js'
import { isFinal } from '../store/job-store.js'

const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: EVENT_ID.source, description: 'The `id:` of the last event received: the stream resumes after it (browsers send it when they reconnect).' }))
})

const EventsQuery = Type.Object({
  last_event_id: Type.Optional(Type.String({ pattern: EVENT_ID.source, description: 'Same as the Last-Event-ID header, for clients that cannot set headers.' }))
}, { additionalProperties: false })

const BATCH = 100

export interface EventStreamOptions {
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
const eventRoutes: FastifyPluginAsyncTypebox<EventStreamOptions> = async (app, options) => {
  const open = new Set<Promise<void>>()
  const perClient = new Map<string, number>()
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
        'Each event has an `id:` and JSON `data`: `{ job_id, status, progress, current_step, attempts, error }`. Reconnect with `Last-Event-ID` to resume without gaps or repeats, on any replica; ' +
        'resumed at or after the final event, the answer is 204 (an EventSource stops reconnecting). The stream also ends when the job is deleted or expires. ' +
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
    const job = await app.jobs.get(request.params.job_id, request.principal.tenant)
    const client = request.principal.tenant ?? `ip:${request.ip}`
    if (open.size >= options.maxStreams || (perClient.get(client) ?? 0) >= options.maxStreamsPerClient) {
      throw new ServiceError('too_many_streams', `Too many open event streams (at most ${options.maxStreamsPerClient} per client); close one, or long poll with ?wait=`, { retryAfter: 5 })
    }
    let cursor = request.headers['last-event-id'] ?? request.query.last_event_id ?? null
    const notices = app.store.notices
    // Watched before the first read, so no change slips between the read and the wait.
    const watch = notices.watch(job.job_id, job.version)
    let events: JobEvent[]
    try {
      events = await app.store.events(job.job_id, cursor, BATCH)
    } catch (err) {
      watch.close()
      throw err
    }
    if (cursor !== null && events.length === 0 && isFinal(job.status)) {
      watch.close()
      return await reply.code(204).send(null)
    }
    if (cursor === null && events.length === 0) {
      // A job whose history is not kept (created on a replica cut off from Redis): its state as one event.
      events = [{ id: '0-1', type: eventType(null, job.status), data: eventData(job) }]
    }
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      ...reply.getHeaders() as Record<string, string>,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    res.write('retry: 1000\n\n')
    const gone = new AbortController()
    request.raw.on('close', () => gone.abort())
    const signal = AbortSignal.any([gone.signal, closing.signal])
    perClient.set(client, (perClient.get(client) ?? 0) + 1)

    const stream = (async () => {
      let expiresAt = Date.parse(job.expires_at)
      let lastWrite = Date.now()
      for (;;) {
        for (const event of events) {
          res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${event.data}\n\n`)
          cursor = event.id
          lastWrite = Date.now()
          if (FINAL_EVENT_TYPES.has(event.type)) return
        }
        if (events.length < BATCH) {
          const waitMs = Math.max(0, Math.min(options.heartbeatMs - (Date.now() - lastWrite), expiresAt - Date.now(), notices.live ? Infinity : options.pollMs))
          const end = await watch.next(waitMs, signal)
          if (end === 'aborted' || end === 'deleted') return
          if (end === 'changed') expiresAt = Date.now() + options.ttlSeconds * 1000
          if (end === 'timeout') {
            if (Date.now() >= expiresAt) {
              const current = await app.store.get(job.job_id)
              if (current === null) return
              expiresAt = Date.parse(current.expires_at)
            }
            if (Date.now() - lastWrite >= options.heartbeatMs) {
              res.write(': heartbeat\n\n')
              lastWrite = Date.now()
            }
            if (notices.live && Date.now() < expiresAt) {
              events = []
              continue
            }
          }
        }
        try {
          events = await app.store.events(job.job_id, cursor, BATCH)
        } catch {
          events = []
        }
      }
    })().catch((err: unknown) => {
      request.log.warn({ err, job_id: job.job_id }, 'event stream stopped on an error')
    }).finally(() => {
      watch.close()
      open.delete(stream)
      const left = (perClient.get(client) ?? 1) - 1
      if (left === 0) perClient.delete(client)
      else perClient.set(client, left)
      res.end()
    })
    open.add(stream)
  })
}

export default eventRoutes
