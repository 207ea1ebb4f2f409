// Fair share, measured on a redis-server of its own: one tenant's backlog (400 and 2,000 jobs)
// spread over 1, 10 and 1,000 tenants, then another tenant's one job. Prints how many claims
// ran before that job was claimed (with W workers, a job's wait is claims / W job durations)
// and the Redis commands per claim (INFO commandstats, every command the claim script ran).
// Run: node --import tsx bench/fair-share.mjs
import { newJob } from '../src/jobs/records.ts'
import { RedisJobStore } from '../src/store/redis.ts'
import { connectInBackground, createRedisClient } from '../src/store/redis-client.ts'
import { RedisServer } from '../test/helpers/redis-server.ts'

const server = await RedisServer.start()
const admin = await server.client()
const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
connectInBackground(client)
while (!client.isReady) await new Promise((resolve) => setTimeout(resolve, 20))
const rows = []
try {
  for (const backlog of [400, 2000]) {
    for (const tenants of [1, 10, 1000]) {
      await admin.flushAll()
      const store = new RedisJobStore(client, { ttlSeconds: 3600, timeoutMs: 5000 })
      for (let i = 0; i < backlog; i++) await store.put({ ...newJob({ query: `job ${i}`, depth: 'quick' }), owner: `tenant-${i % tenants}` }, 0, { enqueue: 'tail' })
      // The backlog's tenants have all been served once, as they would be in a running system.
      for (let i = 0; i < tenants; i++) await store.claim(60_000, 1)
      const written = await store.put({ ...newJob({ query: 'bob', depth: 'quick' }), owner: 'bob' }, 0, { enqueue: 'tail' })
      const bobId = written.ok ? written.job.job_id : null
      if (bobId === null) throw new Error('bob\'s job was not written')
      await admin.configResetStat()
      let claims = 0
      let before = null
      for (;;) {
        const [claim] = await store.claim(60_000, 1)
        if (claim === undefined) break
        claims++
        if (claim.job.job_id === bobId) before = claims - 1
      }
      let commands = 0
      for (const [, name, calls] of (await admin.info('commandstats')).matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) if (name !== 'info' && name !== 'config|resetstat') commands += Number(calls)
      rows.push({ backlog, tenants, claims_before_bobs: before, claims, commands_per_claim: +(commands / (claims + 1)).toFixed(2) })
    }
  }
} finally {
  await client.close()
  await admin.close()
  await server.stop()
}
console.table(rows)
