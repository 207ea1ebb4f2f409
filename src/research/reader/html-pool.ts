import { availableParallelism } from 'node:os'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MessageChannel } from 'node:worker_threads'
import { Piscina } from 'piscina'
import type { ExtractedPage } from './html.js'
import type { HtmlLimits } from './html-limits.js'
import type { HtmlTask, HtmlTaskResult } from './html-worker.js'
import { PageReadError } from './page-fetcher.js'

export interface HtmlPoolOptions extends Partial<HtmlLimits> {
  /** Worker threads; 0 or absent: one per CPU this process may use. */
  threads?: number
  /** Hard limit on parsing one page (default 10 s): past it, its thread is stopped. */
  timeoutMs?: number
}

/** The worker module beside this one: compiled .js under dist/, .ts when run from source (tsx). */
const WORKER = new URL(`./html-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href
/** Parsing yields the CPU to the main thread, which answers requests and renews leases. */
const NICE_INCREMENT = 10
/** A thread stays this long after its last page, so a run's pages do not each start one. */
const IDLE_MS = 30_000

/**
 * HTML pages are parsed (linkedom, Readability) in a pool of worker threads: a page built to be
 * costly (thousands of levels deep) can take minutes of synchronous work, which on the main
 * thread would stop /health, lease renewals and every other job. A page past the depth or
 * element limits is refused before it is parsed; a parse past the time limit has its thread
 * stopped. Either way the page is reported unread (a PageReadError) and the job goes on. The
 * threads start on the first page, not before.
 */
export class HtmlPool {
  readonly #threads: number
  readonly #timeoutMs: number
  readonly #limits: HtmlLimits
  #pool: Piscina<HtmlTask, HtmlTaskResult> | null = null
  #closed = false

  constructor (options: HtmlPoolOptions = {}) {
    this.#threads = options.threads === undefined || options.threads === 0 ? availableParallelism() : options.threads
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#limits = { maxDepth: options.maxDepth ?? 256, maxElements: options.maxElements ?? 50_000 }
  }

  /** The limits that change what a page's text is (part of a cached page's key). */
  get settings (): string {
    return `max_depth=${this.#limits.maxDepth},max_elements=${this.#limits.maxElements}`
  }

  /** The page's article and links; `address` (the URL asked for) names the page in a PageReadError. */
  async extract (body: Buffer, pageUrl: string, address: string, signal: AbortSignal): Promise<ExtractedPage> {
    const pool = this.#open()
    const overtime = new AbortController()
    const { port1: started, port2: startedInWorker } = new MessageChannel()
    let timer: NodeJS.Timeout | undefined
    started.once('message', () => { timer = setTimeout(() => overtime.abort(), this.#timeoutMs) })
    try {
      const result = await pool.run({ body, pageUrl, limits: this.#limits, started: startedInWorker }, {
        signal: AbortSignal.any([signal, overtime.signal]),
        transferList: [startedInWorker]
      })
      if ('refused' in result) throw new PageReadError(address, result.refused)
      return result.page
    } catch (err) {
      if (err instanceof PageReadError) throw err
      if (signal.aborted) throw signal.reason
      if (overtime.signal.aborted) throw new PageReadError(address, `the page took too long to read (more than ${this.#timeoutMs} ms)`)
      throw new PageReadError(address, `the page could not be parsed: ${(err as Error).message}`)
    } finally {
      clearTimeout(timer)
      started.close()
    }
  }

  /** Stops every thread; pages being parsed are abandoned. */
  async close (): Promise<void> {
    this.#closed = true
    const pool = this.#pool
    this.#pool = null
    await pool?.destroy()
  }

  #open (): Piscina<HtmlTask, HtmlTaskResult> {
    if (this.#closed) throw new Error('the HTML pool is closed')
    this.#pool ??= new Piscina<HtmlTask, HtmlTaskResult>({
      filename: WORKER,
      minThreads: 0,
      maxThreads: this.#threads,
      idleTimeout: IDLE_MS,
      niceIncrement: NICE_INCREMENT
    })
    return this.#pool
  }
}
