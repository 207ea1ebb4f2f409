// Runs in a worker thread of the HTML pool: parsing a page here never stalls the main thread, and
// the pool can stop this thread when a page takes too long.
import { Buffer } from 'node:buffer'
import type { MessagePort } from 'node:worker_threads'
import { type ExtractedPage, extractHtml } from './html.js'
import { type HtmlLimits, pastHtmlLimits } from './html-limits.js'

export interface HtmlTask {
  body: Uint8Array
  /** Where the page was read from, to resolve its links. */
  pageUrl: string
  limits: HtmlLimits
  /** Told when this thread takes the task up, so the time limit counts parsing only, not the wait for a thread. */
  started: MessagePort
}

export type HtmlTaskResult = { page: ExtractedPage } | { refused: string }

export default function readHtml ({ body, pageUrl, limits, started }: HtmlTask): HtmlTaskResult {
  started.postMessage(null)
  started.close()
  const html = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')
  const refused = pastHtmlLimits(html, limits)
  return refused === null ? { page: extractHtml(html, pageUrl) } : { refused }
}
