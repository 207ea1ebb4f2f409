import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyPluginAsync } from 'fastify'

export const API_TAGS = [
  { name: 'research', description: 'Start research jobs' },
  { name: 'jobs', description: 'Follow, list, cancel and delete jobs' },
  { name: 'sources', description: 'Open the corpus documents reports cite' },
  { name: 'legacy', description: 'Routes of the original /api/v4 service, kept for its clients' },
  { name: 'ops', description: 'Health, queue statistics and operations' }
]

/** The OpenAPI document is generated from the route schemas; Swagger UI serves it at /docs. */
const swaggerPlugin: FastifyPluginAsync<{ version: string }> = async (app, { version }) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Deep Research Job API',
        description: 'Submit a research question, poll the job, read a cited report. Jobs live 24 hours after their last change.\n\n' +
          'Errors are RFC 9457 problem documents (`application/problem+json`: `type`, `title`, `status`, `detail`, `code`, with `error` and `message` beside them), ' +
          'the framework\'s own included: an unknown route is 404, a method a path does not allow is 405 with `Allow` (and `OPTIONS` answers with `Allow`), ' +
          'a malformed URL 400, an over-long id 414, headers over 16 KB 431; each error answer lists the codes of its status. The `/api/v4` routes keep the original FastAPI shapes (`{ "detail": ... }`).',
        version,
        license: { name: 'MIT', identifier: 'MIT' },
        contact: { name: 'The team that runs this deployment' }
      },
      servers: [{ url: '/', description: 'This server' }],
      tags: API_TAGS,
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key from API_KEYS or ADMIN_KEYS' },
          apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' }
        }
      },
      security: [{ bearerAuth: [] }, { apiKeyHeader: [] }]
    }
  })
  // staticCSP: the UI's pages get a content security policy that fits them (helmet's is for the API).
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    transformStaticCSP: (header) => header.replace(/\s*upgrade-insecure-requests;?/, '')
  })
}

export default fp(swaggerPlugin, { name: 'swagger' })
