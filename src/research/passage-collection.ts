import MiniSearch from 'minisearch'
import type { Passage } from './corpus.js'
import { englishRank } from './english-words.js'
import { alternativesOf } from './lexicon.js'
import { isStopword, sentences, stem, tokenize } from './text.js'

export interface ScoredPassage { passage: Passage, score: number }

export interface Sentence {
  passage: Passage
  /** Its place in the passage, 0 first. */
  position: number
  text: string
  stems: Set<string>
}

/**
 * Passages made searchable: a BM25 index (MiniSearch), each passage's sentences and stems, and
 * how many passages hold each stem (for weighing a question's words by how rare they are). A
 * job's pages are a collection of their own on top of the corpus's (`base`), which is indexed
 * once and shared by every job: searched together, counted together, never indexed again.
 */
export class PassageCollection {
  readonly passages: Passage[]
  readonly #base: PassageCollection | null
  readonly #index: MiniSearch<Passage>
  readonly #byId = new Map<number, Passage>()
  readonly #sentences = new Map<number, Sentence[]>()
  readonly #stems = new Map<number, Set<string>>()
  readonly #passagesWith = new Map<string, number>()
  readonly #forms = new Map<string, string[]>()
  #abbreviated: Map<string, string | null> | null = null
  /** The first word seen for each stem, to show a stem as people write it. */
  readonly #words = new Map<string, string>()

  constructor (passages: Passage[], base: PassageCollection | null = null) {
    this.#base = base
    this.passages = base === null ? passages : [...base.passages, ...passages]
    this.#index = newPassageIndex()
    this.#index.addAll(passages)
    for (const passage of passages) {
      for (const token of tokenize(`${passage.heading} ${passage.text}`)) if (!isStopword(token)) this.#words.set(stem(token), this.#words.get(stem(token)) ?? token)
      this.#byId.set(passage.id, passage)
      // What a passage says is its sentences: a page's list of links or a table is not.
      const stems = passageStems(passage, this.sentencesOf(passage))
      this.#stems.set(passage.id, stems)
      for (const s of stems) this.#passagesWith.set(s, (this.#passagesWith.get(s) ?? 0) + 1)
    }
  }

