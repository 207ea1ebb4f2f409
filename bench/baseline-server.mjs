// The benchmark's baseline: a bare Fastify server answering GET /record with a fixed JSON body
// (a real job record, passed in by the benchmark), so the service is compared with the least a
// Fastify server can do for the same response.
import Fastify from 'fastify'

const body = process.env.BASELINE_BODY ?? '{}'
const app = Fastify({ logger: false })
app.get('/record', async (_request, reply) => reply.type('application/json; charset=utf-8').send(body))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0)) })
