import { type Agent, request } from 'undici'
import { type AddressPolicy, assertLiteralHostAllowed, guardedAgent, publicAddressesOnly } from '../../net/address-guard.js'
import { plainReason } from '../../net/plain-reason.js'

export interface FetchedPage {
  /** The URL answered, after redirects. */
  url: string
  contentType: string
  body: Buffer
}

/** A page that could not be read; the reason is fit to show to the user. */
export class PageReadError extends Error {
  override name = 'PageReadError'
  readonly url: string
  constructor (url: string, reason: string, options?: ErrorOptions) {
    super(reason, options)
    this.url = url
  }
}

export interface PageFetcherOptions {
  /** Which resolved addresses may be reached (default: public addresses only). */
  policy?: AddressPolicy
  /** Largest body read (default 2 MB). */
  maxBytes?: number
  /** Deadline for one page, redirects included (default 15 s). */
  timeoutMs?: number
  /** Redirects followed (default 5). */
  maxRedirects?: number
  /** Told the network error behind each reason, which the reason itself leaves out. */
  logger?: { debug (obj: object, msg: string): void }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const READABLE_TYPES = ['text/html', 'application/xhtml+xml', 'text/plain', 'text/markdown', 'application/pdf']
const USER_AGENT = 'deep-research-api/1.0 (+https://github.com/; research job reader)'

/**
 * Fetches user-supplied URLs safely: every connection goes through the SSRF guard (after DNS
 * resolution, on every redirect), redirects are followed by hand and capped, bodies are cut
 * at a size cap, and the job's AbortSignal and a per-page deadline stop a request at once.
 */
export class PageFetcher {
  readonly #policy: AddressPolicy
  readonly #maxBytes: number
  readonly #timeoutMs: number
  readonly #maxRedirects: number
  readonly #agent: Agent
  readonly #logger: PageFetcherOptions['logger']

  constructor (options: PageFetcherOptions = {}) {
    this.#policy = options.policy ?? publicAddressesOnly
    this.#maxBytes = options.maxBytes ?? 2 * 1024 * 1024
    this.#timeoutMs = options.timeoutMs ?? 15_000
    this.#maxRedirects = options.maxRedirects ?? 5
    this.#agent = guardedAgent(this.#policy, { connections: 16 })
    this.#logger = options.logger
  }

  /** The settings that change what a fetch of a URL gives (part of a cached page's key). */
  get settings (): string {
    return `max_bytes=${this.#maxBytes}`
  }

  async fetch (address: string, signal: AbortSignal): Promise<FetchedPage> {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)])
    let url = parseHttpUrl(address)
    for (let redirects = 0; ; redirects++) {
      const response = await this.#request(url, deadline, signal, address)
      if (REDIRECTS.has(response.statusCode)) {
        response.body.resume()
        const location = response.headers.location
        if (typeof location !== 'string') throw new PageReadError(address, `HTTP ${response.statusCode} without a Location header`)
        if (redirects >= this.#maxRedirects) throw new PageReadError(address, `more than ${this.#maxRedirects} redirects`)
        url = parseHttpUrl(new URL(location, url).href, address)
        continue
      }
      if (response.statusCode < 200 || response.statusCode >= 300) {
        response.body.resume()
        throw new PageReadError(address, `HTTP ${response.statusCode}`)
      }
      const contentType = String(response.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
      if (!READABLE_TYPES.includes(contentType)) {
        response.body.resume()
        throw new PageReadError(address, `unsupported content type ${contentType === '' ? '(none)' : contentType}; readable: HTML, plain text, Markdown`)
      }
      const declared = Number(response.headers['content-length'] ?? 0)
      if (declared > this.#maxBytes) {
        response.body.destroy()
        throw new PageReadError(address, `larger than the ${this.#maxBytes}-byte limit (${declared} bytes)`)
      }
      const body = await this.#readCapped(response.body, address, deadline, signal)
      return { url: url.href, contentType, body }
    }
  }

  async close (): Promise<void> {
    await this.#agent.close()
  }

  async #request (url: URL, deadline: AbortSignal, signal: AbortSignal, address: string): Promise<Awaited<ReturnType<typeof request>>> {
    try {
      assertLiteralHostAllowed(url, this.#policy)
      return await request(url, {
        dispatcher: this.#agent,
        signal: deadline,
        headers: { 'user-agent': USER_AGENT, accept: 'text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.1' },
        maxRedirections: 0
      } as Parameters<typeof request>[1])
    } catch (err) {
      throw this.#explain(err, deadline, signal, address)
    }
  }

  async #readCapped (body: AsyncIterable<Buffer> & { destroy: () => void }, address: string, deadline: AbortSignal, signal: AbortSignal): Promise<Buffer> {
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const chunk of body) {
        size += chunk.length
        if (size > this.#maxBytes) {
          body.destroy()
          throw new PageReadError(address, `larger than the ${this.#maxBytes}-byte limit`)
        }
        chunks.push(chunk)
      }
    } catch (err) {
      throw this.#explain(err, deadline, signal, address)
    }
    return Buffer.concat(chunks)
  }

  /** The job's own abort propagates as is; everything else becomes a reason to skip the page. */
  #explain (err: unknown, deadline: AbortSignal, signal: AbortSignal, address: string): unknown {
    if (signal.aborted) return signal.reason
    if (err instanceof PageReadError) return err
    if (deadline.aborted || (err as Error).name === 'TimeoutError' || (err as Error).name === 'BodyTimeoutError') {
      return new PageReadError(address, `no complete answer within ${this.#timeoutMs} ms`)
    }
    // The reason reaches the client: plain words only; what the network said goes to the log.
    this.#logger?.debug({ url: address, err }, 'page not read')
    return new PageReadError(address, plainReason(err), { cause: err })
  }
}

function parseHttpUrl (value: string, original = value): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new PageReadError(original, `not a valid URL: ${value}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PageReadError(original, `only http and https URLs can be read, not ${url.protocol}`)
  return url
}
