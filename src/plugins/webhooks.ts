import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import { anyAddress, publicAddressesOnly } from '../net/address-guard.js'
import { WebhookDispatcher } from '../webhooks/dispatcher.js'
import { WebhookSender } from '../webhooks/sender.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Null when WEBHOOK_SECRET is not set: `webhook_url` is then refused. */
    webhooks: { dispatcher: WebhookDispatcher, refuses: (url: string) => string | null } | null
  }
}

/** Webhook deliveries of finished jobs, run by every replica that runs jobs (they share the due set in Redis). */
const webhooksPlugin: FastifyPluginAsync<{ config: Config }> = async (app, { config }) => {
  if (config.WEBHOOK_SECRET === '') {
    app.decorate('webhooks', null)
    return
  }
  const sender = new WebhookSender({
    secret: config.WEBHOOK_SECRET,
    policy: config.ALLOW_PRIVATE_URLS ? anyAddress : publicAddressesOnly,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS
  })
  const dispatcher = new WebhookDispatcher({
    store: app.store,
    sender,
    logger: app.log.child({ component: 'webhooks' }),
    pollMs: config.WEBHOOK_POLL_MS,
    claimMs: config.WEBHOOK_TIMEOUT_MS + 5000,
    retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
    retryMaxMs: config.WEBHOOK_RETRY_MAX_MS,
    windowMs: config.WEBHOOK_RETRY_WINDOW_MS,
    onAttempt: (outcome) => app.metrics.webhookAttempt(outcome)
  })
  app.decorate('webhooks', { dispatcher, refuses: (url: string) => sender.refuses(url) })
  // ROLE=api checks webhook URLs at create; the workers deliver.
  if (config.ROLE !== 'api') {
    app.addHook('onReady', async () => dispatcher.start())
    app.addHook('preClose', async () => dispatcher.stop())
  }
  app.addHook('onClose', async () => sender.close())
}

export default fp(webhooksPlugin, { name: 'webhooks', dependencies: ['store', 'metrics'] })
