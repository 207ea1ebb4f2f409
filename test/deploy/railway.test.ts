import { readFileSync } from 'node:fs'
import t from 'tap'

const root = new URL('../../', import.meta.url)
const railway = JSON.parse(readFileSync(new URL('railway.json', root), 'utf8'))

t.test('railway.json builds from the Dockerfile and health-checks /health', async (t) => {
  t.equal(railway.$schema, 'https://railway.com/railway.schema.json')
  t.same(railway.build, { builder: 'DOCKERFILE', dockerfilePath: 'Dockerfile' })
  t.equal(railway.deploy.healthcheckPath, '/health')
  t.type(railway.deploy.healthcheckTimeout, 'number')
  t.equal(railway.deploy.restartPolicyType, 'ON_FAILURE')
  t.type(railway.deploy.drainingSeconds, 'number', 'drainingSeconds is a number, not a string')
  t.ok(railway.deploy.drainingSeconds >= 3, 'long enough for the 2 s hand-back of running jobs')
  t.notOk('startCommand' in railway.deploy, 'no start command: the Dockerfile\'s exec-form CMD runs node as PID 1')
})
