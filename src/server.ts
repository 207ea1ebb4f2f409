import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, environmentFor, loadConfig, redactUrl, settingMistakes } from './config.js'
import { startTracing } from './telemetry/sdk.js'

let config
try {
  config = loadConfig(environmentFor(process.argv.slice(2), process.env))
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`${err.message}\n`)
  process.exit(1)
}

const tracing = await startTracing(config)
const app = await buildApp(config)
if (tracing !== null) app.log.info({ endpoint: redactUrl(config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || config.OTEL_EXPORTER_OTLP_ENDPOINT) }, 'exporting traces over OTLP')
// A misspelt setting leaves its default in place (REDIS_URI: no Redis): say so where operators look.
for (const mistake of settingMistakes(process.env)) app.log.warn({ setting: mistake.split(' ')[0] }, mistake)

// Railway stops a container ~3 s after SIGTERM; jobs are handed back within SHUTDOWN_TIMEOUT_MS
// and the rest of the close gets what is left, then the process exits regardless.
const graceMs = config.SHUTDOWN_TIMEOUT_MS + (config.REDIS_URL === '' ? config.MEMORY_SHUTDOWN_GRACE_MS : 0)
let closing = false
closeWithGrace({ delay: graceMs + 800, logger: app.log }, async ({ signal, err }) => {
  closing = true
  if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info({ signal }, 'shutting down')
  try {
    await app.close()
    // One line for what became of the jobs this process held: finished, handed back, lost.
    app.log.info(app.stopSummary, 'stopped')
  } finally {
    // Then the spans of the last requests and jobs, exported within what is left of the grace.
    await tracing?.shutdown(500)
  }
})

// The engine reads its tables (the corpus's index, the English word ranks) before the process
// takes work: read on the first job, they held every other request and job up for a fifth of a
// second or more.
// It is a head start only: what it could not read, the first job reads again and reports.
if (config.ROLE !== 'api' && app.engine.prepare !== undefined) {
  const started = performance.now()
  try {
    await app.engine.prepare()
    app.log.info({ ms: Math.round(performance.now() - started) }, 'research engine prepared')
  } catch (err) {
    app.log.warn({ err }, 'the research engine could not read its tables; its first job reads them again')
  }
}

// A signal that came while the engine read its tables has closed the app: nothing to listen for.
if (!closing) {
  try {
    await app.listen({ port: config.PORT, host: config.HOST })
  } catch (err) {
    // `::` fails on hosts without IPv6; IPv4 everywhere is the next best thing.
    if (config.HOST === '::' && (err as NodeJS.ErrnoException).code === 'EAFNOSUPPORT') {
      app.log.warn('IPv6 is not available; listening on 0.0.0.0')
      await app.listen({ port: config.PORT, host: '0.0.0.0' })
    } else {
      app.log.fatal({ err }, 'could not listen')
      process.exit(1)
    }
  }
}
