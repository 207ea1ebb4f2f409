// What a Redis call costs this process, counted rather than timed (issue #29): a progress write
// passes through the fallback store, the gate, the Redis store, its script and command layers and
// the silence deadline; each async step among them made a promise and a resumption more. Counted
// with async_hooks, the same on every run, and less what node-redis itself makes for a bare
// command (so that a release of it or of Node does not move the bound): 23 promises a write
// before, 12 now, of which a PING's 2.
import { createHook } from 'node:async_hooks'
import t from 'tap'
import { connectInBackground, createRedisClient } from '../../src/store/redis-client.js'
import { createJob, onRedis, startApp, waitFor } from '../helpers/app.js'
import { RedisServer } from '../helpers/redis-server.js'

t.test('a progress write through the store on Redis makes at most 10 promises more than a bare command', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  // No runner: the test holds the job's claim itself.
  const app = await startApp(t, { REDIS_URL: redis.url, ROLE: 'api' })
  await onRedis(app)
  const created = await createJob(app, { query: 'promises of a progress write', depth: 'quick' })
  const [claim] = await app.store.claim(60_000, 1, { worker: 'call-cost', maxAttempts: 3, step: 'Started' })
  t.equal(claim?.job.job_id, created.job_id)
  if (claim === undefined) return
  let made = 0
  const counting = createHook({ init (_id, type) { if (type === 'PROMISE') made++ } })
  let version = claim.job.version
  const counts: number[] = []
  // The fewest of five: a timer of the app's that fires during a write only adds to its count
  // (and the first write's script is not in Redis's cache yet: NOSCRIPT, then EVAL).
  for (let i = 1; i <= 5; i++) {
    made = 0
    counting.enable()
    const written = await app.store.patchProgress(claim.job.job_id, claim.fence, version, { progress: i * 10, step: `step ${i}`, now: Date.now() })
    counting.disable()
    counts.push(made)
    t.equal(written.outcome, 'written')
    if (written.outcome === 'written') version = written.version
  }
  const client = createRedisClient({ url: redis.url, rejectUnauthorized: true })
  connectInBackground(client)
  t.teardown(() => client.destroy())
  await waitFor('a client of its own', () => client.isReady)
  const bare: number[] = []
  for (let i = 0; i < 5; i++) {
    made = 0
    counting.enable()
    await client.sendCommand(['PING'])
    counting.disable()
    bare.push(made)
  }
  const ours = Math.min(...counts) - Math.min(...bare)
  t.ok(ours <= 10, `promises per write: ${counts.join(', ')}; per PING: ${bare.join(', ')}; the store's own: ${ours}`)
  const stored = await app.store.get(claim.job.job_id)
  t.match(stored, { progress: 50, current_step: 'step 5', version })
})
