import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type } from 'typebox'
import { JobIdParams } from '../schemas/requests.js'
import { ErrorBody } from '../schemas/responses.js'
import { EVENT_ID, FINAL_EVENT_TYPES, type JobEvent, eventData, eventType } from '../store/job-events.js'

const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: EVENT_ID.source, description: 'The `id:` of the last event received: the stream resumes after it (browsers send it when they reconnect).' }))
})

const EventsQuery = Type.Object({
  last_event_id: Type.Optional(Type.String({ pattern: EVENT_ID.source, description: 'Same as the Last-Event-ID header, for clients that cannot set headers.' }))
}, { additionalProperties: false })

const BATCH = 100

export interface EventStreamOptions { heartbeatMs: number, pollMs: number }

/**
 * Live progress as Server-Sent Events. Each change of a job is an event kept with the job (in
 * Redis, shared by replicas), so a client reconnecting with Last-Event-ID to any replica gets
 * exactly the events it missed. The stream ends after the final event.
 */
const eventRoutes: FastifyPluginAsyncTypebox<EventStreamOptions> = async (app, options) => {
  const open = new Set<Promise<void>>()
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
    await Promise.allSettled([...open])
  })

  app.get('/v1/jobs/:job_id/events', {
    config: { budget: 'poll' },
    schema: {
      tags: ['jobs'],
      summary: 'Watch a job live (Server-Sent Events)',
      description: 'A `text/event-stream` of events `status`, `progress`, then one of `completed`, `failed`, `cancelled`, after which the server ends the stream. ' +
        'Each event has an `id:` and JSON `data`: `{ job_id, status, progress, current_step, attempts, error }`. Reconnect with `Last-Event-ID` to resume without gaps or repeats, on any replica. ' +
        'Comment lines (`: heartbeat`) keep idle connections open through proxies.',
      params: JobIdParams,
      headers: EventsHeaders,
      querystring: EventsQuery,
      response: {
        200: { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        400: ErrorBody,
        404: ErrorBody,
        503: ErrorBody
      }
    }
  }, async (request, reply) => {
    const job = await app.jobs.get(request.params.job_id, request.principal.tenant)
    let cursor = request.headers['last-event-id'] ?? request.query.last_event_id ?? null
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
    let gone = false
    request.raw.on('close', () => { gone = true })
    const send = (event: JobEvent): void => { res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${event.data}\n\n`) }

    const stream = (async () => {
      let lastWrite = Date.now()
      let first = true
      while (!gone && !closing) {
        let events: JobEvent[]
        try {
          events = await app.store.events(job.job_id, cursor, BATCH)
        } catch {
          events = []
        }
        if (first && cursor === null && events.length === 0) {
          // A job whose history is not kept (written before events existed): its state as one event.
          events = [{ id: '0-1', type: eventType(null, job.status), data: eventData(job) }]
        }
        first = false
        for (const event of events) {
          send(event)
          cursor = event.id
          lastWrite = Date.now()
          if (FINAL_EVENT_TYPES.has(event.type)) return
        }
        if (events.length === BATCH) continue
        if (Date.now() - lastWrite >= options.heartbeatMs) {
          res.write(': heartbeat\n\n')
          lastWrite = Date.now()
        }
        await sleep(options.pollMs)
      }
    })().catch((err: unknown) => {
      request.log.warn({ err, job_id: job.job_id }, 'event stream stopped on an error')
    }).finally(() => {
      open.delete(stream)
      res.end()
    })
    open.add(stream)
  })
}

export default eventRoutes
