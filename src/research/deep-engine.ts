import type { DepthName, ResearchOptionsData } from '../schemas/job.js'
import { resolveOptions } from '../schemas/options.js'
import { type Passage, type SourceKind, splitDocument } from './corpus.js'
import { type CorpusRetriever, DEPTH_PLAN, type ScoredPassage, newPassageIndex } from './corpus-retriever.js'
import { PermanentError, type Report, type ResearchEngine, type ResearchRequest, type RunContext } from './engine.js'
import { type WriterSource, planSubQuestions, writeWithLlm } from './llm-writer.js'
import type { ChatModel } from './providers/llm.js'
import { NO_WEB_SEARCH, type WebSearch } from './providers/web-search.js'
import { PageReadError } from './reader/page-fetcher.js'
import type { PageReader, ReadPage } from './reader/page-reader.js'
import { writeReport } from './report-writer.js'
import { keyTerms, similarity, tokenize, truncate } from './text.js'
import { type Prices, UsageMeter } from './usage.js'

/** Sub-questions planned by the LLM, and web searches made, by depth. */
const QUERIES_BY_DEPTH: Record<DepthName, number> = { quick: 1, standard: 3, deep: 4 }
/** Link hops followed from the pages given or found. */
const HOPS_BY_DEPTH: Record<DepthName, number> = { quick: 0, standard: 1, deep: 2 }
const LINKS_PER_PAGE = 3
const MAX_PASSAGES_PER_DOCUMENT = 3
const NEAR_DUPLICATE = 0.8
const EXCERPT_CHARS = 1500
/**
 * Passages scoring below this share of the best one are left out: below it they were pulled in by
 * a word or two in common (measured on test/fixtures/evaluation.json: 0.25 keeps every document a
 * good answer cites and drops every off-topic one; 0.3 starts to lose the second document of
 * questions that span two).
 */
const RELEVANCE_FLOOR = 0.25
/** Reading stops at this share of max_duration_s, leaving the rest for ranking and writing. */
const READING_SHARE = 0.8

export interface DeepResearchEngineOptions {
  corpus: CorpusRetriever
  reader: PageReader
  /** Null: the `web` source is unavailable. */
  webSearch: WebSearch | null
  /** Null: sub-questions are not planned and the report is extractive. */
  llm: ChatModel | null
  /** Most LLM tokens (input + output) one job may spend. */
  tokenBudget: number
  prices: Prices
}

interface ToRead { url: string, kind: Exclude<SourceKind, 'corpus'>, title: string | null, hop: number }

/** What one reading pass works from: the pages to read, and the run's budgets and meters. */
interface ReadRun {
  queue: ToRead[]
  request: ResearchRequest
  options: ResearchOptionsData
  /** Date.now() past which nothing more is read (the time budget). */
  readUntil: number
  usage: UsageMeter
  context: RunContext
}

/**
 * Research over the sources a job asks for: the local corpus (offline), the pages it lists
 * and a web search. With an LLM configured, the question is split into sub-questions first
 * and the model writes the report from the passages read; without one the report is
 * extractive. Every source cited was read; every [n] points at a source.
 */
export class DeepResearchEngine implements ResearchEngine {
  readonly name = 'research'
  readonly #options: DeepResearchEngineOptions

  constructor (options: DeepResearchEngineOptions) {
    this.#options = options
  }

  /** Why this engine cannot run a job with these options (null when it can). */
  unavailable (options: ResearchOptionsData): string | null {
    return options.sources.includes('web') && this.#options.webSearch === null ? NO_WEB_SEARCH : null
  }

  providers (): { web_search: string | null, llm: string | null } {
    return { web_search: this.#options.webSearch?.name ?? null, llm: this.#options.llm?.model ?? null }
  }

  async close (): Promise<void> {
    await this.#options.reader.close()
  }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    const options = request.options ?? resolveOptions({ depth: request.depth })
    const problem = this.unavailable(options)
    if (problem !== null) throw new PermanentError(problem)
    const { signal } = context
    const { llm } = this.#options
    const usage = new UsageMeter(this.#options.tokenBudget)
    const readUntil = options.max_duration_s === null ? Infinity : Date.now() + options.max_duration_s * 1000 * READING_SHARE

    const queries = [request.query]
    if (llm !== null && request.depth !== 'quick') {
      await context.progress(3, `Planning sub-questions with ${llm.model}`)
      queries.push(...await planSubQuestions(llm, request.query, QUERIES_BY_DEPTH[request.depth] - 1, usage, signal))
      await context.progress(8, queries.length > 1 ? `Planned ${queries.length - 1} sub-questions: ${queries.slice(1).map((q) => `"${truncate(q, 60)}"`).join(', ')}` : 'Researching the question as asked (no sub-questions within the token budget)')
    }

    let corpusScored: ScoredPassage[] = []
    let documentsSearched = 0
    let expansionTerms: string[] = []
    if (options.sources.includes('corpus')) {
      const retrieval = await this.#options.corpus.retrieve(request.query, request.depth, signal, async (fraction, step) => {
        await context.progress(10 + Math.round(20 * fraction), step)
      })
      corpusScored = retrieval.scored
      documentsSearched += retrieval.documents
      expansionTerms = retrieval.expansionTerms
    }

