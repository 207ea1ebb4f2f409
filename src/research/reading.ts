import type { Passage, SourceKind } from './corpus.js'
import { splitDocument } from './corpus.js'
import type { RunContext } from './engine.js'
import { PageReadError } from './reader/page-fetcher.js'
import type { PageSource, ReadPage } from './reader/page-reader.js'
import { keyTerms, truncate } from './text.js'
import type { UsageMeter } from './usage.js'

export interface ToRead { url: string, kind: Exclude<SourceKind, 'corpus'>, title: string | null, hop: number }

export interface ReadingOptions {
  /** Most pages fetched in the whole run. */
  maxSources: number
  /** Date.now() past which nothing more is read (the time budget). */
  readUntil: number
  /** Link hops followed from the pages given or found. */
  hops: number
  question: string
  usage: UsageMeter
  context: RunContext
}

const LINKS_PER_PAGE = 3
/** Page passages get ids far above any corpus passage's. */
const PAGE_IDS = 1_000_000

/**
 * The pages one run reads, across its rounds: the budget of fetches (max_sources) and time is
 * the run's, a page is fetched once, links that share words with the question are followed up
 * to the depth's hops, and a page the client listed that could not be read is reported with why.
 */
export class Reading {
  readonly pages: Array<{ page: ReadPage, kind: ToRead['kind'] }> = []
  readonly unread: Array<{ url: string, reason: string }> = []
  readonly #reader: PageSource
  readonly #options: ReadingOptions
  readonly #seen = new Set<string>()
  readonly #terms: Set<string>
  #fetched = 0

  constructor (reader: PageSource, options: ReadingOptions) {
    this.#reader = reader
    this.#options = options
    this.#terms = new Set(keyTerms(options.question))
  }

  /** Reads the queue in order (links found are appended) within the budget; returns how many pages were read. */
  async read (items: ToRead[]): Promise<number> {
    const { maxSources, readUntil, usage, context } = this.#options
    const queue = items.filter((item) => !this.#seen.has(item.url))
    for (const item of queue) this.#seen.add(item.url)
    const before = this.pages.length
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (this.#fetched >= maxSources || Date.now() >= readUntil) {
        // Pages the client listed and did not get read are reported; search results and links are not.
        const reason = this.#fetched >= maxSources ? `not read: max_sources (${maxSources}) reached` : 'not read: the time budget (max_duration_s) ran out'
        for (const item of [next, ...queue]) if (item.hop === 0 && item.kind === 'url') this.unread.push({ url: item.url, reason })
        break
      }
      this.#fetched++
      const total = Math.min(maxSources, this.#fetched + queue.length)
      await context.progress(20 + Math.round((40 * (this.#fetched - 1)) / maxSources), `Reading ${this.#fetched}/${total}: ${truncate(next.title ?? next.url, 100)}`)
      let page: ReadPage
      try {
        page = await this.#reader.read(next.url, context.signal)
      } catch (err) {
        if (!(err instanceof PageReadError)) throw err
        this.unread.push({ url: next.url, reason: err.message })
        continue
      }
      usage.page(page.bytes, page.cached === true)
      this.pages.push({ page, kind: next.kind })
      if (next.hop < this.#options.hops) {
        for (const link of this.#relevantLinks(page)) {
          this.#seen.add(link.url)
          queue.push({ url: link.url, kind: next.kind, title: link.text, hop: next.hop + 1 })
        }
      }
    }
    return this.pages.length - before
  }

  /** The passages of every page read, each located at the page's final URL. */
  passages (): Passage[] {
    return this.pages.flatMap(({ page, kind }, n) => splitDocument(page.finalUrl, page.text)
      .map((passage, i): Passage => ({ ...passage, id: PAGE_IDS + n * 10_000 + i, location: page.finalUrl, kind })))
  }

  /** Links whose text or address shares words with the question, best first. */
  #relevantLinks (page: ReadPage): ReadPage['links'] {
    return page.links
      .filter((link) => !this.#seen.has(link.url))
      .map((link) => ({ link, hits: keyTerms(`${link.text} ${new URL(link.url).pathname.replace(/[/._-]+/g, ' ')}`).filter((t) => this.#terms.has(t)).length }))
      .filter((entry) => entry.hits > 0)
      .sort((a, b) => b.hits - a.hits)
      .slice(0, LINKS_PER_PAGE)
      .map((entry) => entry.link)
  }
}
