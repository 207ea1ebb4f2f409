import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { Config } from '../config.js'
import { AuthFailureThrottle } from '../auth/failure-throttle.js'
import { KeyRing, OPEN_ACCESS, type Principal, keyFromHeaders } from '../auth/keys.js'
import { problem } from '../errors.js'
import { sendProblem } from './errors.js'

/** Who may call a route: anyone, any valid key (the default), or an admin key. */
export type Access = 'public' | 'tenant' | 'admin'

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal
  }
  interface FastifyContextConfig {
    access?: Access
  }
  interface FastifyInstance {
    authOpen: boolean
  }
}

/**
 * API keys: every route needs a valid key unless it is public (health, docs); admin routes need
 * an admin key. With no keys configured the API is open, and says so at start and in /health.
 */
const authPlugin: FastifyPluginAsync<{ config: Config }> = async (app, { config }) => {
  const keys = new KeyRing(config.API_KEYS, config.ADMIN_KEYS)
  app.decorate('authOpen', keys.open)
  app.decorateRequest('principal', null as unknown as Principal)
  if (keys.open) app.log.warn('API_KEYS and ADMIN_KEYS are not set: the API is open to anyone who can reach it')

  if (keys.open) {
    app.addHook('onRequest', (request, _reply, done) => {
      request.principal = OPEN_ACCESS
      done()
    })
    return
  }
  // Counted in the store (registered after this plugin, used at request time), so replicas share it.
  const throttle = config.RATE_LIMIT_ENABLED
    ? new AuthFailureThrottle({ counter: () => app.store.counters, max: config.RATE_LIMIT_AUTH_FAILURES_MAX, windowMs: config.RATE_LIMIT_WINDOW_MS })
    : null
  const tooMany = (reply: FastifyReply, ms: number): void => {
    const seconds = Math.max(1, Math.ceil(ms / 1000))
    sendProblem(reply, problem('too_many_auth_failures', `Too many wrong API keys from this address; retry in ${seconds} s`, { retryAfter: seconds }))
  }
  app.addHook('onRequest', (request, reply, done) => {
    // routeOptions builds a new object on every read: read it once.
    const route = request.routeOptions
    const access: Access = request.url.startsWith('/docs') || request.url.startsWith('/ui/') || route.url === undefined
      ? 'public'
      : route.config.access ?? 'tenant'
    const key = keyFromHeaders(request.headers.authorization, request.headers['x-api-key'])
    const principal = key === null ? null : keys.identify(key)
    if (access === 'public') {
      request.principal = principal ?? { tenant: null, admin: false }
      done()
      return
    }
    const blockedMs = key === null ? 0 : throttle?.blockedFor(request.ip) ?? 0
    if (blockedMs > 0) {
      tooMany(reply, blockedMs)
      return
    }
    if (principal === null) {
      const unauthorized = (): void => {
        sendProblem(reply.header('www-authenticate', 'Bearer'), problem('unauthorized',
          key === null ? 'Send an API key: Authorization: Bearer <key> (or X-API-Key)' : 'The API key is not valid'))
      }
      if (key === null || throttle === null) {
        unauthorized()
        return
      }
      throttle.failed(request.ip).then((ms) => { if (ms > 0) tooMany(reply, ms); else unauthorized() }, unauthorized)
      return
    }
    if (access === 'admin' && !principal.admin) {
      sendProblem(reply, problem('forbidden', 'This route needs an admin key'))
      return
    }
    request.principal = principal
    done()
  })
}

export default fp(authPlugin, { name: 'auth' })
