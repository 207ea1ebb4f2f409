// The research evaluation: runs an engine over the questions of an evaluation set
// (test/fixtures/evaluation.json) and scores each report the way a reader would. Shared by
// `npm run eval` (scripts/eval.mjs), which prints the table, and test/research/evaluation.test.ts,
// which holds thresholds on it.
import { readFileSync } from 'node:fs'
import type { DepthName } from '../../src/schemas/job.js'
import type { Report, ResearchEngine } from '../../src/research/engine.js'
import { resolveOptions } from '../../src/schemas/options.js'

export interface Part { part: string, key_facts: string[] }
export interface AnswerableQuestion {
  query: string
  type: string
  /** Patterns a correct summary states (every one, case-insensitive). */
  key_facts: string[]
  must_cite: string[]
  /** Every document a good answer may cite: anything else is off-topic. */
  may_cite: string[]
  /** A multi-part question's parts, each with the fact that answers it. */
  parts?: Part[]
}
export interface UnanswerableQuestion { query: string, why: string }
export interface EvaluationSet { about: string, answerable: AnswerableQuestion[], unanswerable: UnanswerableQuestion[] }

export function loadEvaluationSet (name = 'evaluation.json'): EvaluationSet {
  return JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as EvaluationSet
}

/** What one depth scored. Rates are shares 0-1 of the questions they are about. */
export interface DepthScore {
  depth: DepthName
  answerable: number
  /** Summaries that state every key fact of their question. */
  keyFactInSummary: number
  /** Reports that cite no document outside the question's may_cite. */
  onlyOnTopic: number
  /** Documents a good answer must cite that were cited. */
  recall: number
  /** Sentences printed more than once in a report, summed over every report. */
  repeatedSentences: number
  /** Answerable questions the engine said it found nothing on. */
  falseNotFound: number
  unanswerable: number
  /** Unanswerable questions that ended "not found" with no citation. */
  abstained: number
  multiPart: number
  /** Mean share of a multi-part question's parts whose fact the report states anywhere. */
  partCoverage: number
  /** Mean distinct on-topic documents cited per answerable report. */
  relevantSources: number
  /** Mean words per answerable report (summary and sections). */
  words: number
  /** Mean research rounds run per job. */
  rounds: number
  msPerJob: number
  /** What went wrong, one line per question, for the reader of a failed run. */
  misses: string[]
}

const CITATION = /\s*\[\d+\](?:\[\d+\])*/g

/** A report's text without its citation marks, as a reader sees it. */
function plain (text: string): string {
  return text.replace(CITATION, '')
}

function matchesAll (patterns: string[], text: string): boolean {
  return patterns.every((pattern) => new RegExp(pattern, 'i').test(text))
}

