import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { TenantQuotas } from '../jobs/quotas.js'
import { JobService } from '../jobs/service.js'

declare module 'fastify' {
  interface FastifyInstance {
    jobs: JobService
  }
}

/** The job service the routes use: the store, its change feed, and what this deployment can run (the engine's checks). */
export interface JobsPluginOptions {
  /** The tenants' quotas (TENANT_MAX_QUEUED, TENANT_QUOTAS): creates past one are refused. */
  quotas: TenantQuotas
}

const jobsPlugin: FastifyPluginAsync<JobsPluginOptions> = async (app, options) => {
  const log = app.log.child({ component: 'jobs' })
  const webhooks = app.webhooks
  app.decorate('jobs', new JobService({
    store: app.store,
    feed: app.store,
    claims: app.store.counters,
    quotas: options.quotas,
    checks: {
      sourceUnavailable: app.engine.unavailable?.bind(app.engine),
      webhookRefused: webhooks === null ? undefined : (url) => webhooks.refuses(url)
    },
    events: {
      created: (job) => {
        app.metrics.jobCreated()
        log.info({ job_id: job.job_id, status: job.status, attempt: job.attempts, depth: job.depth }, 'job created')
      },
      cancelled: (job) => {
        app.metrics.jobCancelled()
        log.info({ job_id: job.job_id, status: job.status, attempt: job.attempts }, 'job cancelled')
      }
    }
  }))
}

export default fp(jobsPlugin, { name: 'jobs', dependencies: ['store', 'runner', 'webhooks', 'metrics'] })
