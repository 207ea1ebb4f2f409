import type { AnswerData, DepthName, SearchedData } from '../schemas/job.js'
import type { Passage } from './corpus.js'
import type { Report } from './engine.js'
import { type Finding, GROUNDED, coverage, holdsTerm, isGrounded, namesStatusCode, weighTerms } from './evidence.js'
import { type PassageCollection, type Sentence, stemsOf } from './passage-collection.js'
import { KINDS_OF_THING, type Question, type QuestionPart, pronounStandsAlone } from './question.js'
import type { PartFindings } from './rounds.js'
import { topicalFindings } from './topics.js'
import { similarity, truncate } from './text.js'

type Section = Report['sections'][number]
type Source = Report['sources'][number]

export interface ExtractiveInput {
  question: Question
  weighed: PartFindings[]
  collection: PassageCollection
  depth: DepthName
  /** Most documents cited. */
  maxSources: number
  /** Where a person opens a passage's document. */
  linkOf: (passage: Passage) => string
  searched: SearchedData
  stats: Report['stats']
}

/**
 * Sentences per part's section, and per extra section (caveats, what to do), by depth; and the
 * share of a part's terms a section's sentence holds (the summary's: GROUNDED.sentence): deep
 * reads further into the documents it answers from.
 */
const BUDGET: Record<DepthName, { perPart: number, extras: number, sectionSentence: number }> = {
  quick: { perPart: 2, extras: 0, sectionSentence: 0.25 },
  standard: { perPart: 3, extras: 2, sectionSentence: 0.25 },
  deep: { perPart: 5, extras: 3, sectionSentence: 0.2 }
}
/** Sentences this alike say the same thing: the second is left out. */
const NEAR_DUPLICATE = 0.6
/** A second summary sentence for a part of many is taken only when nearly as good as its first. */
const SECOND_ANSWER = 0.6
/** A summary sentence from another document than the answer's first is taken only when 0.7 as good: one that shares a dropped connection and a server is no answer. */
const ANOTHER_DOCUMENT = 0.7
const CAVEAT = /(?<![\w-])(?:but|however|only|not|never|lose|loses|lost|risk|cannot|weakness|unless|except|careful|beware|wrong|fails?)\b/i
const ADVICE = /^(?:enable|set|use|send|keep|give|store|retry|make|add|return|honou?r|cap|limit|configure|run|check|choose|prefer|avoid|do not|don't|treat|log|alert)\b|\bshould\b/i

/**
 * The extractive report, answer first: the summary opens with the sentence(s) that answer each
 * part of the question, chosen for the question's type; one section per part follows with what
 * else the sources say on it (and, deeper, the caveats and what to do); a part the sources do
 * not answer is said to be unanswered, and a question they do not answer at all gets a short
 * "not found" that cites nothing. No sentence appears twice; each cites the document it is from.
 * A later part whose pronoun stands alone ("how do I prevent it") keeps to the documents already
 * cited when one of them grounds it.
 */
export function writeReport (input: ExtractiveInput): Report & { answer: AnswerData } {
  const { question, weighed, depth } = input
  const title = `Research: ${truncate(question.text, 120)}`
  // What answers each part, from documents on the question's topic: a document that only shares a word or two with it is no answer.
  const topical = topicalFindings(question, weighed, input.collection)
  const answersTo = new Map(weighed.map((p) => [p, p.grounded ? (topical.get(p) as Finding[]).filter(isGrounded) : []]))
  if (![...answersTo.values()].some((answers) => answers.length > 0)) return notFound(input, title)

  const sources = new SourceList(input.linkOf, input.maxSources)
  const used: Sentence[] = []
  const take = (finding: Finding): string => {
    used.push(finding.sentence)
    return `${finding.sentence.text} [${sources.cite(finding)}]`
  }
  const fresh = (finding: Finding): boolean => sources.accepts(finding) && !used.some((s) => s === finding.sentence || similarity(s.text, finding.sentence.text) >= NEAR_DUPLICATE)

  const summary: string[] = []
  const parts: AnswerData['parts'] = []
  for (const partFindings of weighed) {
    const { part } = partFindings
    const answers = answersTo.get(partFindings) as Finding[]
    if (answers.length === 0) {
      summary.push(`The sources searched do not answer "${part.text}?".`)
      parts.push({ question: part.text, answered: false, sources: [] })
      continue
    }
    // Only sentences it may still cite: already in the summary, or fresh within max_sources.
    const citable = answers.filter((f) => used.includes(f.sentence) || fresh(f))
    // A part whose pronoun stands alone ("how do I prevent it") is answered from the documents the answer so far rests on,
    // when one of them grounds it.
    const staying = pronounStandsAlone(part) ? citable.filter((f) => sources.cites(f)) : []
    const candidates = staying.length > 0 ? staying : citable
    if (candidates.length === 0) {
      summary.push(`The sources searched do not answer "${part.text}?" within max_sources (${input.maxSources}).`)
      parts.push({ question: part.text, answered: false, sources: [] })
      continue
    }
    const cited: number[] = []
    // A side of a difference is answered by a passage on that side alone, which holds half the part's words at most
    // (too few to ground the part): any sentence of the documents on its topic.
    const onTopic = new Set((topical.get(partFindings) as Finding[]).map((f) => f.sentence.passage.path))
    const sides = part.compared.length === 2 ? partFindings.findings.filter((f) => onTopic.has(f.sentence.passage.path) && fresh(f)) : []
    for (const finding of answerTo(part, candidates, input.collection, weighed.length > 1, fresh, sides)) {
      if (!used.includes(finding.sentence)) {
        // Picked together, two sentences of documents not yet cited may not both fit within max_sources.
        if (!sources.accepts(finding)) continue
        summary.push(take(finding))
      }
      cited.push(sources.numberOf(finding))
    }
    parts.push({ question: part.text, answered: true, sources: [...new Set(cited)] })
  }

  const sections: Section[] = []
  // Sections quote only the documents the summary cites.
  const eligible = (finding: Finding): boolean => sources.cites(finding) && finding.passageCoverage >= GROUNDED.passage && finding.sentenceCoverage >= BUDGET[depth].sectionSentence && fresh(finding)
  for (const partFindings of weighed) {
    if ((answersTo.get(partFindings) as Finding[]).length === 0) continue
    const body: Finding[] = []
    for (const finding of topical.get(partFindings) as Finding[]) {
      if (body.length === BUDGET[depth].perPart) break
      if (!eligible(finding)) continue
      body.push(finding)
      used.push(finding.sentence)
    }
    if (body.length > 0) sections.push({ heading: weighed.length > 1 ? headingOf(partFindings.part) : 'In more detail', body: readingOrder(body).map(take).join(' ') })
  }
  // The caveats and what to do are those of the documents the answer already rests on (see eligible).
  for (const [heading, cue] of [['Caveats', CAVEAT], ['What to do', ADVICE]] as const) {
    if (BUDGET[depth].extras === 0 || (heading === 'What to do' && depth !== 'deep')) continue
    const body: Finding[] = []
    for (const finding of [...topical.values()].flat().sort((a, b) => b.score - a.score)) {
      if (body.length === BUDGET[depth].extras) break
      if (!cue.test(finding.sentence.text) || !eligible(finding)) continue
      body.push(finding)
      used.push(finding.sentence)
    }
    if (body.length > 0) sections.push({ heading, body: readingOrder(body).map(take).join(' ') })
  }

  const answered = parts.filter((p) => p.answered).length
  const answer: AnswerData = { status: answered === parts.length ? 'answered' : answered === 0 ? 'not_found' : 'partial', parts }
  const text = summary.join(' ')
  const list = sources.list()
  return { title, summary: text, markdown: renderMarkdown(title, text, sections, list), sections, sources: list, stats: input.stats, answer, searched: input.searched }
}

/**
 * The sentence(s) that answer one part, best first: for a difference or a choice, the best on
 * each thing compared; otherwise the best and the next two (for a part of many, the next one
 * when nearly as good; from another document, when 0.7 as good and it adds a word asked), so the answer reads as a
 * short paragraph. A best sentence already in the summary (it answered an earlier part) is
 * cited again, not repeated, and leaves room for one more.
 */
function answerTo (part: QuestionPart, grounded: Finding[], collection: PassageCollection, oneOfMany: boolean, fresh: (f: Finding) => boolean, sides: Finding[] = []): Finding[] {
  const first = grounded[0] as Finding
  const picked = [first]
  if (part.compared.length === 2) {
    for (const [i, item] of part.compared.entries()) {
      const terms = weighTerms({ ...part, terms: item, context: [] }, collection)
      // What names this item and not the other ("sliding" of "fixed window or sliding window").
      const other = new Set(part.compared[1 - i])
      // One inside the other ("Redis or Redis Cluster"): all of its words.
      const ownTerms = terms.some((t) => !other.has(t.stem)) ? terms.filter((t) => !other.has(t.stem)) : terms
      // A sentence that does not answer the part itself must hold every word naming this side ("fixed window", not "sliding window").
      const about = [...grounded.filter((f) => coverage(terms, f.sentence.stems) >= 0.5), ...sides.filter((f) => !grounded.includes(f) && coverage(ownTerms, f.sentence.stems) === 1)]
      // Best: a sentence about the thing itself, which names it first ("Eviction happens when..."),
      // also when one picked names it in passing ("..., but at-least-once delivery combined with...").
      const namesFirst = (f: Finding): boolean => coverage(ownTerms, stemsOf(f.sentence.text.split(/\s+/).slice(0, 4).join(' '))) > 0
      if (picked.some((f) => about.includes(f) && namesFirst(f))) continue
      const others = about.filter((f) => !picked.includes(f) && fresh(f))
      const best = others.find(namesFirst) ?? (picked.some((f) => about.includes(f)) ? undefined : others[0])
      if (best !== undefined) picked.push(best)
    }
    if (oneOfMany) return picked
  }
  // A best sentence that already answered an earlier part leaves room for the next best, as a lone question does.
  const bar = oneOfMany && fresh(first) ? SECOND_ANSWER * first.score : 0
  const sameDocument = (f: Finding): boolean => f.sentence.passage.path === first.sentence.passage.path
  // Asked what a server sends back and answered with a code, another document adds only a sentence on that code:
  // another code answers another situation ("202 Accepted" for a quota), another "status" is another status.
  const code = part.asksStatus && namesStatusCode(first.sentence.text) ? /\b[1-5]\d\d\b/.exec(first.sentence.text)?.[0] : undefined
  const sameCode = code === undefined ? undefined : new RegExp(`\\b${code}\\b`)
  const onTheCode = (f: Finding): boolean => sameCode === undefined || sameCode.test(f.sentence.text)
  // Another document's sentence must add a word the part itself asks about that the answer does not hold yet: the words
  // it borrows from the rest of the question are what drew in the off-topic ones (measured: docs/evaluation.md).
  const asked = weighTerms(part, collection).filter((t) => t.own && t.known && !t.everyday && !KINDS_OF_THING.has(t.stem))
  const adds = (f: Finding): boolean => asked.some((t) => holdsTerm(f.sentence.stems, t) && !picked.some((p) => holdsTerm(p.sentence.stems, t)))
  // Its best already said for an earlier part (cited again), a part still adds as many new sentences as any other.
  const room = (oneOfMany ? 2 : 3) + (fresh(first) ? 0 : 1)
  for (const f of grounded) {
    if (picked.length >= room) break
    if (picked.includes(f) || !fresh(f) || f.score < bar) continue
    if (sameDocument(f) || (onTheCode(f) && f.score >= ANOTHER_DOCUMENT * first.score && adds(f))) picked.push(f)
  }
  return picked
}

/** A part as a section's heading, with what it is about when it says nothing itself ("Why? (My jobs vanished after a restart.)"). */
function headingOf (part: QuestionPart): string {
  return part.about === undefined ? `${part.text}?` : `${part.text}? (${truncate(part.about, 100)})`
}

/** Sentences grouped by passage (in the order the passages first appear), each passage's in its own order. */
function readingOrder (findings: Finding[]): Finding[] {
  const rank = new Map<number, number>()
  for (const f of findings) if (!rank.has(f.sentence.passage.id)) rank.set(f.sentence.passage.id, rank.size)
  return [...findings].sort((a, b) => (rank.get(a.sentence.passage.id) as number) - (rank.get(b.sentence.passage.id) as number) || a.sentence.position - b.sentence.position)
}

/** The sources a report cites, numbered in order of first citation, each with the sentences quoted. */
class SourceList {
  readonly #linkOf: (passage: Passage) => string
  readonly #max: number
  readonly #byPath = new Map<string, Source & { quotes: Array<{ heading: string, text: string }> }>()

  constructor (linkOf: (passage: Passage) => string, max: number) {
    this.#linkOf = linkOf
    this.#max = max
  }

  /** Whether this finding's document is cited already. */
  cites (finding: Finding): boolean {
    return this.#byPath.has(finding.sentence.passage.path)
  }

  /** Whether a sentence of this finding's document may be cited: it already is, or there is room. */
  accepts (finding: Finding): boolean {
    return this.cites(finding) || this.#byPath.size < this.#max
  }

  cite (finding: Finding): number {
    const { passage, text } = finding.sentence
    let source = this.#byPath.get(passage.path)
    if (source === undefined) {
      source = {
        id: this.#byPath.size + 1,
        title: passage.title,
        path_or_url: passage.location,
        kind: passage.kind,
        snippet: text,
        score: Math.round(finding.score * 1000) / 1000,
        link: this.#linkOf(passage),
        quotes: []
      }
      this.#byPath.set(passage.path, source)
    }
    source.quotes.push({ heading: passage.heading, text })
    return source.id
  }

  numberOf (finding: Finding): number {
    return (this.#byPath.get(finding.sentence.passage.path) as Source).id
  }

  list (): Source[] {
    return [...this.#byPath.values()]
  }
}

/** Nothing in the sources answers the question: say so, say what was searched, cite nothing. */
function notFound (input: ExtractiveInput, title: string): Report & { answer: AnswerData } {
  const summary = `No answer found in the sources searched: ${describeSearch(input.searched)}. ` +
    'No passage covers what the question asks, so nothing is cited. Try other words, other sources (`urls`, `web`), or a deeper search.'
  const answer: AnswerData = { status: 'not_found', parts: input.weighed.map(({ part }) => ({ question: part.text, answered: false, sources: [] })) }
  return { title, summary, markdown: renderMarkdown(title, summary, [], []), sections: [], sources: [], stats: input.stats, answer, searched: input.searched }
}

/** What was searched, for a person: "the corpus (14 documents, 70 passages), with 3 searches in 2 rounds". */
export function describeSearch (searched: SearchedData): string {
  const where = [
    searched.sources.includes('corpus') ? 'the corpus' : null,
    searched.sources.includes('urls') ? 'the pages given' : null,
    searched.sources.includes('web') ? 'a web search' : null
  ].filter((w) => w !== null).join(', ')
  const plural = (n: number, word: string, words: string): string => `${n} ${n === 1 ? word : words}`
  return `${where} (${searched.documents} documents, ${searched.passages} passages), with ${plural(searched.queries.length, 'search', 'searches')} in ${plural(searched.rounds, 'round', 'rounds')}`
}

/** The report as one Markdown document: title, summary, sections, then the sources with the passages each was quoted from. */
export function renderMarkdown (title: string, summary: string, sections: Section[], sources: Source[]): string {
  // The passages each source was quoted from, by heading: the sentences themselves are in the report above.
  const source = (s: Source): string => {
    const where = s.link === undefined || s.link === s.path_or_url ? `\`${s.path_or_url}\`` : `[\`${s.path_or_url}\`](${s.link})`
    const headings = [...new Set((s.quotes ?? []).map((q) => q.heading))]
    return `${s.id}. **${s.title}**, ${where}${headings.length === 0 ? '' : `, passages used: ${headings.join('; ')}`}`
  }
  return [
    `# ${title}`,
    '## Summary',
    summary,
    ...sections.flatMap((section) => [`## ${section.heading}`, section.body]),
    ...(sources.length === 0 ? [] : ['## Sources', sources.map(source).join('\n')])
  ].join('\n\n') + '\n'
}
