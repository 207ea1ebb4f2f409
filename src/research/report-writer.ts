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
  const candidates: Array<{ text: string, weight: number }> = []
  for (const { passage, score } of input.passages) {
    const n = citationOf.get(passage.path) as number
    const picked = bestSentences(passage.text, focus, SENTENCES_PER_SECTION)
    for (const s of picked) candidates.push({ text: `${s.text} [${n}]`, weight: s.weight * score })
    const heading = passage.heading === passage.title ? passage.title : `${passage.heading} (${passage.title})`
    const existing = sections.find((section) => section.heading === heading)
    const body = picked.map((s) => `${s.text} [${n}]`).join(' ')
    if (existing === undefined) sections.push({ heading, body })
    else existing.body += ` ${body}`
  }

  const summary = candidates
    .sort((a, b) => b.weight - a.weight)
    .slice(0, SUMMARY_SENTENCES)
    .map((c) => c.text)
    .join(' ')

  return { title, summary, markdown: renderMarkdown(title, summary, sections, sources), sections, sources, stats: input.stats }
}

/** The report as one Markdown document: title, summary, sections, then the numbered sources. */
export function renderMarkdown (title: string, summary: string, sections: Section[], sources: Source[]): string {
  return [
    `# ${title}`,
    '## Summary',
    summary,
    ...sections.flatMap((section) => [`## ${section.heading}`, section.body]),
    ...(sources.length === 0 ? [] : ['## Sources', sources.map((s) => `${s.id}. **${s.title}** (\`${s.path_or_url}\`): ${s.snippet}`).join('\n')])
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
