import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import MiniSearch from 'minisearch'
import type { DepthName } from '../schemas/job.js'
import { type Corpus, type Passage, loadCorpus } from './corpus.js'
import { isStopword, keyTerms, stem, tokenize, truncate } from './text.js'

/** Retrieval passes and passages kept, by depth. */
export const DEPTH_PLAN: Record<DepthName, { passes: number, keep: number }> = {
  quick: { passes: 1, keep: 4 },
  standard: { passes: 3, keep: 6 },
  deep: { passes: 5, keep: 9 }
}

const HITS_PER_PASS = 12
const FEEDBACK_TERMS_PER_PASS = 4

export interface ScoredPassage { passage: Passage, score: number }

export interface Retrieval {
  /** Passages found, with their summed, per-pass normalised scores (best first). */
  scored: ScoredPassage[]
  documents: number
  /** Stems the feedback passes added to the question's. */
  expansionTerms: string[]
}

/** Reports a step; `fraction` is how much of the retrieval is done, 0-1. */
export type StepReporter = (fraction: number, step: string) => Promise<void>

/**
 * Retrieval over a local document collection, offline. BM25 (MiniSearch) in 1, 3 or 5 passes:
 * the question itself, its key terms, then terms fed back from the best passages found so far.
 * The index is built once and shared by every job; a failed build is retried by the next job.
 */
export class CorpusRetriever {
  readonly #corpusDir: string
  #index: Promise<{ corpus: Corpus, search: MiniSearch<Passage> }> | null = null

  constructor (corpusDir: string) {
    this.#corpusDir = corpusDir
  }

  async retrieve (query: string, depth: DepthName, signal: AbortSignal, step: StepReporter): Promise<Retrieval> {
    const plan = DEPTH_PLAN[depth]
    await step(0, 'Indexing the corpus')
    const { corpus, search } = await this.#loadIndex()
    signal.throwIfAborted()
    await step(0.1, `Indexed ${corpus.documents} documents (${corpus.passages.length} passages)`)

    const questionTerms = keyTerms(query)
    const scores = new Map<number, number>()
    const usedTerms = new Set(questionTerms)
    for (let pass = 1; pass <= plan.passes; pass++) {
      signal.throwIfAborted()
      const passQuery = pass === 1 ? query : [...questionTerms, ...feedbackTerms(scores, corpus, usedTerms)].join(' ')
      await step(0.1 + (0.9 * (pass - 1)) / plan.passes, `Pass ${pass}/${plan.passes}: searching for "${truncate(passQuery, 80)}"`)
      const hits = search.search(passQuery, { combineWith: pass === 2 && questionTerms.length > 1 ? 'AND' : 'OR' }).slice(0, HITS_PER_PASS)
      const top = hits[0]?.score ?? 0
      const weight = pass === 1 ? 1 : 0.7
      for (const hit of hits) scores.set(hit.id as number, (scores.get(hit.id as number) ?? 0) + weight * (hit.score / top))
      await yieldToEventLoop()
    }
    signal.throwIfAborted()
    return {
      scored: [...scores.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([id, score]) => ({ passage: corpus.passages[id] as Passage, score })),
      documents: corpus.documents,
      expansionTerms: [...usedTerms].filter((term) => !questionTerms.includes(term))
    }
  }

  #loadIndex (): Promise<{ corpus: Corpus, search: MiniSearch<Passage> }> {
    this.#index ??= (async () => {
      const corpus = await loadCorpus(this.#corpusDir)
      const search = newPassageIndex()
      search.addAll(corpus.passages)
      return { corpus, search }
    })().catch((err: unknown) => {
      this.#index = null
      throw err
    })
    return this.#index
  }
}

/** One BM25 index configuration for the corpus and for the pages a job reads. */
export function newPassageIndex (): MiniSearch<Passage> {
  return new MiniSearch<Passage>({
    fields: ['text', 'heading', 'title'],
    storeFields: [],
    tokenize,
    // Stopwords out, stems in: applied alike to documents and queries.
    processTerm: (term) => (isStopword(term) ? null : stem(term)),
    searchOptions: { boost: { heading: 2, title: 1.5 }, prefix: (term) => term.length > 4, fuzzy: 0.15 }
  })
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
