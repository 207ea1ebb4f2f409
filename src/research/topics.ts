import { type Finding, GROUNDED, coverage, isGrounded, weighTerms } from './evidence.js'
import type { PassageCollection } from './passage-collection.js'
import { type Question, wholeQuestion } from './question.js'
import type { PartFindings } from './rounds.js'

/** A document is on a part's topic when its passage holds this share of what the best document's does... */
const TOPICAL = 0.75
/** ...or this share, with a word of the part the best one lacks. */
const COMPLEMENT = 0.5
/** ...and, for a question of several parts, this share of what the best document holds of the whole question. */
const QUESTION_TOPICAL = 0.5

/**
 * What each part may be answered from: the findings of documents on its topic, and on the
 * question's. Both writers take their sentences and passages from here only, so a document that
 * shares a word or two with the question is never cited, whoever writes.
 */
export function topicalFindings (question: Question, weighed: PartFindings[], collection: PassageCollection): Map<PartFindings, Finding[]> {
  const aboutQuestion = questionTopics(question, weighed, collection)
  return new Map(weighed.map((p) => {
    const findings = onTopic(p, collection)
    const onQuestion = findings.filter((f) => aboutQuestion.has(f.sentence.passage.path))
    // A part whose every answer is off the question's topic keeps its own: it was asked.
    return [p, onQuestion.some(isGrounded) ? onQuestion : findings]
  }))
}

/**
 * The findings of a part that come from documents on its topic: documents with a passage that
 * speaks to the part (onPoint) and holds nearly as much of it as the best one does, or at least half
 * as much with a word of the part the best one lacks ("retry with backoff and jitter": the page on
 * jitter).
 */
function onTopic ({ part, findings }: PartFindings, collection: PassageCollection): Finding[] {
  const best = new Map<string, Finding>()
  for (const f of findings) {
    const known = best.get(f.sentence.passage.path)
    if (f.onPoint && (known === undefined || f.passageCoverage > known.passageCoverage)) best.set(f.sentence.passage.path, f)
  }
  const top = [...best.values()].sort((a, b) => b.passageCoverage - a.passageCoverage)[0]
  if (top === undefined) return []
  const words = weighTerms(part, collection).filter((t) => t.own && !t.everyday)
  const topHolds = new Set(words.filter((t) => holds(collection, top, t.stem, t.alternatives)).map((t) => t.stem))
  const topical = new Set([...best.entries()]
    .filter(([, f]) => f.passageCoverage >= GROUNDED.passage && (f.passageCoverage >= TOPICAL * top.passageCoverage ||
      (f.passageCoverage >= COMPLEMENT * top.passageCoverage && words.some((t) => !topHolds.has(t.stem) && holds(collection, f, t.stem, t.alternatives)))))
    .map(([path]) => path))
  return findings.filter((f) => f.onPoint && topical.has(f.sentence.passage.path))
}

/** Whether a finding's passage holds a word or one that stands for it. */
function holds (collection: PassageCollection, finding: Finding, stem: string, alternatives: string[]): boolean {
  const stems = collection.stemsOf(finding.sentence.passage)
  return stems.has(stem) || alternatives.some((a) => stems.has(a))
}

/**
 * The documents on the question's topic as a whole: a part that leans on the rest of the question
 * ("how can I put a cap on it") must not bring in a document about something else that shares its
 * one word. A document is on topic when its best passage holds at least half of what the best
 * document's does of every word of the question.
 */
function questionTopics (question: Question, weighed: PartFindings[], collection: PassageCollection): Set<string> {
  if (weighed.length < 2) return new Set(weighed.flatMap((p) => p.findings.map((f) => f.sentence.passage.path)))
  const whole = weighTerms(wholeQuestion(question), collection)
  const best = new Map<string, number>()
  for (const { findings } of weighed) {
    for (const { sentence: { passage } } of findings) best.set(passage.path, Math.max(best.get(passage.path) ?? 0, coverage(whole, collection.stemsOf(passage))))
  }
  const top = Math.max(0, ...best.values())
  return new Set([...best.entries()].filter(([, c]) => c >= QUESTION_TOPICAL * top).map(([path]) => path))
}
