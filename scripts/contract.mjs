// npm run contract: Portman turns the committed OpenAPI document into contract tests (status,
// content type, JSON body, response schema for every operation) and Newman runs them against
// the built service on a Redis of its own. Starts everything it needs on free loopback ports and
// cleans up after itself, also when it fails.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RedisServer } from '../test/helpers/redis-server.ts'
import { Processes, cleanUpOnSignals, freePort, until } from './lib/processes.mjs'

const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'contract-'))
const processes = new Processes(root)
let redis = null

async function cleanup () {
  await processes.killAll()
  await redis?.stop()
  rmSync(work, { recursive: true, force: true })
}
cleanUpOnSignals(cleanup)

let status = 1
try {
  redis = await RedisServer.start()
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  // Steps slow enough that the cancel in the run finds the job still running.
  processes.start('node', ['dist/server.js'], {
    PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redis.url, LOG_LEVEL: 'warn', RATE_LIMIT_ENABLED: 'false', RESEARCH_STEP_DELAY_MS: '1500'
  }, join(work, 'service.log'))
  await until('the service on Redis', async () => (await (await fetch(`${base}/health`)).json()).store === 'redis', 30_000)
  const run = spawnSync(process.execPath, [
    join(root, 'node_modules/@apideck/portman/bin/portman'),
    '--local', join(root, 'openapi/openapi.json'), '--baseUrl', base, '--portmanConfigFile', join(root, 'portman/portman-config.json'),
    '--output', join(work, 'collection.json'), '--runNewman'
    // Portman writes its working files under ./tmp: in the temp folder, not the project.
  ], { cwd: work, stdio: 'inherit' })
  status = run.status ?? 1
  console.log(status === 0 ? 'contract: every operation passed its contract tests' : `contract: FAILED (service log: ${join(work, 'service.log')})`)
} catch (err) {
  console.error(`contract: FAILED: ${err.stack ?? err}`)
} finally {
  if (status === 0) await cleanup()
  else await processes.killAll()
}
process.exit(status)
