import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import MiniSearch from 'minisearch'
import type { DepthName } from '../schemas/job.js'
import { type Corpus, type Passage, loadCorpus } from './corpus.js'
import type { Report, ResearchEngine, ResearchRequest, RunContext } from './engine.js'
import { type RankedPassage, writeReport } from './report-writer.js'
import { isStopword, keyTerms, similarity, stem, tokenize, truncate } from './text.js'

/** Retrieval passes and passages kept, by depth. */
export const DEPTH_PLAN: Record<DepthName, { passes: number, keep: number }> = {
  quick: { passes: 1, keep: 4 },
  standard: { passes: 3, keep: 6 },
  deep: { passes: 5, keep: 9 }
}

const HITS_PER_PASS = 12
const FEEDBACK_TERMS_PER_PASS = 4
const MAX_PASSAGES_PER_DOCUMENT = 3
const NEAR_DUPLICATE = 0.8

interface Index { corpus: Corpus, search: MiniSearch<Passage> }

export interface CorpusResearchEngineOptions {
  corpusDir: string
}

/**
 * Research over a local document collection, offline. BM25 retrieval (MiniSearch) in 1, 3 or
 * 5 passes: the question itself, its key terms, then terms fed back from the best passages
 * found so far. Passages are ranked across passes, de-duplicated and written into a report
 * with numbered citations.
 */
export class CorpusResearchEngine implements ResearchEngine {
  readonly name = 'corpus'
  readonly #corpusDir: string
  #index: Promise<Index> | null = null

  constructor (options: CorpusResearchEngineOptions) {
    this.#corpusDir = options.corpusDir
  }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    const started = performance.now()
    const { signal } = context
    const plan = DEPTH_PLAN[request.depth]

    await context.progress(5, 'Indexing the corpus')
    const { corpus, search } = await this.#loadIndex()
    signal.throwIfAborted()
    await context.progress(10, `Indexed ${corpus.documents} documents (${corpus.passages.length} passages)`)

    const questionTerms = keyTerms(request.query)
    const scores = new Map<number, number>()
    const usedTerms = new Set(questionTerms)
    for (let pass = 1; pass <= plan.passes; pass++) {
      signal.throwIfAborted()
      const query = pass === 1
        ? request.query
        : [...questionTerms, ...feedbackTerms(scores, corpus, usedTerms)].join(' ')
      await context.progress(10 + Math.round((70 * (pass - 1)) / plan.passes), `Pass ${pass}/${plan.passes}: searching for "${truncate(query, 80)}"`)
      const hits = search.search(query, {
        combineWith: pass === 2 && questionTerms.length > 1 ? 'AND' : 'OR'
      }).slice(0, HITS_PER_PASS)
      const top = hits[0]?.score ?? 0
      const weight = pass === 1 ? 1 : 0.7
      for (const hit of hits) {
        scores.set(hit.id as number, (scores.get(hit.id as number) ?? 0) + weight * (hit.score / top))
      }
      await yieldToEventLoop()
    }

    signal.throwIfAborted()
    await context.progress(82, `Ranking and de-duplicating ${scores.size} passages`)
    const ranked = rank(scores, corpus, plan.keep)

    signal.throwIfAborted()
    await context.progress(90, `Writing the report from ${ranked.length} passages`)
    return writeReport({
      query: request.query,
      passages: ranked,
      questionTerms,
      expansionTerms: [...usedTerms].filter((term) => !questionTerms.includes(term)),
      stats: {
        documents_searched: corpus.documents,
        passages_read: scores.size,
        duration_ms: Math.round(performance.now() - started)
      }
    })
  }

  /** Built once per engine and shared by every job; a failed build is retried by the next job. */
  #loadIndex (): Promise<Index> {
    this.#index ??= (async () => {
      const corpus = await loadCorpus(this.#corpusDir)
      const search = new MiniSearch<Passage>({
        fields: ['text', 'heading', 'title'],
        storeFields: [],
        tokenize,
        // Stopwords out, stems in: applied alike to documents and queries.
        processTerm: (term) => (isStopword(term) ? null : stem(term)),
        searchOptions: { boost: { heading: 2, title: 1.5 }, prefix: (term) => term.length > 4, fuzzy: 0.15 }
      })
      search.addAll(corpus.passages)
      return { corpus, search }
    })().catch((err: unknown) => {
      this.#index = null
      throw err
    })
    return this.#index
  }
}

/** The most frequent meaningful words of the best passages so far that no pass has used yet. */
function feedbackTerms (scores: Map<number, number>, corpus: Corpus, used: Set<string>): string[] {
  const best = [...scores.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3)
  const counts = new Map<string, number>()
  for (const [id] of best) {
    const passage = corpus.passages[id] as Passage
    for (const term of keyTerms(`${passage.heading} ${passage.text}`)) {
      if (!used.has(term)) counts.set(term, (counts.get(term) ?? 0) + tokenize(passage.text).filter((t) => stem(t) === term).length + 1)
    }
  }
  const picked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, FEEDBACK_TERMS_PER_PASS).map(([term]) => term)
  for (const term of picked) used.add(term)
  return picked
}

function rank (scores: Map<number, number>, corpus: Corpus, keep: number): RankedPassage[] {
  const kept: RankedPassage[] = []
  const perDocument = new Map<string, number>()
  for (const [id, score] of [...scores.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])) {
    const passage = corpus.passages[id] as Passage
    if ((perDocument.get(passage.path) ?? 0) >= MAX_PASSAGES_PER_DOCUMENT) continue
    if (kept.some((k) => similarity(k.passage.text, passage.text) >= NEAR_DUPLICATE)) continue
    kept.push({ passage, score })
    perDocument.set(passage.path, (perDocument.get(passage.path) ?? 0) + 1)
    if (kept.length === keep) break
  }
  return kept
}