    const queue: ToRead[] = options.urls.map((url) => ({ url, kind: 'url', title: null, hop: 0 }))
    if (options.sources.includes('web')) queue.push(...await this.#searchWeb(queries.slice(0, QUERIES_BY_DEPTH[request.depth]), options, usage, context))

    const { pages, unread } = await this.#read({ queue, request, options, readUntil, usage, context })
    documentsSearched += pages.length

    signal.throwIfAborted()
    const pagePassages = pages.flatMap(({ page, kind }, n) => splitDocument(page.finalUrl, page.text)
      .map((passage, i): Passage => ({ ...passage, id: 1_000_000 + n * 10_000 + i, location: page.finalUrl, kind })))
    const merged = [...normalise(corpusScored), ...normalise(scorePages(pagePassages, queries))].sort((a, b) => b.score - a.score || a.passage.id - b.passage.id)
    // Failing here keeps the step a failure is reported with the one that failed: reading.
    if (merged.length === 0 && unread.length > 0) {
      throw new PermanentError(`No source could be read: ${unread.map((u) => `${u.url} (${u.reason})`).join('; ')}`)
    }
    await context.progress(82, `Ranking ${corpusScored.length + pagePassages.length} passages`)
    const keep = Math.min(2 * options.max_sources, DEPTH_PLAN[request.depth].keep + pages.length)
    const ranked = select(merged, keep, options.max_sources)

    signal.throwIfAborted()
    await context.progress(88, llm === null ? `Writing the report from ${ranked.length} passages` : `Writing the report with ${llm.model} from ${ranked.length} passages`)
    const stats = { documents_searched: documentsSearched, passages_read: corpusScored.length + pagePassages.length, duration_ms: 0 }
    let report: Report = writeReport({ query: request.query, passages: ranked, questionTerms: keyTerms(queries.join(' ')), expansionTerms, stats })
    let writer = 'extractive'
    if (llm !== null && ranked.length > 0) {
      const written = await writeWithLlm(llm, request.query, writerSources(report, ranked), usage, signal)
      if (written !== null) {
        report = { ...written, stats }
        writer = llm.model
      }
    }
    const spent = usage.snapshot(this.#options.prices)
    return {
      ...report,
      markdown: options.report_format === 'json' ? null : report.markdown,
      unread,
      writer,
      stats: { ...stats, duration_ms: spent.duration_ms },
      usage: spent
    }
  }

  async #searchWeb (queries: string[], options: ResearchOptionsData, usage: UsageMeter, context: RunContext): Promise<ToRead[]> {
    const search = this.#options.webSearch as WebSearch
    const found: ToRead[] = []
    const seen = new Set(options.urls)
    for (const [i, query] of queries.entries()) {
      await context.progress(30 + Math.round((5 * i) / queries.length), `Searching the web (${search.name}) ${i + 1}/${queries.length}: "${truncate(query, 80)}"`)
      const hits = await search.search(query, { limit: options.max_sources, signal: context.signal })
      usage.search(search.name === 'SearXNG')
      for (const hit of hits) {
        if (seen.has(hit.url)) continue
        seen.add(hit.url)
        found.push({ url: hit.url, kind: 'web', title: hit.title, hop: 0 })
      }
    }
    return found
  }

