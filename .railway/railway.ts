// Railway Infrastructure as Code for the deep-research job API: `railway config plan`, then
// `railway config apply` (Railway CLI 5.42.1 or newer). It replaces railway.json for services
// created after Railway stopped reading config-as-code files; railway.json stays for the
// services that still use it, and a test keeps the two in agreement.
import { defineRailway, preserve, project, redis, service } from 'railway/iac'

export default defineRailway((ctx) => {
  const production = ctx.isEnvironment('production')

  // Job records, the queue and leases. Set it to persist (AOF, noeviction): see the README.
  const jobStore = redis('redis')

  const api = service('deep-research-api', {
    build: { builder: 'DOCKERFILE', dockerfilePath: 'Dockerfile' },
    healthcheck: '/health',
    healthcheckTimeout: 60,
    // Several replicas share the Redis: leases make sure each job runs in one at a time.
    replicas: production ? 2 : 1,
    deploy: {
      restartPolicyType: 'ON_FAILURE',
      restartPolicyMaxRetries: 10,
      // SIGTERM hands running jobs back within SHUTDOWN_TIMEOUT_MS; this leaves room for it.
      drainingSeconds: 5
    },
    env: {
      NODE_ENV: 'production',
      HOST: '::',
      LOG_LEVEL: production ? 'info' : 'debug',
      REDIS_URL: jobStore.env.REDIS_URL,
      JOB_TTL_SECONDS: production ? '86400' : '3600',
      RUNNER_CONCURRENCY: '4',
      JOB_LEASE_MS: '30000',
      JOB_MAX_ATTEMPTS: '3',
      SHUTDOWN_TIMEOUT_MS: '2000',
      // Railway's edge proxy is one hop in front of the service: believe its X-Forwarded-For
      // (the client address the per-IP limits count), and nobody else's.
      TRUST_PROXY: '1',
      // Secrets are set in Railway, never in this file: keep whatever value the service holds.
      API_KEYS: preserve(),
      ADMIN_KEYS: preserve()
    }
  })

  return project('deep-research', { resources: [jobStore, api] })
})
