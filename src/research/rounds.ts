import type { DepthName } from '../schemas/job.js'
import { type Finding, findingsFor, isGrounded, missing, unknownNames, weighTerms } from './evidence.js'
import { alternativesOf } from './lexicon.js'
import { EVERYDAY_RANK, englishRank } from './english-words.js'
import type { PassageCollection, ScoredPassage } from './passage-collection.js'
import { type Question, type QuestionPart, pointsAtPartBefore } from './question.js'

/** What each depth may do: rounds of search, passages taken per query, and how it digs. */
export interface DepthPlan {
  /** Most rounds of search, read, reflect. */
  rounds: number
  /** Passages taken from each query's results. */
  hits: number
  /** Each part of a multi-part question searched on its own from the first round. */
  partQueries: boolean
  /** Follow-up queries built from the words of the best passages (what the topic is called there). */
  feedback: boolean
  /** Documents read whole, the best answering ones first: a passage found is read with the rest of its document. */
  readWhole: number
}

export const DEPTH_PLANS: Record<DepthName, DepthPlan> = {
  quick: { rounds: 1, hits: 6, partQueries: false, feedback: false, readWhole: 0 },
  standard: { rounds: 2, hits: 6, partQueries: true, feedback: false, readWhole: 0 },
  deep: { rounds: 4, hits: 8, partQueries: true, feedback: true, readWhole: 2 }
}

const FEEDBACK_TERMS = 3
/** The rarer words are searched alone when leaving out the everyday ones leaves out this many: one is the same search again. */
const MIN_LEFT_OUT = 2

/** One part of the question, with what the research found for it. */
export interface PartFindings {
  part: QuestionPart
  /** Every sentence of the passages found, weighed as an answer to this part, best first. */
  findings: Finding[]
  /** Whether some passage answers it (see isGrounded) and every name it asks about is known. */
  grounded: boolean
  /** Names it asks about that no passage holds (see unknownNames). */
  unknown: string[]
}

/** A search to run: what a person would read in the progress step, and the stems searched. */
export interface Query { label: string, terms: string[] }

/**
 * The research loop over a collection of passages: search, weigh what was found against each
 * part of the question, find what is still lacking (parts no passage answers, words of a part no
 * passage holds), and search again with follow-up queries, until nothing is lacking or the
 * depth's rounds are spent. Pages read between rounds join the collection through `refresh`.
 */
export class ResearchRounds {
  readonly #question: Question
  readonly #plan: DepthPlan
  readonly #found = new Map<number, ScoredPassage>()
  readonly #searched = new Set<string>()
  readonly queries: string[] = []
  rounds = 0

  constructor (question: Question, depth: DepthName) {
    this.#question = question
    this.#plan = DEPTH_PLANS[depth]
  }

  get maxRounds (): number {
    return this.#plan.rounds
  }

