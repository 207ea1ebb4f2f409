import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { createRailwayContext, project } from 'railway/iac'
import program from '../../.railway/railway.js'
import { ConfigSchema, loadConfig } from '../../src/config.js'

const root = new URL('../../', import.meta.url)
const railway = JSON.parse(readFileSync(new URL('railway.json', root), 'utf8'))

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

t.test('the production plan: API service from the Dockerfile, health check, 2 replicas, Redis wired in, secrets preserved', async (t) => {
  const production = await plan('production')
  t.equal(production.name, 'deep-research')
  const redis = find(production, 'database.redis')
  t.match(redis, { type: 'database', engine: 'redis', output: 'REDIS_URL' })
  const api = find(production, 'service.deep-research-api')
  t.same(api.build, { builder: 'DOCKERFILE', dockerfilePath: 'Dockerfile' })
  t.match(api.deploy, { healthcheckPath: '/health', healthcheckTimeout: 60, numReplicas: 2, restartPolicyType: 'ON_FAILURE', drainingSeconds: 5 })
  t.same(api.variables.REDIS_URL, { type: 'reference', resource: 'database.redis', output: 'REDIS_URL' }, 'REDIS_URL comes from the Redis resource')
  t.same(api.variables.API_KEYS, { type: 'preserve' }, 'secrets keep the value set in Railway')
  t.same(api.variables.ADMIN_KEYS, { type: 'preserve' })
  t.same(api.variables.HOST, { type: 'literal', value: '::' }, 'binds IPv6 for the private network')
  t.notOk('PORT' in api.variables, 'PORT is Railway\'s to set')
})

t.test('a preview environment: one replica, shorter TTL, debug logs, the same wiring', async (t) => {
  const preview = await plan('pr-42')
  const api = find(preview, 'service.deep-research-api')
  t.equal(api.deploy.numReplicas, 1)
  t.equal(api.variables.JOB_TTL_SECONDS.value, '3600')
  t.equal(api.variables.LOG_LEVEL.value, 'debug')
  t.same(api.variables.REDIS_URL, { type: 'reference', resource: 'database.redis', output: 'REDIS_URL' })
})

t.test('every variable the plan sets is one the service reads, with a value it accepts', async (t) => {
  for (const environment of ['production', 'pr-42']) {
    const api = find(await plan(environment), 'service.deep-research-api')
    const env: Record<string, string> = {}
    for (const [name, value] of Object.entries<any>(api.variables)) {
      const known = name in ConfigSchema.properties || ['NODE_ENV', 'API_KEYS', 'ADMIN_KEYS'].includes(name)
      t.ok(known, `${environment}: ${name} is documented configuration`)
      if (value.type === 'literal' && name in ConfigSchema.properties) env[name] = value.value
    }
    t.doesNotThrow(() => loadConfig({ ...env, REDIS_URL: 'redis://default:secret@redis.railway.internal:6379' }), `${environment}: the values pass the service's own validation`)
  }
})

t.test('railway.json and .railway/railway.ts agree: builder, health check, restart policy, draining', async (t) => {
  const api = find(await plan('production'), 'service.deep-research-api')
  t.same(api.build, railway.build)
  for (const key of ['healthcheckPath', 'healthcheckTimeout', 'restartPolicyType', 'restartPolicyMaxRetries', 'drainingSeconds']) {
    t.equal(api.deploy[key], railway.deploy[key], key)
  }
})
