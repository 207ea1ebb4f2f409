import { type Link, extractHtml, extractText } from './html.js'
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
}

/** Turns a URL into readable text: HTML through Readability, plain text and Markdown as they are. */
export class PageReader {
  readonly #fetcher: PageFetcher

  constructor (fetcher: PageFetcher) {
    this.#fetcher = fetcher
  }

  async read (url: string, signal: AbortSignal): Promise<ReadPage> {
    const page = await this.#fetcher.fetch(url, signal)
    if (page.contentType === 'application/pdf') {
      throw new PageReadError(url, 'PDF documents are not read (no PDF text extraction here); link an HTML or text version')
    }
    const body = page.body.toString('utf8')
    const extracted = page.contentType === 'text/html' || page.contentType === 'application/xhtml+xml'
      ? extractHtml(body, page.url)
      : extractText(body, page.url)
    if (extracted.text.replace(/^#.*$/gm, '').trim() === '') throw new PageReadError(url, 'the page has no readable text')
    return { url, finalUrl: page.url, title: extracted.title, text: extracted.text, links: extracted.links, bytes: page.body.length }
  }

  async close (): Promise<void> {
    await this.#fetcher.close()
  }
}
