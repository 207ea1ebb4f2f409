import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'

/** Security headers on every response (helmet) and cross-origin access only for configured origins. */
const httpSecurityPlugin: FastifyPluginAsync<{ config: Config }> = async (app, { config }) => {
  // No upgrade-insecure-requests: local and private-network deployments serve plain HTTP.
  await app.register(helmet, { global: true, contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } })
  const origins = config.CORS_ORIGINS.split(',').map((o) => o.trim()).filter((o) => o !== '')
  if (origins.length > 0) {
    await app.register(cors, {
      origin: origins.includes('*') ? '*' : origins,
      methods: ['GET', 'POST', 'DELETE'],
      exposedHeaders: ['Location', 'Retry-After']
    })
  }
}

export default fp(httpSecurityPlugin, { name: 'http-security' })
