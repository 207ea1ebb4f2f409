// The research evaluation (test/fixtures/evaluation.json, written by an evaluator who did not
// tune the engine) held to thresholds at every depth: the summary states the key fact, only
// on-topic documents are cited, no sentence is repeated, every unanswerable question ends
// "not found" with nothing cited, and deep covers more of a multi-part question than quick.
// `npm run eval` prints the same scores as a table (docs/evaluation.md).
import t from 'tap'
import type { DepthName } from '../../src/schemas/job.js'
import { type DepthScore, evaluate, loadEvaluationSet } from '../helpers/evaluation.js'
import { researchEngine } from '../helpers/research.js'

const set = loadEvaluationSet()
const engine = researchEngine()
t.teardown(() => engine.close())

/** What issue #23 asks of every depth. */
const TARGET = { keyFactInSummary: 0.9, onlyOnTopic: 0.95 }
/**
 * What the engine reaches today, at or above the targets, held so that it does not slip back
 * (docs/evaluation.md). Raise them as the engine improves.
 */
const FLOOR: Record<DepthName, { keyFactInSummary: number, onlyOnTopic: number, falseNotFound: number }> = {
  quick: { keyFactInSummary: 0.92, onlyOnTopic: 0.98, falseNotFound: 0 },
  standard: { keyFactInSummary: 0.91, onlyOnTopic: 0.97, falseNotFound: 0 },
  deep: { keyFactInSummary: 0.91, onlyOnTopic: 0.97, falseNotFound: 0 }
}

t.test('the evaluation set is large and varied enough to mean something', async (t) => {
  t.ok(set.answerable.length >= 40, `${set.answerable.length} answerable questions`)
  t.ok(set.unanswerable.length >= 10, `${set.unanswerable.length} unanswerable questions`)
  t.ok(set.answerable.filter((q) => q.parts !== undefined).length >= 10, 'multi-part questions')
  for (const type of ['what', 'why', 'how', 'which', 'difference', 'yes-no']) t.ok(set.answerable.filter((q) => q.type === type).length >= 4, `at least 4 "${type}" questions`)
  for (const q of set.answerable) {
    t.ok(q.key_facts.length > 0 && q.must_cite.every((d) => q.may_cite.includes(d)), q.query)
    for (const fact of q.key_facts) t.doesNotThrow(() => new RegExp(fact, 'i'), fact)
  }
})

const scores = new Map<DepthName, DepthScore>()
for (const depth of ['quick', 'standard', 'deep'] as const) {
  t.test(`${depth}: answers first, cites only what bears on the question, repeats nothing, says "not found"`, async (t) => {
    const score = await evaluate(engine, set, depth)
    scores.set(depth, score)
    t.comment(`${depth}: key fact in summary ${score.keyFactInSummary.toFixed(2)}, only on-topic ${score.onlyOnTopic.toFixed(2)}, repeats ${score.repeatedSentences}, not found ${score.abstained}/${score.unanswerable}, answerable said not found ${score.falseNotFound}, multi-part coverage ${score.partCoverage.toFixed(2)}`)
    for (const miss of score.misses.slice(0, 8)) t.comment(`  ${miss}`)
    t.equal(score.repeatedSentences, 0, 'no sentence is repeated in any report')
    t.equal(score.abstained, score.unanswerable, 'every unanswerable question ends "not found" and cites nothing')
    t.ok(score.falseNotFound <= FLOOR[depth].falseNotFound, `answerable questions said "not found": ${score.falseNotFound} <= ${FLOOR[depth].falseNotFound}`)
    t.ok(score.keyFactInSummary >= FLOOR[depth].keyFactInSummary, `the summary states the key fact: ${score.keyFactInSummary.toFixed(2)} >= ${FLOOR[depth].keyFactInSummary}`)
    t.ok(score.onlyOnTopic >= FLOOR[depth].onlyOnTopic, `reports citing only on-topic documents: ${score.onlyOnTopic.toFixed(2)} >= ${FLOOR[depth].onlyOnTopic}`)
    t.ok(score.keyFactInSummary >= TARGET.keyFactInSummary, `target: the summary states the key fact in ${TARGET.keyFactInSummary * 100}%`)
    t.ok(score.onlyOnTopic >= TARGET.onlyOnTopic, `target: only on-topic documents cited in ${TARGET.onlyOnTopic * 100}%`)
  })
}

t.test('deep covers more of a multi-part question than quick, and runs more rounds', async (t) => {
  const quick = scores.get('quick') as DepthScore
  const deep = scores.get('deep') as DepthScore
  t.ok(deep.partCoverage > quick.partCoverage, `parts covered: deep ${deep.partCoverage.toFixed(2)} > quick ${quick.partCoverage.toFixed(2)}`)
  t.ok(deep.rounds > quick.rounds, `rounds per job: deep ${deep.rounds.toFixed(1)} > quick ${quick.rounds.toFixed(1)}`)
  t.ok(deep.words > quick.words, `words per report: deep ${deep.words.toFixed(0)} > quick ${quick.words.toFixed(0)}`)
})
