import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'

const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url))

/**
 * The jobs page at `/` and its files under `/ui/`: open to anyone (the page asks for an API key
 * and sends it with the API calls it makes, which are checked as usual).
 */
const uiRoutes: FastifyPluginAsync = async (app) => {
  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/ui/', index: false, schemaHide: true, wildcard: false })
  app.get('/', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => await reply.sendFile('index.html'))
  // Browsers ask for /favicon.ico whatever the page links to; the page's icon answers it.
  app.get('/favicon.ico', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) =>
    await reply.type('image/svg+xml').header('cache-control', 'public, max-age=86400').sendFile('favicon.svg'))
}

export default uiRoutes
