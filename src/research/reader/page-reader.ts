import { type Link, extractText } from './html.js'
import { HtmlPool } from './html-pool.js'
import { type PageFetcher, PageReadError } from './page-fetcher.js'

export interface ReadPage {
  /** The URL asked for. */
  url: string
  /** The URL that answered, after redirects. */
  finalUrl: string
  title: string
  /** Readable text, Markdown-like (headings and paragraphs). */
  text: string
  links: Link[]
  bytes: number
  /** Taken from the shared cache, not fetched by this job (see durable-sources.ts). */
  cached?: boolean
}

/** Reads one page; the reader below, or one made durable per job (durable-sources.ts). */
export interface PageSource {
  read (url: string, signal: AbortSignal): Promise<ReadPage>
}

/** Turns a URL into readable text: HTML through Readability (in worker threads), plain text and Markdown as they are. */
export class PageReader implements PageSource {
  readonly #fetcher: PageFetcher
  readonly #html: HtmlPool

  constructor (fetcher: PageFetcher, html: HtmlPool = new HtmlPool()) {
    this.#fetcher = fetcher
    this.#html = html
  }

  /** Everything besides the URL that changes what a read gives. */
  get settings (): string {
    return `${this.#fetcher.settings},${this.#html.settings}`
  }

  async read (url: string, signal: AbortSignal): Promise<ReadPage> {
    const page = await this.#fetcher.fetch(url, signal)
    if (page.contentType === 'application/pdf') {
      throw new PageReadError(url, 'PDF documents are not read (no PDF text extraction here); link an HTML or text version')
    }
    const extracted = page.contentType === 'text/html' || page.contentType === 'application/xhtml+xml'
      ? await this.#html.extract(page.body, page.url, url, signal)
      : extractText(page.body.toString('utf8'), page.url)
    if (extracted.text.replace(/^#.*$/gm, '').trim() === '') throw new PageReadError(url, 'the page has no readable text')
    return { url, finalUrl: page.url, title: extracted.title, text: extracted.text, links: extracted.links, bytes: page.body.length }
  }

  async close (): Promise<void> {
    await Promise.all([this.#fetcher.close(), this.#html.close()])
  }
}
