import { toPublic } from '../schemas/job.js'
import { retryDelayMs } from '../backoff.js'
import type { StoredJob, WebhookData } from '../schemas/job.js'
import { isFinal } from '../schemas/job.js'
import type { JobStore, WebhookOutbox } from '../store/job-store.js'
import type { DeliveryResult } from './sender.js'
import { isoNow, isoTime } from '../iso-time.js'

export interface WebhookLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export interface WebhookDispatcherOptions {
  store: JobStore & WebhookOutbox
  sender: { send (url: string, messageId: string, body: string): Promise<DeliveryResult> }
  logger: WebhookLogger
  /** How often due deliveries are looked for (default 500 ms). */
  pollMs?: number
  /** How long a claimed delivery is held before another replica may take it (default 30 s). */
  claimMs?: number
  retryBaseMs: number
  retryMaxMs: number
  /** How long after the first attempt retries go on (default 24 h). */
  windowMs: number
  /** Told how each attempt ended. */
  onAttempt?: (outcome: 'delivered' | 'retrying' | 'failed') => void
}

const BATCH = 10
const KEPT_DELIVERIES = 30

/**
 * Delivers the webhooks of finished jobs, at least once: the store queues a delivery in the
 * same write as the final state; any replica claims due deliveries for a while, POSTs, records
 * the attempt on the job, and then either settles it or schedules the next try with backoff,
 * for up to 24 hours. A replica that dies mid-delivery leaves its claim to run out.
 */
export class WebhookDispatcher {
  readonly #options: WebhookDispatcherOptions
  #timer: NodeJS.Timeout | null = null
  #running: Promise<number> | null = null

  constructor (options: WebhookDispatcherOptions) {
    this.#options = options
  }

  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => { void this.tick() }, this.#options.pollMs ?? 500)
    this.#timer.unref()
  }

  async stop (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#running
  }

  /** One pass: delivers what is due now; returns how many were attempted. */
  async tick (): Promise<number> {
    if (this.#running !== null) return 0
    this.#running = (async () => {
      try {
        const ids = await this.#options.store.claimWebhooks(this.#options.claimMs ?? 30_000, BATCH)
        await Promise.all(ids.map(async (id) => await this.#deliver(id)))
        return ids.length
      } catch (err) {
        this.#options.logger.warn({ err }, 'webhook pass failed; the next pass retries')
        return 0
      } finally {
        this.#running = null
      }
    })()
    return await this.#running
  }

  async #deliver (id: string): Promise<void> {
    const { store, sender, logger } = this.#options
    const job = await store.get(id)
    if (job === null || job.webhook === null || job.webhook.status !== 'pending' || !isFinal(job.status)) {
      await store.scheduleWebhook(id, null)
      return
    }
    const hook = job.webhook
    const body = JSON.stringify({ type: `job.${job.status}`, timestamp: isoNow(), data: toPublic(job) })
    const result = await sender.send(hook.url, hook.message_id, body)
    const now = Date.now()
    const attempt = (hook.deliveries.at(-1)?.attempt ?? 0) + 1
    const firstAt = hook.deliveries.length === 0 ? now : Date.parse((hook.deliveries[0] as { at: string }).at)
    let next: number | null = null
    let status: WebhookData['status'] = 'delivered'
    if (result.error !== null) {
      next = now + retryDelayMs(attempt, { baseMs: this.#options.retryBaseMs, maxMs: this.#options.retryMaxMs })
      status = 'pending'
      if (result.permanent || next - firstAt > this.#options.windowMs) {
        next = null
        status = 'failed'
      }
    }
    const delivery = { attempt, at: isoTime(now), status_code: result.statusCode, error: result.error, duration_ms: result.durationMs }
    await this.#record(job, (current) => ({
      ...current,
      status,
      deliveries: [...current.deliveries, delivery].slice(-KEPT_DELIVERIES),
      next_attempt_at: next === null ? null : isoTime(next),
      delivered_at: status === 'delivered' ? delivery.at : null
    }))
    await store.scheduleWebhook(id, next === null ? null : next - now)
    this.#options.onAttempt?.(status === 'pending' ? 'retrying' : status)
    const log = { job_id: id, webhook_attempt: attempt, status_code: result.statusCode, webhook_status: status, duration_ms: result.durationMs }
    if (status === 'delivered') logger.info(log, 'webhook delivered')
    // `error` is what the job's client reads; `err`, the network error behind it, is for operators only.
    else logger.warn({ ...log, error: result.error, err: result.cause, next_attempt_at: next === null ? null : isoTime(next) }, status === 'failed' ? 'webhook failed for good' : 'webhook attempt failed; retrying')
  }

  /** Writes the delivery state onto the (final) record; a concurrent write is re-read and re-applied. */
  async #record (job: StoredJob, change: (hook: WebhookData) => WebhookData): Promise<void> {
    let current: StoredJob | null = job
    for (let tries = 0; tries < 5 && current !== null && current.webhook !== null; tries++) {
      const result = await this.#options.store.put({ ...current, webhook: change(current.webhook) }, current.version, { amendFinal: true })
      if (result.ok) return
      // The store cannot take it now: the claim on this delivery runs out and another pass retries.
      if (result.reason === 'unavailable') return
      current = result.current
    }
  }
}