  /** Inverse passage frequency: a word in few passages says more about what a passage is about. */
  idf (termStem: string): number {
    return Math.log(1 + this.passages.length / Math.max(0.5, this.#count(termStem)))
  }

  /**
   * Stems the collection holds that are a form of one it does not: the word without its "un"
   * ("unstuck": "stuck"), a longer word that contains it ("fsync": "appendfsync"), or the hyphenated
   * word it abbreviates ("sse": "server-sent", see #abbreviations). Empty when
   * there is none. Remembered: a question's unknown words come back in every round.
   */
  formsOf (termStem: string): string[] {
    let forms = this.#forms.get(termStem)
    if (forms === undefined) {
      forms = this.#base === null ? [] : [...this.#base.formsOf(termStem)]
      if (!this.holds(termStem)) {
        const bare = /^un-?(.{4,})$/.exec(termStem)?.[1]
        if (bare !== undefined && !forms.includes(bare) && (this.#passagesWith.has(bare) || alternativesOf(bare).some((a) => this.#passagesWith.has(a)))) forms.push(bare)
        if (termStem.length >= 5) for (const known of this.#passagesWith.keys()) if (known.length > termStem.length && known.includes(termStem) && !forms.includes(known)) forms.push(known)
        // Not a common word: "tim" or "pit" is no one's abbreviation of a compound.
        const compound = /^[a-z]{2,5}$/.test(termStem) && englishRank(termStem) > COMMON_RANK ? this.#abbreviations().get(termStem) : undefined
        if (typeof compound === 'string' && !forms.includes(compound)) forms.push(compound)
      }
      this.#forms.set(termStem, forms)
    }
    return forms
  }

  /**
   * Hyphenated words by the stem of their initials, alone or with the word after them ("sse":
   * "server-sent" of "Server-sent events", "ca" (of "cas"): "compare-and-set"), as people
   * abbreviate them when the sources spell them out; null where two compounds share the initials.
   * Only compounds its sentences hold. Built on first use, from this collection's own passages.
   */
  #abbreviations (): Map<string, string | null> {
    if (this.#abbreviated !== null) return this.#abbreviated
    const found = new Map<string, string | null>()
    const note = (initials: string, compound: string): void => {
      if (initials.length < 3) return
      const known = found.get(stem(initials))
      found.set(stem(initials), known === undefined || known === compound ? compound : null)
    }
    for (const passage of this.#byId.values()) {
      // Whole words only (no match starting inside "k8s-native"), which also keeps the scan linear on a page's long runs of letters.
      for (const match of `${passage.heading}. ${passage.text}`.toLowerCase().matchAll(/(?<![\p{L}\p{N}-])(\p{L}+(?:-\p{L}+)+)(?:[ \t]+(\p{L}+))?/gu)) {
        const compound = stem(match[1] as string)
        if (!this.#passagesWith.has(compound)) continue
        const initials = (match[1] as string).split('-').map((part) => part[0]).join('')
        note(initials, compound)
        const next = match[2]
        if (next !== undefined && !isStopword(next)) note(initials + next.charAt(0), compound)
      }
    }
    this.#abbreviated = found
    return found
  }

  /** A word of the collection whose stem this is ("lease" for "leas"); the stem itself when none. */
  wordFor (termStem: string): string {
    return this.#words.get(termStem) ?? this.#base?.wordFor(termStem) ?? termStem
  }

  /** Whether any passage holds the stem. */
  holds (termStem: string): boolean {
    return this.#passagesWith.has(termStem) || (this.#base?.holds(termStem) ?? false)
  }

  /** Passages that match `query`, best first, the best of each collection scaled to 1. */
  search (query: string, limit: number): ScoredPassage[] {
    if (tokenize(query).every(isStopword)) return []
    return this.#merged(this.#base?.search(query, limit) ?? [], scaled(this.#index.search(query, { combineWith: 'OR' }), this.#byId), limit)
  }

  /** Passages that match stems already made (a follow-up query's terms), best first, the best of each collection 1. */
  searchStems (stems: string[], limit: number): ScoredPassage[] {
    const terms = [...new Set(stems)].filter((s) => s.length > 0)
    if (terms.length === 0) return []
    const own = this.#index.search(terms.join(' '), { combineWith: 'OR', tokenize: (text) => text.split(' '), processTerm: (term) => term })
    return this.#merged(this.#base?.searchStems(stems, limit) ?? [], scaled(own, this.#byId), limit)
  }

  /** The stems of a passage's title, heading and sentences. */
  stemsOf (passage: Passage): Set<string> {
    return this.#stems.get(passage.id) ?? this.#base?.stemsOf(passage) ?? stemsOf(`${passage.title} ${passage.heading} ${passage.text}`)
  }

  sentencesOf (passage: Passage): Sentence[] {
    if (!this.#byId.has(passage.id) && this.#base !== null) return this.#base.sentencesOf(passage)
    let found = this.#sentences.get(passage.id)
    if (found === undefined) {
      found = sentences(passage.text.replace(/^\s*(?:[-*]|\d+\.)\s+/gm, ''))
        // A sentence ends like one and is more than a word or two ("Averages hide outliers." is one): a list of link
        // texts or a table row is not something to quote.
        .filter((text) => text.length >= 20 && !text.startsWith('|') && !text.startsWith('```') && /[.!?:;]["')\]`*_]*$/.test(text))
        .map((text, position) => ({ passage, position, text, stems: stemsOf(text) }))
      this.#sentences.set(passage.id, found)
    }
    return found
  }

  #count (termStem: string): number {
    return (this.#passagesWith.get(termStem) ?? 0) + (this.#base === null ? 0 : this.#base.#count(termStem))
  }

  #merged (base: ScoredPassage[], own: ScoredPassage[], limit: number): ScoredPassage[] {
    return [...base, ...own].sort((a, b) => b.score - a.score || a.passage.id - b.passage.id).slice(0, limit)
  }
}

/** The ten thousand most frequent words of spoken English are words, not abbreviations (the stem "ca" of "CAS" ranks past them). */
const COMMON_RANK = 10_000

/** Search hits as passages, scores scaled so the best is 1. */
function scaled (hits: Array<{ id: unknown, score: number }>, byId: Map<number, Passage>): ScoredPassage[] {
  const top = hits[0]?.score ?? 0
  return hits.map((hit) => ({ passage: byId.get(hit.id as number) as Passage, score: hit.score / top }))
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

/** The stems of a text's words, stopwords left out. */
export function stemsOf (text: string): Set<string> {
  return new Set(tokenize(text).filter((t) => !isStopword(t)).map(stem))
}

/**
 * The stems of a passage's title, heading and sentences: those of its sentences, already made,
 * with the title's and the heading's (tokenizing the passage once more was a sixth of the main
 * thread's work on a job's pages). Tokens never span the space between the parts but for a
 * number and its percent sign ("80" + "% of", "80%" + "5 nodes"): where a part ends in a digit or
 * a sign, the parts are read as one text, as they always were.
 */
function passageStems (passage: Passage, said: Sentence[]): Set<string> {
  const parts = [passage.title, passage.heading, ...said.map((s) => s.text)]
  if (parts.some((part) => /[\d%]$/.test(part.trimEnd()))) return stemsOf(parts.join(' '))
  const stems = new Set([...stemsOf(passage.title), ...stemsOf(passage.heading)])
  for (const sentence of said) for (const s of sentence.stems) stems.add(s)
  return stems
}
