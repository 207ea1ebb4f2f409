import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { createRailwayContext, project } from 'railway/iac'
import program from '../../.railway/railway.js'
import { ConfigSchema, loadConfig } from '../../src/config.js'
import { startApp } from '../helpers/app.js'
import { parseDockerfile } from '../helpers/dockerfile.js'
import { RedisServer } from '../helpers/redis-server.js'

const root = new URL('../../', import.meta.url)
const railway = JSON.parse(readFileSync(new URL('railway.json', root), 'utf8'))
const stages = parseDockerfile(new URL('Dockerfile', root).pathname)

async function plan (environment: string): Promise<any> {
  return await program(createRailwayContext({ environment, environmentName: environment, projectName: 'deep-research' }), project)
}
const find = (definition: any, address: string): any => definition.resources.find((r: any) => r.address === address)

t.test('railway.json (legacy config as code) builds from the Dockerfile and health-checks /health', async (t) => {
  t.equal(railway.$schema, 'https://railway.com/railway.schema.json')
  t.same(railway.build, { builder: 'DOCKERFILE', dockerfilePath: 'Dockerfile' })
  t.equal(railway.deploy.healthcheckPath, '/health')
  t.type(railway.deploy.healthcheckTimeout, 'number')
  t.equal(railway.deploy.restartPolicyType, 'ON_FAILURE')
  t.type(railway.deploy.drainingSeconds, 'number', 'drainingSeconds is a number, not a string')
  t.ok(railway.deploy.drainingSeconds >= 3, 'long enough for the 2 s hand-back of running jobs')
  t.notOk('startCommand' in railway.deploy, 'no start command: the Dockerfile\'s exec-form CMD runs node as PID 1')
})

t.test('.railway/railway.ts type-checks against the railway package\'s own types', async (t) => {
  const tsc = spawnSync('npx', ['tsc', '-p', '.railway/tsconfig.json'], { cwd: root, encoding: 'utf8' })
  t.equal(tsc.status, 0, tsc.stdout + tsc.stderr)
})

const SERVICES = ['service.api', 'service.worker']

t.test('the production plan: an api and a worker service from the Dockerfile, health-checked, 2 replicas each, Redis wired in, secrets preserved', async (t) => {
  const production = await plan('production')
  t.equal(production.name, 'deep-research')
  const redis = find(production, 'database.redis')
  t.match(redis, { type: 'database', engine: 'redis', output: 'REDIS_URL' })
  t.same(production.resources.map((r: any) => r.address).sort(), ['database.redis', ...SERVICES].sort(), 'Redis, the api and the worker: nothing else')
  for (const address of SERVICES) {
    const svc = find(production, address)
    t.same(svc.build, { builder: 'DOCKERFILE', dockerfilePath: 'Dockerfile' }, `${address} builds the Dockerfile`)
    t.match(svc.deploy, { healthcheckPath: '/health', healthcheckTimeout: 60, numReplicas: 2, restartPolicyType: 'ON_FAILURE', drainingSeconds: 5 })
    t.notOk('startCommand' in svc.deploy, `${address}: no start command, the Dockerfile's exec-form CMD runs node as PID 1`)
    t.same(svc.variables.REDIS_URL, { type: 'reference', resource: 'database.redis', output: 'REDIS_URL' }, `${address}: REDIS_URL comes from the Redis resource`)
    t.same(svc.variables.HOST, { type: 'literal', value: '::' }, 'binds IPv6 for the private network')
    t.same(svc.variables.WEBHOOK_SECRET, { type: 'preserve' }, 'secrets keep the value set in Railway')
    t.same(svc.variables.ADMIN_KEYS, { type: 'preserve' })
    t.notOk('PORT' in svc.variables, 'PORT is Railway\'s to set')
    t.equal(svc.source, undefined, 'no source unless DEPLOY_REPO names one: `railway up` uploads the folder')
  }
  const api = find(production, 'service.api')
  t.same(api.variables.ROLE, { type: 'literal', value: 'api' })
  t.same(api.variables.API_KEYS, { type: 'preserve' })
  t.same(api.variables.TRUST_PROXY, { type: 'literal', value: '1' }, 'the edge proxy is one hop')
  const worker = find(production, 'service.worker')
  t.same(worker.variables.ROLE, { type: 'literal', value: 'worker' })
})

t.test('DEPLOY_REPO at plan time makes both services deploy from that GitHub repository', async (t) => {
  process.env.DEPLOY_REPO = 'acme/deep-research-api'
  t.teardown(() => { delete process.env.DEPLOY_REPO })
  const production = await plan('production')
  for (const address of SERVICES) t.match(find(production, address).source, { type: 'github', repo: 'acme/deep-research-api', branch: 'main' }, address)
})

t.test('a preview environment: one replica each, shorter TTL, debug logs, the same wiring', async (t) => {
  const preview = await plan('pr-42')
  for (const address of SERVICES) {
    const svc = find(preview, address)
    t.equal(svc.deploy.numReplicas, 1)
    t.equal(svc.variables.JOB_TTL_SECONDS.value, '3600')
    t.equal(svc.variables.LOG_LEVEL.value, 'debug')
    t.same(svc.variables.REDIS_URL, { type: 'reference', resource: 'database.redis', output: 'REDIS_URL' })
  }
})

t.test('every variable the plan sets is one the service reads, with a value it accepts', async (t) => {
  for (const environment of ['production', 'pr-42']) {
    for (const address of SERVICES) {
      const svc = find(await plan(environment), address)
      const env: Record<string, string> = {}
      for (const [name, value] of Object.entries<any>(svc.variables)) {
        const known = name in ConfigSchema.properties || name === 'NODE_ENV'
        t.ok(known, `${environment} ${address}: ${name} is documented configuration`)
        if (value.type === 'literal' && name in ConfigSchema.properties) env[name] = value.value
      }
      t.doesNotThrow(() => loadConfig({ ...env, REDIS_URL: 'redis://default:secret@redis.railway.internal:6379' }), `${environment} ${address}: the values pass the service's own validation`)
    }
  }
})

t.test('both files agree with each other, with the Dockerfile and with the routes each role serves', async (t) => {
  const production = await plan('production')
  for (const address of SERVICES) {
    const svc = find(production, address)
    t.same(svc.build, railway.build)
    for (const key of ['healthcheckPath', 'healthcheckTimeout', 'restartPolicyType', 'restartPolicyMaxRetries', 'drainingSeconds']) {
      t.equal(svc.deploy[key], railway.deploy[key], `${address} ${key}`)
    }
  }
  t.ok(existsSync(new URL(railway.build.dockerfilePath, root)), 'the Dockerfile both name exists')
  t.match(stages.at(-1)?.instructions.find((i) => i.keyword === 'CMD')?.args, /dist\/server\.js/, 'and its CMD starts the server both rely on')
  // The health check each service's replicas must pass, answered by a process of that role.
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  for (const role of ['all', 'api', 'worker'] as const) {
    const app = await startApp(t, { REDIS_URL: redis.url, ROLE: role })
    const res = await app.inject({ method: 'GET', url: railway.deploy.healthcheckPath })
    t.equal(res.statusCode, 200, `ROLE=${role} answers the health check path`)
  }
})
