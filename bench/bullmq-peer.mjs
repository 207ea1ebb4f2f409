// The benchmark's peer: what a Node engineer would build instead of this service, Fastify + BullMQ
// on the same Redis version. POST /v1/research -> queue.add (a random UUID as the job id, records
// kept 24 h), GET /v1/jobs/:id -> Job.fromId, and a Worker in the same process that does the same
// no-op work as RESEARCH_ENGINE=noop: PROGRESS_WRITES updateProgress calls, then the same report.
// GET /stats answers the completed count, for the end-to-end clock. PEER_ROLE=api runs no Worker
// and PEER_ROLE=worker serves no HTTP, as the service's ROLE does (bench/profile-e2e.mjs's parts).
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { Job, Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'

const progressWrites = Number(process.env.PROGRESS_WRITES ?? 0)
const concurrency = Number(process.env.CONCURRENCY ?? 16)
const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null }
const DAY_S = 86_400
const role = process.env.PEER_ROLE ?? 'all'

const queue = new Queue('research', { connection: new Redis(connection) })
/** The no-op work, as RESEARCH_ENGINE=noop does it. */
const noop = async (job) => {
  for (let i = 1; i <= progressWrites; i++) await job.updateProgress(Math.round((99 * i) / (progressWrites + 1)))
  return {
    title: `No-op: ${job.data.query}`,
    summary: 'The no-op engine (RESEARCH_ENGINE=noop) does no research; it measures the service.',
    markdown: `# No-op: ${job.data.query}\n`,
    sections: [],
    sources: [],
    stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 },
    usage: { llm_calls: 0, input_tokens: 0, output_tokens: 0, pages_fetched: 0, bytes_fetched: 0, search_queries: 0, duration_ms: 0, cost_usd: 0 }
  }
}
const worker = role === 'api' ? null : new Worker('research', noop, { connection: new Redis(connection), concurrency, removeOnComplete: { age: DAY_S }, removeOnFail: { age: DAY_S } })

const app = Fastify({ logger: false })
const CreateBody = {
  type: 'object',
  required: ['query'],
  additionalProperties: false,
  properties: { query: { type: 'string', minLength: 1, maxLength: 2000 }, depth: { type: 'string', enum: ['quick', 'standard', 'deep'] } }
}

app.post('/v1/research', { schema: { body: CreateBody } }, async (request, reply) => {
  const { query, depth = 'standard' } = /** @type {{ query: string, depth?: string }} */ (request.body)
  const job = await queue.add('research', { query, depth }, { jobId: randomUUID() })
  return reply.code(202).header('location', `/v1/jobs/${job.id}`).send({ job_id: job.id, status: 'pending', progress: 0, query, depth })
})

app.get('/v1/jobs/:id', async (request, reply) => {
  const { id } = /** @type {{ id: string }} */ (request.params)
  const job = await Job.fromId(queue, id)
  if (job === undefined) return reply.code(404).send({ error: 'not_found', message: `No job with id ${id}` })
  const status = job.finishedOn === undefined ? (job.processedOn === undefined ? 'pending' : 'processing') : (job.failedReason === undefined ? 'completed' : 'failed')
  return { job_id: job.id, status, progress: job.progress, query: job.data.query, depth: job.data.depth, result: job.returnvalue ?? null, error: job.failedReason ?? null }
})

app.get('/stats', async () => ({ completed: await queue.getCompletedCount() }))

if (role !== 'worker') await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGTERM', () => {
  Promise.all([app.close(), worker?.close(), queue.close()]).then(() => process.exit(0), () => process.exit(1))
})
