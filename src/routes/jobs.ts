import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { JobRecord, type StoredJob, isFinal, toPublic } from '../schemas/job.js'
import { GetJobQuery, JobIdParams, ListJobsQuery } from '../schemas/requests.js'
import { JobList, Problem, described, problems, withHeaders } from '../schemas/responses.js'

/** Longest long poll, in seconds. */
const MAX_WAIT_S = 60

const GetJobHeaders = Type.Object({
  'if-none-match': Type.Optional(Type.String({ description: 'The ETag of the record the client has: 304 while it is current' })),
  prefer: Type.Optional(Type.String({ description: 'RFC 7240 `wait=N` (N <= 60): like `?wait=N`; the answer says `Preference-Applied`' }))
})

/** The ETag of a record: its version, which every write bumps. */
function etagOf (job: StoredJob): string {
  return `"${job.version}"`
}

/** Whether If-None-Match names this ETag (weak tags and lists included, `*` matches any). */
function matches (ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false
  return ifNoneMatch.split(',').some((tag) => { const bare = tag.trim().replace(/^W\//, ''); return bare === etag || bare === '*' })
}

/** When to ask again about an unfinished job, in seconds: its retry time, else by its stage. */
function retryAfterS (job: StoredJob): number {
  if (job.next_attempt_at !== null) return Math.max(1, Math.ceil((Date.parse(job.next_attempt_at) - Date.now()) / 1000))
  return job.status === 'pending' ? 2 : 1
}

/** The wait asked for, from ?wait=N or Prefer: wait=N, capped; and whether Prefer asked. */
function waitAsked (query: number | undefined, preferHeader: string | undefined): { seconds: number, preferred: boolean } {
  if (query !== undefined) return { seconds: query, preferred: false }
  const prefer = /(?:^|[;,\s])wait=(\d+)/i.exec(preferHeader ?? '')
  return prefer === null ? { seconds: 0, preferred: false } : { seconds: Math.min(MAX_WAIT_S, Number(prefer[1])), preferred: true }
}

const ConflictProblem = Type.Object({ ...Problem.properties, job: JobRecord }, { title: 'ConflictProblem', description: 'The job is already finished; `job` is its record.' })

const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  /** Response bodies by record object: records are immutable, so a body stays right for its record. */
  const serialized = new WeakMap<object, string>()

  const closing = new AbortController()
  app.addHook('preClose', async () => closing.abort())

  app.get('/v1/jobs/:job_id', {
    config: { budget: 'poll' },
    schema: {
      operationId: 'getJob',
      tags: ['jobs'],
      summary: 'Get a job: status, progress, current step, and the report once completed',
      description: 'Answers with an `ETag` (the record\'s version); send it back in `If-None-Match` to get **304** while nothing changed. ' +
        'Long poll with `?wait=N` or `Prefer: wait=N` (N <= 60 s): the answer comes as soon as the job changes (from the version in `If-None-Match`, else from now), or after N seconds. ' +
        'Unfinished jobs carry `Retry-After`: when asking again is worth it.',
      params: JobIdParams,
      querystring: GetJobQuery,
      headers: GetJobHeaders,
      response: {
        200: withHeaders('The job', JobRecord, {
          etag: { type: 'string', description: 'The record\'s version: send it back in If-None-Match' },
          'retry-after': { type: 'integer', description: 'Unfinished jobs: seconds before asking again is worth it' },
          'preference-applied': { type: 'string', description: '`wait=N`, when the wait came from Prefer' }
        }),
        304: { description: 'Not modified: the record in If-None-Match is current', headers: { etag: { type: 'string', description: 'The same ETag' } }, type: 'null' },
        ...problems(400, 401, 404, 414, 429, 503)
      }
    }
  }, async (request, reply) => {
    const { job_id: id } = request.params
    const tenant = request.principal.tenant
    const ifNoneMatch = request.headers['if-none-match']
    const wait = waitAsked(request.query.wait, request.headers.prefer)
    let job: StoredJob
    if (wait.seconds === 0) {
      job = await app.jobs.get(id, tenant)
    } else {
      const gone = new AbortController()
      request.raw.on('close', () => gone.abort())
      // The client holds the job as it is unless its ETag is behind: then it is answered at once.
      const current = (held: StoredJob): boolean => ifNoneMatch === undefined || matches(ifNoneMatch, etagOf(held))
      job = await app.jobs.whenChanged(id, tenant, wait.seconds * 1000, current, AbortSignal.any([gone.signal, closing.signal]))
      if (wait.preferred) void reply.header('preference-applied', `wait=${wait.seconds}`)
    }
    const etag = etagOf(job)
    void reply.header('etag', etag)
    if (!isFinal(job.status)) void reply.header('retry-after', String(retryAfterS(job)))
    if (matches(ifNoneMatch, etag)) return await reply.code(304).send(null)
    // The same record object comes back while a job does not change: serialize it once (by this
    // route's schema for the type; a string payload is then sent as it is).
    let body = serialized.get(job)
    if (body === undefined) {
      body = reply.serializeInput(toPublic(job), '200', 'application/json') as string
      serialized.set(job, body)
    }
    return await reply.type('application/json; charset=utf-8').send(body as unknown as ReturnType<typeof toPublic>)
  })

  app.get('/v1/jobs', {
    config: { budget: 'poll' },
    schema: {
      operationId: 'listJobs',
      tags: ['jobs'],
      summary: 'List jobs, newest first',
      description: 'Records without their reports. Page with `cursor` = the previous page\'s `next_cursor`.',
      querystring: ListJobsQuery,
      response: { 200: described('One page of jobs, newest first', JobList), ...problems(400, 401, 429, 503) }
    }
  }, async (request) => {
    const { status, limit = 20, cursor } = request.query
    const page = await app.jobs.list({ status, limit, cursor, tenant: request.principal.tenant })
    return {
      jobs: page.jobs.map((job) => {
        const { result: _result, ...summary } = toPublic(job)
        return summary
      }),
      next_cursor: page.nextCursor
    }
  })

  app.post('/v1/jobs/:job_id/cancel', {
    config: { budget: 'poll' },
    schema: {
      operationId: 'cancelJob',
      tags: ['jobs'],
      summary: 'Cancel a job; its run stops',
      description: 'Marks the job cancelled (a compare-and-set: it cannot undo a completion) and stops its run on whichever replica holds it. A job already final answers 409 with its record.',
      params: JobIdParams,
      response: {
        200: JobRecord,
        ...problems(400, 401, 404, 414, 429, 503),
        409: { description: '`already_finished`: the job is final; `job` is its record', content: { 'application/problem+json': { schema: ConflictProblem } } }
      }
    }
  }, async (request) => toPublic(await app.jobs.cancel(request.params.job_id, request.principal.tenant)))

  app.delete('/v1/jobs/:job_id', {
    config: { budget: 'poll' },
    schema: {
      operationId: 'deleteJob',
      tags: ['jobs'],
      summary: 'Delete a job (cancelling it first if it is still running)',
      description: 'Removes the job, its events and its queue entry; later reads answer 404.',
      params: JobIdParams,
      response: { 204: Type.Null({ description: 'Deleted' }), ...problems(400, 401, 404, 414, 429, 503) }
    }
  }, async (request, reply) => {
    await app.jobs.delete(request.params.job_id, request.principal.tenant)
    return reply.code(204).send(null)
  })
}

export default jobRoutes
