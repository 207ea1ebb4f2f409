import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp, type AppOptions } from '../../src/app.js'
import { type Config, defaultConfig } from '../../src/config.js'

export interface TestContext {
  teardown (fn: () => unknown): void
}

/**
 * `npm run test:cluster` runs the API suite again on a Redis Cluster of its own (3 masters, 3
 * replicas): an app given no Redis gets that cluster with REDIS_SHARDS=6 and a key prefix of its
 * own, so it is as alone as it would be on a memory store. Apps given a REDIS_URL keep it.
 */
const CLUSTER_URL = process.env.TEST_REDIS_CLUSTER_URL
let clusterApps = 0

function storeFor (overrides: Partial<Config>): Partial<Config> {
  if (CLUSTER_URL === undefined || overrides.REDIS_URL !== undefined) return { REDIS_URL: '' }
  clusterApps += 1
  return { REDIS_URL: CLUSTER_URL, REDIS_CLUSTER: true, REDIS_SHARDS: 6, REDIS_KEY_PREFIX: `t${process.pid}-${clusterApps}:{0}:` }
}

/** True when `npm run test:cluster` runs this file (apps given no Redis are on the Cluster). */
export const ON_CLUSTER = CLUSTER_URL !== undefined

/** Builds the app with test defaults (silent logs, memory store unless REDIS_URL is given) and closes it after the test. */
export async function startApp (t: TestContext, overrides: Partial<Config> = {}, options: AppOptions = {}): Promise<FastifyInstance> {
  const store = storeFor(overrides)
  // Rate limits are off unless a test turns them on: tests create many jobs from one address.
  // Closing apps with jobs running is most tests' teardown: it should not wait for them to finish.
  const app = await buildApp(defaultConfig({ LOG_LEVEL: 'silent', RATE_LIMIT_ENABLED: false, MEMORY_SHUTDOWN_GRACE_MS: 0, ...store, ...overrides }), options)
  t.teardown(() => app.close())
  await app.ready()
  if (store.REDIS_URL !== '') await onRedis(app)
  return app
}

/**
 * Waits until the app is ready as a client sees it: on Redis, and past the first epoch check
 * (until then an unknown id answers 503 "not visible yet", as Redis might have lost the job
 * moments ago). Apps given a REDIS_URL of their own are not waited for by startApp.
 */
export async function onRedis (app: FastifyInstance): Promise<void> {
  await waitFor('the app on Redis', async () => app.store.mode === 'redis' &&
    (await app.store.lookup('00000000-0000-4000-8000-000000000000')).absenceConfirmed)
}

export function json<T = any> (res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T
}

export async function createJob (app: FastifyInstance, body: object = { query: 'How does Redis AOF persistence protect jobs?' }): Promise<any> {
  const res = await app.inject({ method: 'POST', url: '/v1/research', payload: body })
  if (res.statusCode !== 202) throw new Error(`create answered ${res.statusCode}: ${res.body}`)
  return json(res)
}

/** Polls GET /v1/jobs/:id until `until` holds, as a client would; fails after `timeoutMs`. */
export async function pollJob (app: FastifyInstance, id: string, until: (job: any) => boolean = (job) => ['completed', 'failed', 'cancelled'].includes(job.status), timeoutMs = 10_000, headers: Record<string, string> = {}): Promise<any> {
  const deadline = Date.now() + timeoutMs
  let last: any
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers })
    if (res.statusCode === 200) {
      last = json(res)
      if (until(last)) return last
    }
    await sleep(20)
  }
  throw new Error(`job ${id} did not reach the expected state in ${timeoutMs} ms; last seen: ${JSON.stringify(last)?.slice(0, 300)}`)
}

export async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await sleep(10)
  }
}

/** Every job id GET /v1/jobs lists, following next_cursor page by page. */
export async function listAllJobIds (app: FastifyInstance, pageSize: number): Promise<string[]> {
  const ids: string[] = []
  let cursor: string | null = null
  do {
    const page: { jobs: Array<{ job_id: string }>, next_cursor: string | null } = json(await app.inject({ method: 'GET', url: `/v1/jobs?limit=${pageSize}${cursor === null ? '' : `&cursor=${cursor}`}` }))
    ids.push(...page.jobs.map((job) => job.job_id))
    cursor = page.next_cursor
  } while (cursor !== null)
  return ids
}

/**
 * The environment of a server spawned from source (`node --import tsx src/server.ts`): tap's
 * coverage hook follows spawned processes, but tsx maps src/*.ts with source maps of its own, and
 * mixing them with tap's in one coverage map drops files from the report. Such a server records none.
 * It runs with Maglev off, as the tests do (test/helpers/no-maglev.mjs: an exit can deadlock).
 */
export const SPAWNED_SERVER_ENV = { _TAPJS_PROCESSINFO_COV_EXCLUDE_: '/./', NODE_OPTIONS: `--import=${new URL('no-maglev.mjs', import.meta.url).href}` }