function citedDocuments (report: Report): string[] {
  return report.sources.map((s) => s.path_or_url.replace(/^corpus\//, ''))
}

/** Every sentence of the summary and the sections; the same sentence twice is a repeat. */
export function repeatedSentences (report: Report): string[] {
  const seen = new Set<string>()
  const repeats: string[] = []
  for (const text of [report.summary, ...report.sections.map((s) => s.body)]) {
    for (const sentence of plain(text).split(/(?<=[.!?])\s+/)) {
      const key = sentence.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim()
      if (key.split(' ').length < 4) continue
      if (seen.has(key)) repeats.push(sentence)
      seen.add(key)
    }
  }
  return repeats
}

function notFound (report: Report): boolean {
  const status = (report as Report & { answer?: { status?: string } }).answer?.status
  return status === 'not_found'
}

function wordCount (report: Report): number {
  return plain([report.summary, ...report.sections.map((s) => s.body)].join(' ')).split(/\s+/).filter(Boolean).length
}

export async function evaluate (engine: ResearchEngine, set: EvaluationSet, depth: DepthName): Promise<DepthScore> {
  const run = async (query: string): Promise<{ report: Report, ms: number }> => {
    const started = performance.now()
    const report = await engine.run({ query, depth, options: resolveOptions({ depth }) }, { signal: new AbortController().signal, progress: async () => {} })
    return { report, ms: performance.now() - started }
  }
  const misses: string[] = []
  let keyFacts = 0
  let onTopic = 0
  let mustTotal = 0
  let mustFound = 0
  let repeats = 0
  let falseNotFound = 0
  let relevant = 0
  let words = 0
  let rounds = 0
  let ms = 0
  let partsShare = 0
  let multiPart = 0
  for (const q of set.answerable) {
    const { report, ms: took } = await run(q.query)
    ms += took
    rounds += (report.stats as Report['stats'] & { rounds?: number }).rounds ?? 1
    const summary = plain(report.summary)
    const whole = plain([report.summary, ...report.sections.map((s) => s.body)].join('\n'))
    const docs = citedDocuments(report)
    const stated = matchesAll(q.key_facts, summary)
    if (stated) keyFacts++
    else misses.push(`${depth} key fact missing from the summary: "${q.query}" -> ${summary.slice(0, 160)}`)
    const offTopic = docs.filter((d) => !q.may_cite.includes(d))
    if (offTopic.length === 0) onTopic++
    else misses.push(`${depth} off-topic: "${q.query}" cites ${offTopic.join(', ')}`)
    mustTotal += q.must_cite.length
    mustFound += q.must_cite.filter((d) => docs.includes(d)).length
    relevant += docs.filter((d) => q.may_cite.includes(d)).length
    const repeated = repeatedSentences(report)
    repeats += repeated.length
    if (repeated.length > 0) misses.push(`${depth} repeats: "${q.query}": ${repeated[0]}`)
    if (notFound(report)) {
      falseNotFound++
      misses.push(`${depth} said not found: "${q.query}"`)
    }
    words += wordCount(report)
    if (q.parts !== undefined) {
      multiPart++
      const covered = q.parts.filter((part) => matchesAll(part.key_facts, whole)).length
      partsShare += covered / q.parts.length
      if (covered < q.parts.length) misses.push(`${depth} parts covered ${covered}/${q.parts.length}: "${q.query}"`)
    }
  }
  let abstained = 0
  for (const q of set.unanswerable) {
    const { report, ms: took } = await run(q.query)
    ms += took
    rounds += (report.stats as Report['stats'] & { rounds?: number }).rounds ?? 1
    if (notFound(report) && report.sources.length === 0) abstained++
    else misses.push(`${depth} answered the unanswerable "${q.query}": cites ${citedDocuments(report).join(', ') || 'nothing'}`)
  }
  const answerable = set.answerable.length
  const total = answerable + set.unanswerable.length
  return {
    depth,
    answerable,
    keyFactInSummary: keyFacts / answerable,
    onlyOnTopic: onTopic / answerable,
    recall: mustFound / Math.max(1, mustTotal),
    repeatedSentences: repeats,
    falseNotFound,
    unanswerable: set.unanswerable.length,
    abstained,
    multiPart,
    partCoverage: multiPart === 0 ? 1 : partsShare / multiPart,
    relevantSources: relevant / answerable,
    words: words / answerable,
    rounds: rounds / total,
    msPerJob: ms / total,
    misses
  }
}

const percent = (share: number): string => `${Math.round(share * 100)}%`

/** The evaluation as a Markdown table, one row per depth. */
export function scoreTable (scores: DepthScore[]): string {
  const rows = scores.map((s) => [
    s.depth,
    percent(s.keyFactInSummary),
    percent(s.onlyOnTopic),
    String(s.repeatedSentences),
    `${s.abstained}/${s.unanswerable}`,
    String(s.falseNotFound),
    percent(s.partCoverage),
    s.relevantSources.toFixed(2),
    percent(s.recall),
    Math.round(s.words).toString(),
    s.rounds.toFixed(1),
    s.msPerJob.toFixed(1)
  ])
  const head = ['depth', 'summary states the key fact', 'only on-topic documents cited', 'sentences repeated', 'not found on unanswerable', 'answerable said not found', 'multi-part coverage', 'on-topic documents per report', 'must-cite recall', 'words per report', 'rounds per job', 'ms per job']
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n')
}
