import type { DepthName, ResearchOptionsData, SearchedData } from '../schemas/job.js'
import { resolveOptions } from '../schemas/options.js'
import type { Passage } from './corpus.js'
import type { CorpusRetriever } from './corpus-retriever.js'
import { PassageCollection } from './passage-collection.js'
import { PermanentError, type Report, type ResearchEngine, type ResearchRequest, type RunContext } from './engine.js'
import type { DroppedClaim } from './citation-check.js'
import { planSubQuestions, reflectOnGaps, writeWithLlm, writerSources } from './llm-writer.js'
import { topicalFindings } from './topics.js'
import type { ChatModel } from './providers/llm.js'
import { NO_WEB_SEARCH, type WebSearch } from './providers/web-search.js'
import { analyseQuestion } from './question.js'
import type { PageReader } from './reader/page-reader.js'
import { Reading, type ToRead } from './reading.js'
import { describeSearch, writeReport } from './report-writer.js'
import { type PartFindings, type Query, ResearchRounds } from './rounds.js'
import { truncate } from './text.js'
import { type Prices, UsageMeter } from './usage.js'
import { durableModel, durableReader, durableSearch } from './durable-sources.js'
import { loadEnglishRanks } from './english-words.js'

/** Sub-questions planned by the LLM, and web searches made at first, by depth. */
const QUERIES_BY_DEPTH: Record<DepthName, number> = { quick: 1, standard: 3, deep: 4 }
/** Link hops followed from the pages given or found. */
const HOPS_BY_DEPTH: Record<DepthName, number> = { quick: 0, standard: 1, deep: 2 }
/** Follow-up web searches a round may make (the model's gap queries). */
const WEB_FOLLOW_UPS = 2
/** Searches named in a progress step; the rest are counted. */
const STEP_ITEMS = 4
/** Reading stops at this share of max_duration_s, leaving the rest for ranking and writing. */
const READING_SHARE = 0.8

export interface DeepResearchEngineOptions {
  corpus: CorpusRetriever
  reader: PageReader
  /** Null: the `web` source is unavailable. */
  webSearch: WebSearch | null
  /** Null: sub-questions are not planned, gaps are found without a model and the report is extractive. */
  llm: ChatModel | null
  /** Most LLM tokens (input + output) one job may spend. */
  tokenBudget: number
  prices: Prices
  /** Where a person opens a corpus document (its path in the corpus folder); default `corpus/<path>`. */
  corpusLink?: (path: string) => string
}

/** What one run works with besides the rounds: its request, options, meters, providers, pages and collection. */
interface Run {
  request: ResearchRequest
  llm: ChatModel | null
  webSearch: WebSearch | null
  options: ResearchOptionsData
  usage: UsageMeter
  context: RunContext
  reading: Reading
  corpus: PassageCollection | null
  collection: PassageCollection
}

