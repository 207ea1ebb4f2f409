import { context, propagation, trace } from '@opentelemetry/api'
import type { Config } from '../config.js'
import { traceRedisCalls } from './redis-spans.js'
import { enableSpans } from './spans.js'

/** A running OpenTelemetry SDK: what the process stops at exit, after the last span. */
export interface Tracing {
  /** Exports the spans still buffered and stops; waits at most `timeoutMs`. */
  shutdown (timeoutMs: number): Promise<void>
}

export function tracingWanted (config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_SDK_DISABLED'>): boolean {
  return !config.OTEL_SDK_DISABLED && (config.OTEL_EXPORTER_OTLP_ENDPOINT !== '' || config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== '')
}

/**
 * Starts the OpenTelemetry Node SDK when an OTLP endpoint is set, before the app is built (so
 * the request spans' plugin finds a tracer provider); null otherwise, without loading the SDK.
 * The SDK configures itself from the standard OTEL_* variables (exporter protocol, headers,
 * sampler, batching). Only traces: the service's metrics are Prometheus's, on /metrics, and no
 * instrumentation patches modules: requests are traced by @fastify/otel, Redis calls through
 * node-redis's tracing channels, the research by the spans the core makes.
 */
export async function startTracing (config: Config): Promise<Tracing | null> {
  if (!tracingWanted(config)) return null
  const [{ NodeSDK }, { defaultResource, resourceFromAttributes }] = await Promise.all([import('@opentelemetry/sdk-node'), import('@opentelemetry/resources')])
  const sdk = new NodeSDK({
    // The service's name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES give one: what the
    // SDK detects from the environment is merged over this.
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': 'deep-research-api' })),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: []
  })
  sdk.start()
  enableSpans(true)
  const stopRedisSpans = traceRedisCalls()
  return {
    async shutdown (timeoutMs) {
      stopRedisSpans()
      enableSpans(false)
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })
      try {
        await Promise.race([sdk.shutdown(), late])
      } finally {
        clearTimeout(timer)
        // The API's globals go with the SDK: a later start (a test, an embedding app) registers anew.
        trace.disable()
        context.disable()
        propagation.disable()
      }
    }
  }
}
