// How many connections a process holds to a single Redis: the main one, the notices'
// subscriber, and the runner's (REDIS_RUNNER_CONNECTION, REDIS_RUNNER_CONNECTIONS of them) when
// it runs jobs; all closed with it.
import t from 'tap'
import { createJob, pollJob, startApp, waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())

/** Connections other than the admin's own. */
async function appConnections (): Promise<number> {
  const list = String(await admin.sendCommand(['CLIENT', 'LIST']))
  return list.split('\n').filter((line) => line.trim() !== '' && !/ cmd=client\|list /.test(line)).length
}

for (const [name, overrides, expected] of [
  ['by default, a process that serves the API and runs jobs holds 3: main, notices and the runner\'s', {}, 3],
  ['by default, a ROLE=worker process holds 4: its runner takes two, to overlap its turns with Redis\'s', { ROLE: 'worker' as const }, 4],
  ['REDIS_RUNNER_CONNECTIONS=1 on a worker: 3', { ROLE: 'worker' as const, REDIS_RUNNER_CONNECTIONS: 1 }, 3],
  ['REDIS_RUNNER_CONNECTIONS=2: 4, the runner\'s two', { REDIS_RUNNER_CONNECTIONS: 2 }, 4],
  ['REDIS_RUNNER_CONNECTION=false: 2, the runner\'s calls on the main one', { REDIS_RUNNER_CONNECTION: false }, 2],
  ['ROLE=api runs no jobs: 2', { ROLE: 'api' as const }, 2]
] as const) {
  t.test(`${name}; ${overrides.ROLE === undefined ? 'a job completes, and ' : ''}closing the app closes them all`, async (t) => {
    const app = await startApp(t, { REDIS_URL: server.url, ...overrides })
    await waitFor(`${expected} connections`, async () => await appConnections() === expected)
    if (overrides.ROLE === undefined) {
      const job = await createJob(app, { query: 'How do job queues retry transient failures?', depth: 'quick' })
      t.equal((await pollJob(app, job.job_id)).status, 'completed')
    }
    t.equal(await appConnections(), expected)
    await app.close()
    await waitFor('every connection closed', async () => await appConnections() === 0)
  })
}