  /**
   * Reads the queue in order (links found are appended) until max_sources fetches or the time
   * budget; returns the pages read and, for the pages the client listed, why any was not.
   */
  async #read (run: ReadRun): Promise<{ pages: Array<{ page: ReadPage, kind: ToRead['kind'] }>, unread: Array<{ url: string, reason: string }> }> {
    const { queue, request, options, readUntil, usage, context } = run
    const pages: Array<{ page: ReadPage, kind: ToRead['kind'] }> = []
    const unread: Array<{ url: string, reason: string }> = []
    const seen = new Set(queue.map((item) => item.url))
    const terms = new Set(keyTerms(request.query))
    let fetched = 0
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (fetched >= options.max_sources || Date.now() >= readUntil) {
        // Pages the client listed and did not get read are reported; search results and links are not.
        const reason = fetched >= options.max_sources ? `not read: max_sources (${options.max_sources}) reached` : 'not read: the time budget (max_duration_s) ran out'
        for (const item of [next, ...queue]) if (item.hop === 0 && item.kind === 'url') unread.push({ url: item.url, reason })
        break
      }
      fetched++
      const total = Math.min(options.max_sources, fetched + queue.length)
      await context.progress(35 + Math.round((45 * (fetched - 1)) / options.max_sources), `Reading ${fetched}/${total}: ${truncate(next.title ?? next.url, 100)}`)
      let page: ReadPage
      try {
        page = await this.#options.reader.read(next.url, context.signal)
      } catch (err) {
        if (!(err instanceof PageReadError)) throw err
        unread.push({ url: next.url, reason: err.message })
        continue
      }
      usage.page(page.bytes)
      pages.push({ page, kind: next.kind })
      if (next.hop < HOPS_BY_DEPTH[request.depth]) {
        for (const link of relevantLinks(page, terms, seen)) {
          seen.add(link.url)
          queue.push({ url: link.url, kind: next.kind, title: link.text, hop: next.hop + 1 })
        }
      }
    }
    return { pages, unread }
  }
}

/** Links whose text or address shares words with the question, best first. */
function relevantLinks (page: ReadPage, terms: Set<string>, seen: Set<string>): ReadPage['links'] {
  return page.links
    .filter((link) => !seen.has(link.url))
    .map((link) => ({ link, hits: keyTerms(`${link.text} ${new URL(link.url).pathname.replace(/[/._-]+/g, ' ')}`).filter((t) => terms.has(t)).length }))
    .filter((entry) => entry.hits > 0)
    .sort((a, b) => b.hits - a.hits)
    .slice(0, LINKS_PER_PAGE)
    .map((entry) => entry.link)
}

/** BM25 over the pages a job read, each query's scores scaled to its best hit, summed. */
function scorePages (passages: Passage[], queries: string[]): ScoredPassage[] {
  if (passages.length === 0) return []
  const index = newPassageIndex()
  index.addAll(passages)
  const byId = new Map(passages.map((p) => [p.id, p]))
  const scores = new Map<number, number>()
  for (const [i, query] of queries.entries()) {
    if (tokenize(query).length === 0) continue
    const hits = index.search(query, { combineWith: 'OR' })
    const top = hits[0]?.score ?? 0
    for (const hit of hits) scores.set(hit.id as number, (scores.get(hit.id as number) ?? 0) + (i === 0 ? 1 : 0.7) * (hit.score / top))
  }
  return [...scores.entries()].map(([id, score]) => ({ passage: byId.get(id) as Passage, score }))
}

/** Scales scores so the best is 1: the corpus and the pages read then compete on equal terms. */
function normalise (scored: ScoredPassage[]): ScoredPassage[] {
  const best = Math.max(0, ...scored.map((s) => s.score))
  return best === 0 ? [] : scored.map((s) => ({ passage: s.passage, score: s.score / best }))
}

/**
 * The best passages: none below the relevance floor, at most three per document, no
 * near-duplicates, at most `maxDocuments` documents.
 */
function select (scored: ScoredPassage[], keep: number, maxDocuments: number): ScoredPassage[] {
  const kept: ScoredPassage[] = []
  const perDocument = new Map<string, number>()
  const floor = (scored[0]?.score ?? 0) * RELEVANCE_FLOOR
  for (const entry of scored) {
    if (entry.score < floor) break
    const count = perDocument.get(entry.passage.path) ?? 0
    if (count >= MAX_PASSAGES_PER_DOCUMENT || (count === 0 && perDocument.size >= maxDocuments)) continue
    if (kept.some((k) => similarity(k.passage.text, entry.passage.text) >= NEAR_DUPLICATE)) continue
    kept.push(entry)
    perDocument.set(entry.passage.path, count + 1)
    if (kept.length === keep) break
  }
  return kept
}

/** The extractive report's numbered sources, each with the passages kept from it, for the LLM. */
function writerSources (extractive: Report, ranked: ScoredPassage[]): WriterSource[] {
  return extractive.sources.map((source) => ({
    id: source.id,
    title: source.title,
    path_or_url: source.path_or_url,
    kind: source.kind ?? 'corpus',
    snippet: source.snippet,
    score: source.score,
    excerpts: ranked.filter((r) => r.passage.location === source.path_or_url).map((r) => truncate(`${r.passage.heading}: ${r.passage.text}`, EXCERPT_CHARS))
  }))
}
