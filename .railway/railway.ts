// Railway Infrastructure as Code for the deep-research job API: the whole project, previewed with
// `railway config plan` and applied with `railway config apply`. A service is managed either by
// this file or by railway.json (Config as Code), never both: see docs/deploy.md.
import { defineRailway, github, preserve, project, redis, service } from 'railway/iac'

export default defineRailway((ctx) => {
  const production = ctx.isEnvironment('production')
  // Deploy from GitHub when the plan names the repository (DEPLOY_REPO=owner/name at plan time);
  // without it the services have no source and `railway up` uploads this folder.
  const repository = process.env.DEPLOY_REPO
  const source = repository === undefined || repository === '' ? undefined : github(repository, { branch: process.env.DEPLOY_BRANCH ?? 'main' })

  // Job records, the queue and leases (Railway's Redis, on a volume). Check its durability
  // settings (AOF, noeviction) once after the first apply: see docs/operations.md.
  const jobStore = redis('redis')

  // What both roles share: the image, the restart policy, and how they find each other.
  const shared = {
    source,
    build: { builder: 'DOCKERFILE' as const, dockerfilePath: 'Dockerfile' },
    // No start command: the Dockerfile's exec-form CMD runs node as PID 1, so SIGTERM reaches it.
    healthcheck: '/health',
    healthcheckTimeout: 60,
    deploy: {
      restartPolicyType: 'ON_FAILURE' as const,
      restartPolicyMaxRetries: 10,
      // SIGTERM hands running jobs back within SHUTDOWN_TIMEOUT_MS; this leaves room for it.
      drainingSeconds: 5
    }
  }
  const env = {
    NODE_ENV: 'production',
    HOST: '::',
    LOG_LEVEL: production ? 'info' : 'debug',
    REDIS_URL: jobStore.env.REDIS_URL,
    JOB_TTL_SECONDS: production ? '86400' : '3600',
    JOB_LEASE_MS: '30000',
    JOB_MAX_ATTEMPTS: '3',
    SHUTDOWN_TIMEOUT_MS: '2000'
  }

  // Serves the API and runs no jobs: scale it with the request load.
  const api = service('api', {
    ...shared,
    replicas: production ? 2 : 1,
    env: {
      ...env,
      ROLE: 'api',
      // Railway's edge proxy is one hop in front of the service: believe its X-Forwarded-For
      // (the client address the per-IP limits count), and nobody else's.
      TRUST_PROXY: '1',
      // Secrets are set in Railway, never in this file: keep whatever value the service holds.
      API_KEYS: preserve(),
      ADMIN_KEYS: preserve(),
      WEBHOOK_SECRET: preserve()
    }
  })

  // Runs the jobs, the lease reaper and webhook deliveries: scale it with the work. It answers
  // /health on its port for the health check, and nothing else; it needs no public domain.
  const worker = service('worker', {
    ...shared,
    replicas: production ? 2 : 1,
    env: {
      ...env,
      ROLE: 'worker',
      RUNNER_CONCURRENCY: '4',
      ADMIN_KEYS: preserve(),
      WEBHOOK_SECRET: preserve()
    }
  })

  return project('deep-research', { resources: [jobStore, api, worker] })
})