/**
 * Research over the sources a job asks for: the local corpus (offline), the pages it lists
 * and a web search. The question is split into its parts; rounds of search, read and reflect
 * look for what each part still lacks, up to the depth's budget; the report answers each part
 * first, from the passages that bear on it, or says plainly that the sources do not. With an
 * LLM configured, the model also plans sub-questions, names the gaps and writes the report,
 * whose every sentence is checked against the passage it cites.
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

  /** The English word ranks and the corpus's index (ResearchEngine.prepare); rejects when the corpus cannot be read. */
  async prepare (): Promise<void> {
    loadEnglishRanks()
    await this.#options.corpus.load()
  }

  async close (): Promise<void> {
    await this.#options.reader.close()
  }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    const options = request.options ?? resolveOptions({ depth: request.depth })
    const problem = this.unavailable(options)
    if (problem !== null) throw new PermanentError(problem)
    const { signal } = context
    // Every page read, search and LLM call of this run is a step done once per job (RunContext.step).
    const llm = this.#options.llm === null ? null : durableModel(this.#options.llm, context)
    const webSearch = this.#options.webSearch === null ? null : durableSearch(this.#options.webSearch, context)
    const usage = new UsageMeter(this.#options.tokenBudget)
    const question = analyseQuestion(request.query)
    const rounds = new ResearchRounds(question, request.depth)

    const planned: string[] = []
    if (llm !== null && request.depth !== 'quick') {
      await context.progress(3, `Planning sub-questions with ${llm.model}`)
      planned.push(...await planSubQuestions(llm, request.query, QUERIES_BY_DEPTH[request.depth] - 1, usage, signal))
      await context.progress(8, planned.length > 0 ? `Planned ${planned.length} sub-questions: ${planned.map((q) => `"${truncate(q, 60)}"`).join(', ')}` : 'Researching the question as asked (no sub-questions within the token budget)')
    }

    let corpus: PassageCollection | null = null
    let documents = 0
    if (options.sources.includes('corpus')) {
      await context.progress(10, 'Indexing the corpus')
      const loaded = await this.#options.corpus.load()
      signal.throwIfAborted()
      corpus = loaded.collection
      documents += loaded.documents
      await context.progress(12, `Indexed ${loaded.documents} documents (${corpus.passages.length} passages)`)
    }

    const reading = new Reading(durableReader(this.#options.reader, context), {
      maxSources: options.max_sources,
      readUntil: options.max_duration_s === null ? Infinity : Date.now() + options.max_duration_s * 1000 * READING_SHARE,
      hops: HOPS_BY_DEPTH[request.depth],
      question: request.query,
      usage,
      context
    })
    const queue: ToRead[] = options.urls.map((url) => ({ url, kind: 'url', title: null, hop: 0 }))
    if (webSearch !== null && options.sources.includes('web')) queue.push(...await searchWeb(webSearch, [request.query, ...planned].slice(0, QUERIES_BY_DEPTH[request.depth]), options, usage, context))
    await reading.read(queue)
    signal.throwIfAborted()
    // Failing here keeps the step a failure is reported with the one that failed: reading.
    if (corpus === null && reading.pages.length === 0 && reading.unread.length > 0) {
      throw new PermanentError(`No source could be read: ${reading.unread.map((u) => `${u.url} (${u.reason})`).join('; ')}`)
    }
    const run: Run = { request, llm, webSearch, options, usage, context, reading, corpus, collection: collect(corpus, reading) }

    const weighed = await this.#research(rounds, planned, run)
    signal.throwIfAborted()
    documents += reading.pages.length
    const { collection } = run
    const searched: SearchedData = { sources: options.sources, documents, passages: collection.passages.length, queries: rounds.queries, rounds: rounds.rounds }
    const stats = { documents_searched: documents, passages_read: collection.passages.length, duration_ms: 0, rounds: rounds.rounds }
    const corpusLink = this.#options.corpusLink ?? ((path: string) => `corpus/${path}`)
    const linkOf = (passage: Passage): string => passage.kind === 'corpus' ? corpusLink(passage.path) : passage.location
    await context.progress(88, 'Writing the report')
    let report: Report = writeReport({ question, weighed, collection, depth: request.depth, maxSources: options.max_sources, linkOf, searched, stats })
    let writer = 'extractive'
    let dropped: DroppedClaim[] = []
    if (llm !== null && report.answer?.status !== 'not_found') {
      await context.progress(92, `Writing the report with ${llm.model}`)
      const checked = await writeWithLlm(llm, question, writerSources(topicalFindings(question, weighed, collection), options.max_sources, linkOf), usage, signal)
      dropped = checked?.dropped ?? []
      if (checked?.report != null) {
        report = { ...checked.report, answer: renumberAnswer(report, checked.report.sources), searched, stats }
        writer = llm.model
      }
    }
    const spent = usage.snapshot(this.#options.prices)
    // A report says what it searched; a "not found" says it in its summary already.
    const markdown = report.answer?.status === 'not_found' ? report.markdown : `${report.markdown}\n*Searched ${describeSearch(searched)}.*\n`
    return {
      ...report,
      markdown: options.report_format === 'json' ? null : markdown,
      unread: reading.unread,
      writer,
      unsupported_claims: dropped.length,
      dropped_claims: dropped,
      stats: { ...stats, duration_ms: spent.duration_ms },
      usage: spent
    }
  }

  /**
   * The rounds: search, weigh each part against what was found, find what is lacking, search
   * again, until nothing is lacking or the depth's rounds are spent. With a model, it names the
   * gaps too, and its follow-up queries also go to the web when the job searches it.
   */
  async #research (rounds: ResearchRounds, planned: string[], run: Run): Promise<PartFindings[]> {
    const { context, usage, request, options, llm, webSearch } = run
    let queries: Query[] = rounds.firstQueries(run.collection, planned)
    let weighed: PartFindings[] = []
    // The rounds' share of the bar: after the reading (20-60) when pages are read, else all of it
    // from the corpus's index on, so a corpus-only job moves in steps, not from 12 to 82.
    const from = options.sources.some((source) => source !== 'corpus') ? 60 : 15
    const at = (done: number): number => from + Math.round(((85 - from) * done) / rounds.maxRounds)
    for (;;) {
      context.signal.throwIfAborted()
      const round = rounds.rounds + 1
      await context.progress(at(round - 1), `Round ${round}/${rounds.maxRounds}: searching for ${listed(queries.map((q) => `"${truncate(q.label, 60)}"`))}`)
      const found = rounds.search(run.collection, queries)
      await context.progress(at(round - 2 / 3), `Round ${round}/${rounds.maxRounds}: ${found} new ${found === 1 ? 'passage' : 'passages'} found; weighing them as answers`)
      weighed = rounds.weigh(run.collection)
      if (rounds.readOn(run.collection, weighed) > 0) weighed = rounds.weigh(run.collection)
      await context.progress(at(round - 1 / 3), `Round ${round}/${rounds.maxRounds}: ${describeFound(weighed)}`)
      queries = rounds.followUps(run.collection, weighed)
      const gaps = llm !== null && rounds.rounds < rounds.maxRounds ? await reflectOnGaps(llm, request.query, weighed, usage, context.signal) : []
      queries.push(...gaps.map((label) => ({ label, terms: [] })))
      if (gaps.length > 0 && webSearch !== null && options.sources.includes('web')) {
        const found = await searchWeb(webSearch, gaps.slice(0, WEB_FOLLOW_UPS), options, usage, context)
        if (await run.reading.read(found) > 0) run.collection = collect(run.corpus, run.reading)
      }
      // The last round ends the rounds' share of the bar, however many rounds the depth allowed.
      const last = queries.length === 0
      await context.progress(last ? 85 : at(round) - 1, `Round ${round}/${rounds.maxRounds}: ${describeFound(weighed)}; ${last ? 'nothing more to search for' : `${queries.length} follow-up ${queries.length === 1 ? 'search' : 'searches'}`}`)
      if (last) break
    }
    return weighed
  }
}

