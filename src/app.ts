import { readFileSync } from 'node:fs'
import type { ServerOptions } from 'node:http'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions } from 'ajv'
import addFormats from 'ajv-formats'
import { type Config, trustProxyOption } from './config.js'
import authPlugin from './plugins/auth.js'
import corpusPlugin from './plugins/corpus.js'
import errorsPlugin, { clientErrors, frameworkErrors } from './plugins/errors.js'
import httpSecurityPlugin from './plugins/http-security.js'
import { TenantQuotas } from './jobs/quotas.js'
import jobsPlugin from './plugins/jobs.js'
import metricsPlugin from './plugins/metrics.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import runnerPlugin from './plugins/runner.js'
import storePlugin from './plugins/store.js'
import swaggerPlugin from './plugins/swagger.js'
import webhooksPlugin from './plugins/webhooks.js'
import type { ResearchEngine } from './research/engine.js'
import { engineFromConfig } from './research/from-config.js'
import corpusRoutes from './routes/corpus.js'
import eventRoutes from './routes/events.js'
import healthRoutes from './routes/health.js'
import jobRoutes from './routes/jobs.js'
import legacyRoutes from './routes/legacy.js'
import metricsRoutes from './routes/metrics.js'
import researchRoutes from './routes/research.js'
import statsRoutes from './routes/stats.js'
import uiRoutes from './routes/ui.js'
import { spansEnabled } from './telemetry/spans.js'

/** What an engine of your own implements and gets (see docs/steps.md). */
export { type Cached, type CacheKind, PermanentError, type Report, type ResearchEngine, type ResearchRequest, type RunContext, runStep, throughCache } from './research/engine.js'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface AppOptions {
  /** The research engine; default: the one the configuration describes (RESEARCH_ENGINE and its providers). */
  engine?: ResearchEngine
  /** Overrides of Fastify's logger options (tests pass a stream). */
  logger?: FastifyServerOptions['logger']
  /** A span for each request (default: when an OpenTelemetry SDK was started, see src/telemetry/sdk.ts). */
  tracing?: boolean
}

/**
 * Builds the whole service as a Fastify instance, ready to `listen` or `inject`.
 * The registrations below are the map of the service.
 */
export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? {
      level: config.LOG_LEVEL,
      redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie'], censor: '***' }
    },
    requestIdHeader: 'x-request-id',
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    bodyLimit: config.BODY_LIMIT_BYTES,
    ...httpTimeouts(config),
    // The errors plugin answers requests that arrive while closing with a problem document.
    return503OnClosing: false,
    frameworkErrors,
    clientErrorHandler: clientErrors
  }).withTypeProvider<TypeBoxTypeProvider>()

  useStrictBodies(app)
  endKeepAliveWhenClosing(app)
  // JSON only: anything else is a 415, not a string that fails validation.
  app.removeContentTypeParser(['text/plain'])

  // First: it sees every route and hook registered after it. Loaded only then: with tracing
  // off, not even its modules cost anything.
  if (options.tracing ?? spansEnabled()) await app.register((await import('./plugins/tracing.js')).default)
  await app.register(errorsPlugin)
  await app.register(httpSecurityPlugin, { config })
  await app.register(authPlugin, { config })
  await app.register(metricsPlugin)
  // ROLE=worker serves only what its platform probes and scrapes.
  const servesApi = config.ROLE !== 'worker'
  if (servesApi) await app.register(swaggerPlugin, { version: VERSION })
  // One reading of the tenants' quotas: the store holds the running limits, the job service the queued ones.
  const quotas = new TenantQuotas(config.TENANT_MAX_QUEUED, config.TENANT_MAX_RUNNING, config.TENANT_QUOTAS)
  await app.register(storePlugin, { config, runningLimits: quotas.runningLimits() })
  await app.register(rateLimitPlugin, { config })
  await app.register(runnerPlugin, {
    config,
    engine: options.engine ?? engineFromConfig(config, app.log.child({ component: 'reader' }))
  })

  await app.register(webhooksPlugin, { config })
  await app.register(jobsPlugin, { quotas })

  if (servesApi) {
    await app.register(researchRoutes)
    await app.register(jobRoutes)
    await app.register(eventRoutes, {
      heartbeatMs: config.SSE_HEARTBEAT_MS,
      pollMs: config.SSE_POLL_MS,
      maxStreams: config.SSE_MAX_STREAMS,
      maxStreamsPerClient: config.SSE_MAX_STREAMS_PER_CLIENT,
      ttlSeconds: config.JOB_TTL_SECONDS
    })
    await app.register(corpusPlugin, { config })
    await app.register(corpusRoutes)
  }
  await app.register(healthRoutes, { version: VERSION, role: config.ROLE, details: config.HEALTH_DETAILS })
  await app.register(metricsRoutes)
  if (servesApi) {
    await app.register(statsRoutes)
    await app.register(uiRoutes)
    await app.register(legacyRoutes, { ttlSeconds: config.JOB_TTL_SECONDS })
  }
  return app
}

/**
 * How long a request may take to arrive, and a connection may stay silent (Fastify's defaults
 * bound neither). Node looks for late requests on an interval, 30 s unless told: a quarter of
 * the timeout here (5 s at most), so a request is cut at most that late.
 */
function httpTimeouts (config: Config): Pick<FastifyServerOptions, 'requestTimeout' | 'connectionTimeout' | 'keepAliveTimeout'> & { http: ServerOptions } {
  return {
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    connectionTimeout: config.HTTP_CONNECTION_TIMEOUT_MS,
    // Fastify's default, kept on purpose: longer than the 60 s keep-alive of Railway's proxy, so
    // the proxy, not this server, ends an idle connection (no request sent on one being closed).
    keepAliveTimeout: 72_000,
    http: {
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      // Node's default, but never above the request timeout: with a longer one, Node's check finds no late request at all.
      headersTimeout: Math.min(60_000, config.HTTP_REQUEST_TIMEOUT_MS),
      connectionsCheckingInterval: Math.min(5000, Math.max(100, Math.floor(config.HTTP_REQUEST_TIMEOUT_MS / 4)))
    }
  }
}

/**
 * A response still in flight when the close begins leaves its keep-alive connection idle after
 * it, and the server's close would then wait for it until keepAliveTimeout (72 s): while closing,
 * idle connections are closed as they appear.
 */
function endKeepAliveWhenClosing (app: FastifyInstance): void {
  let sweeper: NodeJS.Timeout | undefined
  app.addHook('preClose', async () => {
    sweeper = setInterval(() => app.server.closeIdleConnections(), 50)
    sweeper.unref()
  })
  app.addHook('onClose', async () => clearInterval(sweeper))
}

/**
 * Bodies are validated without type coercion (`{"query": 123}` is an error, not "123") and
 * without dropping unknown fields (they are an error); query strings and params are coerced.
 */
function useStrictBodies (app: FastifyInstance): void {
  const shared: AjvOptions = { allErrors: false, useDefaults: true, removeAdditional: false, strict: false }
  const forBodies = addFormats.default(new Ajv({ ...shared, coerceTypes: false }))
  const forQueries = addFormats.default(new Ajv({ ...shared, coerceTypes: 'array' }))
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? forBodies : forQueries).compile(schema))
}
