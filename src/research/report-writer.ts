import type { Passage } from './corpus.js'
import type { Report } from './engine.js'
import { sentences, stem, tokenize, truncate } from './text.js'

export interface RankedPassage { passage: Passage, score: number }

type Section = Report['sections'][number]
type Source = Report['sources'][number]

export interface ReportInput {
  query: string
  /** Best first. */
  passages: RankedPassage[]
  /** Stems of the question: sentences with them are preferred. */
  questionTerms: string[]
  /** Stems added by query expansion: preferred too, half as much. */
  expansionTerms: string[]
  stats: Report['stats']
}

const SENTENCES_PER_SECTION = 3
const SUMMARY_SENTENCES = 3
/** Below this share of the question's key terms found in the passages, the summary says the sources had little on it. */
const LITTLE_ON_THE_QUESTION = 0.5

/**
 * An extractive report: each section quotes the most relevant sentences of one retrieved
 * passage, every claim carries the [n] of the document it came from, and the sources list
 * holds exactly the documents cited.
 */
export function writeReport (input: ReportInput): Report {
  const title = `Research: ${truncate(input.query, 120)}`
  if (input.passages.length === 0) {
    const summary = 'No passage of the sources searched matched this question, so no findings can be reported. Try other words, a deeper search, or other sources.'
    return { title, summary, markdown: renderMarkdown(title, summary, [], []), sections: [], sources: [], stats: input.stats }
  }

  const focus = new Map<string, number>(input.expansionTerms.map((term) => [term, 1]))
  for (const term of input.questionTerms) focus.set(term, 2)
  const sources: Report['sources'] = []
  const citationOf = new Map<string, number>()
  for (const { passage, score } of input.passages) {
    if (citationOf.has(passage.path)) continue
    citationOf.set(passage.path, sources.length + 1)
    sources.push({
      id: sources.length + 1,
      title: passage.title,
      path_or_url: passage.location,
      kind: passage.kind,
      snippet: truncate(passage.text.replace(/\s+/g, ' '), 240),
      score: Math.round(score * 1000) / 1000
    })
  }

  const sections: Report['sections'] = []
  // The summary takes the best sentence of each of the best passages, so it is a digest across
  // them, never one section repeated.
  const leads: Array<{ text: string, weight: number }> = []
  for (const { passage, score } of input.passages) {
    const n = citationOf.get(passage.path) as number
    const picked = bestSentences(passage.text, focus, SENTENCES_PER_SECTION)
    const lead = [...picked].sort((a, b) => b.weight - a.weight)[0]
    if (lead !== undefined) leads.push({ text: `${lead.text} [${n}]`, weight: lead.weight * score })
    const existing = sections.find((section) => section.heading === passage.heading)
    const body = picked.map((s) => `${s.text} [${n}]`).join(' ')
    if (existing === undefined) sections.push({ heading: passage.heading, body })
    else existing.body += ` ${body}`
  }

  const digest = leads
    .sort((a, b) => b.weight - a.weight)
    .slice(0, SUMMARY_SENTENCES)
    .map((c) => c.text)
  const coverage = termCoverage(input.questionTerms, input.passages)
  const caveat = coverage < LITTLE_ON_THE_QUESTION
    ? [`The sources searched had little on this question: ${Math.round(coverage * 100)}% of its key terms appear in the passages found.`]
    : []
  const summary = [...caveat, ...digest].join(' ')

  const used = new Map<number, string[]>()
  for (const { passage } of input.passages) {
    const n = citationOf.get(passage.path) as number
    const headings = used.get(n) ?? []
    if (!headings.includes(passage.heading)) used.set(n, [...headings, passage.heading])
  }
  return { title, summary, markdown: renderMarkdown(title, summary, sections, sources, used), sections, sources, stats: input.stats }
}

/**
 * The report as one Markdown document: title, summary, sections, then the numbered sources, each
 * once, with the passages of it the report used (`used`: headings by source number) when known.
 */
export function renderMarkdown (title: string, summary: string, sections: Section[], sources: Source[], used?: Map<number, string[]>): string {
  const source = (s: Source): string => {
    const passages = used?.get(s.id)
    return `${s.id}. **${s.title}** (\`${s.path_or_url}\`)${passages === undefined ? '' : `, passages used: ${passages.join('; ')}`}: ${s.snippet}`
  }
  return [
    `# ${title}`,
    '## Summary',
    summary,
    ...sections.flatMap((section) => [`## ${section.heading}`, section.body]),
    ...(sources.length === 0 ? [] : ['## Sources', sources.map(source).join('\n')])
  ].join('\n\n') + '\n'
}

function bestSentences (text: string, focus: Map<string, number>, count: number): Array<{ text: string, weight: number }> {
  const all = sentences(text.replace(/^[-*]\s+/gm, ''))
    .filter((s) => s.length >= 25 && !s.startsWith('|') && !s.startsWith('```'))
    .map((s, position) => {
      const tokens = tokenize(s)
      const hits = tokens.reduce((sum, t) => sum + (focus.get(stem(t)) ?? 0), 0)
      return { text: s, position, weight: (hits + 0.5) / Math.sqrt(tokens.length + 1) + (position === 0 ? 0.1 : 0) }
    })
  // Keep the picked sentences in their original order so the section reads naturally.
  return all.sort((a, b) => b.weight - a.weight).slice(0, count).sort((a, b) => a.position - b.position)
}

/** The share of the question's key terms (stems) that appear in any of the passages. */
function termCoverage (terms: string[], passages: RankedPassage[]): number {
  if (terms.length === 0) return 1
  const found = new Set<string>()
  for (const { passage } of passages) for (const token of tokenize(`${passage.heading} ${passage.text}`)) found.add(stem(token))
  return terms.filter((term) => found.has(term)).length / terms.length
}
