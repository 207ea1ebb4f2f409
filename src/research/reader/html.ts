import { Readability } from '@mozilla/readability'
import { parseHTML } from 'linkedom'

export interface Link { url: string, text: string }

export interface ExtractedPage {
  title: string
  /** The readable text as Markdown-like blocks: `#`/`##` headings and paragraphs. */
  text: string
  links: Link[]
}

const BLOCKS = 'h1,h2,h3,h4,h5,h6,p,li,pre,blockquote,dd,dt,td,th'
const NOISE = 'script,style,noscript,template,nav,header,footer,aside,form,iframe,svg'

/** A parsed page, or an element of one, to read text blocks from. */
type Root = Pick<ReturnType<typeof parseHTML>['document'], 'querySelectorAll'>

/**
 * The article of an HTML page as clean text (Mozilla Readability on a linkedom DOM), with the
 * page's links resolved against its URL. Pages Readability cannot make sense of fall back to
 * the body's text blocks without scripts, navigation and footers.
 */
export function extractHtml (html: string, pageUrl: string): ExtractedPage {
  const { document } = parseHTML(html)
  const links = collectLinks(document, pageUrl)
  const fallbackTitle = (document.querySelector('title')?.textContent ?? '').trim()
  let article: { title?: string | null, content?: Root | null } | null = null
  try {
    // The article as Readability's own element, not as HTML to parse again: the second parse and
    // the serializing before it were a fifth of the work on a 30 KB page, and the parse lost text
    // (Readability wraps a <div>'s <section> or <details> in a <p>; parsed again, the <p> closed
    // where the <section> opened, and its text was in no block). Its classes are left on: only
    // its text is read, and stripping them, its last step, walks it once more.
    article = new Readability(document as unknown as ConstructorParameters<typeof Readability>[0], {
      charThreshold: 100, keepClasses: true, serializer: (node) => node as unknown as Root
    }).parse()
  } catch {
    article = null
  }
  let blocks = article?.content != null ? blocksOf(article.content) : []
  if (blocks.length === 0) {
    const { document: raw } = parseHTML(html)
    for (const element of raw.querySelectorAll(NOISE)) element.remove()
    blocks = blocksOf(raw)
  }
  const title = (article?.title ?? '').trim() || fallbackTitle || new URL(pageUrl).hostname
  return { title, text: [`# ${title}`, ...blocks].join('\n\n'), links }
}

/** Plain text or Markdown: kept as it is, titled by its first heading or line. */
export function extractText (text: string, pageUrl: string): ExtractedPage {
  const heading = /^#\s+(.+)$/m.exec(text)?.[1]?.trim()
  const firstLine = text.split('\n').find((line) => line.trim() !== '')?.trim().slice(0, 120)
  const title = heading ?? firstLine ?? new URL(pageUrl).pathname
  return { title, text: heading === undefined ? `# ${title}\n\n${text}` : text, links: [] }
}

function blocksOf (root: Root): string[] {
  const blocks: string[] = []
  // In document order, so a block holding other blocks (an <li> with <p>s) is followed by the
  // first of them: it is read through its children. (A querySelector per block compiled the
  // selector again for each one: half of this function's time on a long page.)
  const found = [...root.querySelectorAll(BLOCKS)]
  for (const [i, element] of found.entries()) {
    const next = found[i + 1]
    if (next !== undefined && element.contains(next)) continue
    const text = (element.textContent ?? '').replace(/\s+/g, ' ').trim()
    if (text === '') continue
    const level = /^H([1-6])$/.exec(element.tagName)?.[1]
    blocks.push(level === undefined ? text : `${'#'.repeat(Math.max(2, Number(level)))} ${text}`)
  }
  return blocks
}

function collectLinks (document: ReturnType<typeof parseHTML>['document'], pageUrl: string): Link[] {
  const seen = new Set<string>()
  const links: Link[] = []
  for (const anchor of document.querySelectorAll('a[href]')) {
    let url: URL
    try {
      url = new URL(anchor.getAttribute('href') ?? '', pageUrl)
    } catch {
      continue
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue
    url.hash = ''
    if (seen.has(url.href) || url.href === pageUrl) continue
    seen.add(url.href)
    links.push({ url: url.href, text: (anchor.textContent ?? '').replace(/\s+/g, ' ').trim() })
  }
  return links
}
