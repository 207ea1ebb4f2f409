import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import { ServiceError } from '../errors.js'

/** The budgets routes draw from: creating jobs, and reading or changing them. */
export type RateBudget = 'create' | 'poll'

declare module 'fastify' {
  interface FastifyContextConfig {
    budget?: RateBudget
  }
}

/**
 * Per-client rate limits (@fastify/rate-limit): one budget for creating jobs and one for
 * polling, counted in Redis so replicas share them, and in this process while Redis is down.
 * A client is its API key's tenant, or its IP when the API is open.
 */
const rateLimitPlugin: FastifyPluginAsync<{ config: Config }> = async (app, { config }) => {
  if (!config.RATE_LIMIT_ENABLED) {
    app.log.warn('RATE_LIMIT_ENABLED=false: no rate limits')
    return
  }
  const store = app.store.counters
  class SharedWindowStore {
    readonly #prefix: string
    constructor (prefix = '') { this.#prefix = prefix }
    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
      store.countInWindow(`${this.#prefix}${key}`, timeWindow).then(
        ({ count, ttlMs }) => callback(null, { current: count, ttl: ttlMs }),
        (err: Error) => callback(err)
      )
    }

    /** @fastify/rate-limit passes the route's merged settings, the route itself under `routeInfo`. */
    child (settings: { routeInfo?: { config?: { budget?: RateBudget } } }): SharedWindowStore {
      return new SharedWindowStore(`${settings.routeInfo?.config?.budget ?? 'other'}:`)
    }
  }

  // Before the plugin's own onRoute hook, which reads `config.rateLimit`.
  app.addHook('onRoute', (route) => {
    const budget = route.config?.budget
    if (budget === undefined) return
    route.config = {
      ...route.config,
      rateLimit: { max: budget === 'create' ? config.RATE_LIMIT_CREATE_MAX : config.RATE_LIMIT_POLL_MAX, timeWindow: config.RATE_LIMIT_WINDOW_MS }
    } as typeof route.config
  })
  await app.register(rateLimit, {
    global: false,
    store: SharedWindowStore as never,
    keyGenerator: (request) => request.principal?.tenant != null ? `key:${request.principal.tenant}` : `ip:${request.ip}`,
    errorResponseBuilder: (request, context) => new ServiceError('rate_limited',
      `Rate limit reached: ${context.max} ${request.routeOptions.config.budget === 'create' ? 'creates' : 'reads'} per ${duration(config.RATE_LIMIT_WINDOW_MS)}; retry in ${Math.ceil(context.ttl / 1000)} s`) as never
  })
}

/** 60000 -> "60 s", 1500 -> "1.5 s". */
function duration (ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['store', 'auth'] })