/** The web searches of a run, one after the other; the pages found, each once, that were not given in `urls`. */
async function searchWeb (search: WebSearch, queries: string[], options: ResearchOptionsData, usage: UsageMeter, context: RunContext): Promise<ToRead[]> {
  const found: ToRead[] = []
  const seen = new Set(options.urls)
  for (const [i, query] of queries.entries()) {
    await context.progress(15 + Math.round((5 * i) / queries.length), `Searching the web (${search.name}) ${i + 1}/${queries.length}: "${truncate(query, 80)}"`)
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

/** The passages a run searches: the pages read, on top of the corpus's shared index (never indexed again). */
function collect (corpus: PassageCollection | null, reading: Reading): PassageCollection {
  if (reading.pages.length === 0 && corpus !== null) return corpus
  return new PassageCollection(reading.passages(), corpus)
}

/** What a round found, part by part, for a progress step. */
function describeFound (weighed: PartFindings[]): string {
  const lacking = weighed.filter((p) => !p.grounded).map((p) => `"${truncate(p.part.text, 60)}"`)
  return lacking.length === 0 ? 'every part found' : `not found yet: ${listed(lacking)}`
}

/** A list for a progress step, the first few and how many more: a step is a line, not a log. */
function listed (items: string[]): string {
  return items.length <= STEP_ITEMS ? items.join(', ') : `${items.slice(0, STEP_ITEMS).join(', ')} and ${items.length - STEP_ITEMS} more`
}

/**
 * The answer's parts with the numbers of the model's report: each part keeps the documents the
 * research found answering it that the model cites too.
 */
function renumberAnswer (extractive: Report, written: Report['sources']): Report['answer'] {
  if (extractive.answer === undefined) return undefined
  const byLocation = new Map(written.map((s) => [s.path_or_url, s.id]))
  const locationOf = new Map(extractive.sources.map((s) => [s.id, s.path_or_url]))
  return {
    ...extractive.answer,
    parts: extractive.answer.parts.map((part) => ({
      ...part,
      sources: part.sources.map((n) => byLocation.get(locationOf.get(n) as string)).filter((n): n is number => n !== undefined)
    }))
  }
}