  /** The first round's searches: the question as asked, its parts, and extra ones (planned sub-questions). */
  firstQueries (collection: PassageCollection, extra: string[] = []): Query[] {
    const queries: Query[] = [{ label: this.#question.text, terms: this.#question.terms }]
    // Words no passage holds ("quota") find nothing: the question again, with the words the sources use for them ("limit").
    const theirWords = [...new Set(inSourcesWords(this.#question.terms, collection))].filter((t) => !this.#question.terms.includes(t))
    if (theirWords.length > 0) queries.push({ label: `${this.#question.text} (${theirWords.map((t) => collection.wordFor(t)).join(', ')})`, terms: [...this.#question.terms, ...theirWords] })
    // Its rarer words alone: the search multiplies a passage's score by how many of the question's words it holds, so
    // one holding two rare ones ("progress", "percentage") is otherwise outranked by ones holding its everyday words ("job", "back").
    const held = this.#question.terms.filter((t) => collection.holds(t))
    const rare = held.filter((t) => englishRank(t) > EVERYDAY_RANK)
    if (rare.length >= 2 && held.length - rare.length >= MIN_LEFT_OUT) queries.push({ label: rare.map((t) => collection.wordFor(t)).join(' '), terms: rare })
    if (this.#plan.partQueries && this.#question.parts.length > 1) {
      for (const part of this.#question.parts) queries.push({ label: part.text, terms: [...part.terms, ...part.context.slice(0, 2)] })
    }
    for (const text of extra) queries.push({ label: text, terms: [] })
    return queries
  }

  /** Runs one round of searches over the collection; returns how many passages were new. */
  search (collection: PassageCollection, queries: Query[]): number {
    this.rounds++
    let added = 0
    for (const query of queries) {
      const key = keyOf(query)
      if (this.#searched.has(key)) continue
      this.#searched.add(key)
      this.queries.push(query.label)
      const hits = query.terms.length > 0 ? collection.searchStems(query.terms, this.#plan.hits) : collection.search(query.label, this.#plan.hits)
      for (const hit of hits) {
        const known = this.#found.get(hit.passage.id)
        if (known === undefined) added++
        if (known === undefined || known.score < hit.score) this.#found.set(hit.passage.id, hit)
      }
    }
    return added
  }

  /** Each part weighed against everything found so far. */
  weigh (collection: PassageCollection): PartFindings[] {
    const found = [...this.#found.values()]
    let before: string[] = []
    return this.#question.parts.map((part) => {
      const findings = findingsFor(part, found, collection)
      // "...Kafka, and how do I make it retry?", "...the World Cup final, and what was the score?": the
      // thing it points back at is one the sources never mention, so what they say of "retry" is not about it.
      const own = unknownNames(part, collection)
      const unknown = pointsAtPartBefore(part) ? [...new Set([...own, ...before])] : own
      before = unknown
      return { part, findings, grounded: unknown.length === 0 && findings.some(isGrounded), unknown }
    })
  }

  /**
   * What the next round searches for: a part no passage answers, with the other words people
   * use for its terms; words of a part that no answering passage holds; at depth, the words the
   * best passages use for the topic, and the passages that follow an answer. Empty: nothing
   * left to look for.
   */
  followUps (collection: PassageCollection, weighed: PartFindings[]): Query[] {
    if (this.rounds >= this.#plan.rounds) return []
    const queries: Query[] = []
    const label = (part: QuestionPart, stems: string[]): string => `${part.text} (${stems.map((s) => collection.wordFor(s)).join(', ')})`
    for (const { part, findings, grounded } of weighed) {
      const terms = weighTerms(part, collection)
      if (!grounded) {
        // Nothing answers it yet: its words in other words, then its rarest words one at a time.
        const others = terms.flatMap((t) => t.alternatives.slice(0, 2))
        if (others.length > 0) queries.push({ label: label(part, others), terms: [...part.terms, ...others] })
        const rarest = terms.filter((t) => t.own).sort((a, b) => b.weight - a.weight).slice(0, 2)
        for (const term of rarest) queries.push({ label: collection.wordFor(term.stem), terms: [term.stem] })
        continue
      }
      const answering = findings.filter(isGrounded)
      const held = new Set(answering.flatMap((f) => [...collection.stemsOf(f.sentence.passage)]))
      const lacking = missing(terms.filter((t) => t.own), held)
      if (lacking.length > 0) queries.push({ label: label(part, lacking.map((t) => t.stem)), terms: [...lacking.map((t) => t.stem), ...part.terms.slice(0, 2)] })
      if (this.#plan.feedback) {
        const feedback = feedbackTerms(answering.slice(0, 3), collection, new Set([...part.terms, ...part.context]))
        if (feedback.length > 0) queries.push({ label: label(part, feedback), terms: [...part.terms, ...feedback] })
      }
    }
    return queries.filter((query) => !this.#searched.has(keyOf(query)))
  }

  /** Reads whole the best documents that answer a part (deep): what their other passages say joins the findings. */
  readOn (collection: PassageCollection, weighed: PartFindings[]): number {
    if (this.#plan.readWhole === 0) return 0
    let added = 0
    for (const { findings } of weighed) {
      const documents = [...new Set(findings.filter(isGrounded).map((f) => f.sentence.passage.path))].slice(0, this.#plan.readWhole)
      for (const passage of collection.passages.filter((p) => documents.includes(p.path))) {
        if (this.#found.has(passage.id)) continue
        // Read on, not searched: it ranks below every passage a query found.
        this.#found.set(passage.id, { passage, score: 0.1 })
        added++
      }
    }
    return added
  }
}

/** The terms, each word no passage holds followed by its lexicon words that passages do hold. */
function inSourcesWords (terms: string[], collection: PassageCollection): string[] {
  return terms.flatMap((term) => collection.holds(term) ? [term] : [term, ...alternativesOf(term).filter((a) => collection.holds(a))])
}

/** What makes two searches the same search: their terms, or their words when they have no terms. */
function keyOf (query: Query): string {
  return query.terms.length > 0 ? [...new Set(query.terms)].sort().join(' ') : query.label.toLowerCase()
}

/** The words the best passages use most that the question does not: what the topic is called there. */
function feedbackTerms (best: Finding[], collection: PassageCollection, asked: Set<string>): string[] {
  const counts = new Map<string, number>()
  for (const finding of best) {
    for (const s of collection.stemsOf(finding.sentence.passage)) {
      if (!asked.has(s) && s.length > 2) counts.set(s, (counts.get(s) ?? 0) + collection.idf(s))
    }
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, FEEDBACK_TERMS).map(([term]) => term)
}
