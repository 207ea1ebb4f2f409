import { Parser } from 'htmlparser2'

export interface HtmlLimits {
  /** Deepest element nesting parsed. */
  maxDepth: number
  /** Most elements parsed. */
  maxElements: number
}

/**
 * Why a page is past the limits, or null when it is not. The element tree is counted as linkedom
 * will build it (both stand on htmlparser2's events: implied end tags, void elements), with no
 * DOM. The count stops at the first limit passed: htmlparser2 keeps its open elements in an
 * array it grows at the front, so a page far past the depth limit would cost it quadratic time.
 */
export function pastHtmlLimits (html: string, limits: HtmlLimits): string | null {
  let depth = 0
  let elements = 0
  let reason: string | null = null
  const parser = new Parser({
    onopentag () {
      depth++
      elements++
      if (depth > limits.maxDepth) reason = `the page is nested too deeply to read (more than ${limits.maxDepth} levels)`
      else if (elements > limits.maxElements) reason = `the page has too many elements to read (more than ${limits.maxElements})`
      if (reason !== null) parser.pause()
    },
    onclosetag () {
      depth--
    }
  }, { decodeEntities: false })
  parser.write(html)
  return reason
}
