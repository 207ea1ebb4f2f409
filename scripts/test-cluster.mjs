// npm run test:cluster: the API suite and the store contract again, on a real local Redis Cluster
// (3 masters, 3 replicas) with REDIS_SHARDS=6. Starts the cluster, runs tap with
// TEST_REDIS_CLUSTER_URL set (test/helpers/app.ts puts every app given no Redis on it), shows
// where the keys landed, and stops the cluster, also when the tests fail.
import { spawn } from 'node:child_process'
import { RedisCluster } from '../test/helpers/redis-cluster.ts'

const files = process.argv.slice(2)
const cluster = await RedisCluster.start()
let code = 1
try {
  console.log(`cluster: ${cluster.masters().map((m) => `master ${m.port} slots ${m.slots}`).join('; ')}`)
  const tap = spawn('npx', ['tap', '--disable-coverage', ...(files.length > 0 ? files : ['test/api/*.test.ts', 'test/store/contract.test.ts'])], {
    stdio: 'inherit',
    env: { ...process.env, TEST_REDIS_CLUSTER_URL: cluster.url }
  })
  code = await new Promise((resolve) => tap.on('close', (status) => resolve(status ?? 1)))
  // Every master holds keys: the six shards' hash tags spread over all three.
  const sizes = cluster.dbsizes()
  console.log(`keys by master (DBSIZE): ${JSON.stringify(sizes)}`)
  if (Object.values(sizes).some((size) => size === 0)) {
    console.error('test:cluster: a master holds no keys; the shards did not spread')
    code = code === 0 ? 1 : code
  }
} finally {
  await cluster.stop()
}
process.exit(code)
