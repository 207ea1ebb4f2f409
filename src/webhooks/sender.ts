import { type Agent, request } from 'undici'
import { type AddressPolicy, assertLiteralHostAllowed, guardedAgent } from '../net/address-guard.js'
import { plainReason, refusedByGuard } from '../net/plain-reason.js'
import { signatureHeaders } from './signature.js'

export interface DeliveryResult {
  statusCode: number | null
  /** Why the delivery failed, in plain words: it is stored on the job, for its client to read. */
  error: string | null
  /** The network error behind `error`, for the server log only (it names addresses). */
  cause?: unknown
  durationMs: number
  /** Retrying cannot help (the URL is refused, or the receiver answered 410 Gone). */
  permanent: boolean
}

export interface WebhookSenderOptions { secret: string, policy: AddressPolicy, timeoutMs: number }

/** POSTs signed webhook messages through the SSRF guard; redirects are not followed. */
export class WebhookSender {
  readonly #options: WebhookSenderOptions
  readonly #agent: Agent

  constructor (options: WebhookSenderOptions) {
    this.#options = options
    this.#agent = guardedAgent(options.policy)
  }

  async send (url: string, messageId: string, body: string): Promise<DeliveryResult> {
    const started = performance.now()
    const done = (statusCode: number | null, error: string | null, permanent = false, cause?: unknown): DeliveryResult =>
      ({ statusCode, error, permanent, cause, durationMs: Math.round(performance.now() - started) })
    try {
      const target = new URL(url)
      assertLiteralHostAllowed(target, this.#options.policy)
      const response = await request(target, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#options.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'deep-research-api-webhooks/1.0',
          ...signatureHeaders(this.#options.secret, messageId, Math.floor(Date.now() / 1000), body)
        },
        body
      })
      await response.body.dump({ limit: 65_536 })
      if (response.statusCode >= 200 && response.statusCode < 300) return done(response.statusCode, null)
      return done(response.statusCode, `HTTP ${response.statusCode}`, response.statusCode === 410)
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') return done(null, `no answer within ${this.#options.timeoutMs} ms`, false, err)
      return done(null, plainReason(err), refusedByGuard(err), err)
    }
  }

  /** Why a URL can be refused before any DNS lookup (a private literal address), as `refused: ...`, or null. */
  refuses (url: string): string | null {
    try {
      assertLiteralHostAllowed(new URL(url), this.#options.policy)
      return null
    } catch (err) {
      return refusedByGuard(err) ? (err as Error).message : 'refused: not a valid URL'
    }
  }

  async close (): Promise<void> {
    await this.#agent.close()
  }
}
