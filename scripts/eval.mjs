// npm run eval [-- --write] [--set <file in test/fixtures>] [--misses]: the research evaluation.
// Runs the default engine (the shipped corpus, no LLM, no network) over every question of the
// evaluation set at each depth and prints a table: the summary states the key fact, only on-topic
// documents cited, sentences repeated, "not found" on unanswerable questions, coverage of
// multi-part questions, time per job. --write puts the table into docs/evaluation.md; --misses
// lists what went wrong, question by question.
import { readFileSync, writeFileSync } from 'node:fs'
import { evaluate, loadEvaluationSet, scoreTable } from '../test/helpers/evaluation.ts'
import { researchEngine } from '../test/helpers/research.ts'

const args = process.argv.slice(2)
const option = (name) => {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}
const setName = option('--set') ?? 'evaluation.json'
const set = loadEvaluationSet(setName)
const engine = researchEngine()
try {
  const scores = []
  for (const depth of /** @type {const} */ (['quick', 'standard', 'deep'])) scores.push(await evaluate(engine, set, depth))
  const multi = set.answerable.filter((q) => q.parts !== undefined).length
  const table = scoreTable(scores)
  console.log(`${setName}: ${set.answerable.length} answerable questions (${multi} multi-part), ${set.unanswerable.length} unanswerable\n`)
  console.log(table)
  if (args.includes('--misses')) for (const s of scores) for (const miss of s.misses) console.log(`- ${miss}`)
  if (args.includes('--write')) {
    const file = new URL('../docs/evaluation.md', import.meta.url)
    const doc = readFileSync(file, 'utf8')
    const marker = `<!-- eval:${setName} -->`
    const start = doc.indexOf(marker)
    const end = doc.indexOf('<!-- eval:end -->', start)
    if (start === -1 || end === -1) throw new Error(`docs/evaluation.md has no ${marker} ... <!-- eval:end --> block`)
    writeFileSync(file, `${doc.slice(0, start + marker.length)}\n${table}\n${doc.slice(end)}`)
    console.log(`\nwritten to docs/evaluation.md (${marker})`)
  }
} finally {
  await engine.close()
}
