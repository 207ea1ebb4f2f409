import { type Finding, GROUNDED, coverage, weighTerms } from './evidence.js'
import type { PassageCollection } from './passage-collection.js'
import { type Question, wholeQuestion } from './question.js'
import type { PartFindings } from './rounds.js'

/** A document is on a part's topic when its passage holds this share of what the best document's does... */
const TOPICAL = 0.75
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
    // A part whose every answer is off the question's topic is not answered from them: a
    // document that shares its one word ("options", "database") is no answer to it.
    return [p, onTopic(p).filter((f) => aboutQuestion.has(f.sentence.passage.path))]
  }))
}

/**
 * The findings of a part that come from documents on its topic: documents with a passage that
 * speaks to the part (onPoint) and holds nearly as much of it as the best one does.
 */
function onTopic ({ findings }: PartFindings): Finding[] {
  const best = new Map<string, number>()
  for (const f of findings) if (f.onPoint) best.set(f.sentence.passage.path, Math.max(best.get(f.sentence.passage.path) ?? 0, f.passageCoverage))
  const top = Math.max(0, ...best.values())
  return findings.filter((f) => f.onPoint && (best.get(f.sentence.passage.path) as number) >= Math.max(GROUNDED.passage, TOPICAL * top))
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
