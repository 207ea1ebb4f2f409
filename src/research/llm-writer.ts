import { resolveCitations } from './citations.js'
import type { Report } from './engine.js'
import { type ChatModel, estimateTokens } from './providers/llm.js'
import { renderMarkdown } from './report-writer.js'
import type { UsageMeter } from './usage.js'

export interface WriterSource {
  id: number
  title: string
  path_or_url: string
  kind: 'corpus' | 'url' | 'web'
  snippet: string
  score: number
  /** What the writer may quote: the passages kept from this source. */
  excerpts: string[]
}

const PLAN_MAX_TOKENS = 300
const REPORT_MAX_TOKENS = 1800
const MIN_REPORT_TOKENS = 300

/**
 * Sub-questions that, searched one by one, cover the question. Empty when the token budget
 * cannot pay for the call; the research then runs on the question alone.
 */
export async function planSubQuestions (llm: ChatModel, question: string, count: number, usage: UsageMeter, signal: AbortSignal): Promise<string[]> {
  const instructions = `You plan research. Reply with a JSON array of at most ${count} short search queries (strings) that together cover the user's question. No other text.`
  const messages = [{ role: 'system' as const, content: instructions }, { role: 'user' as const, content: question }]
  if (usage.tokensLeft < estimateTokens(instructions + question) + PLAN_MAX_TOKENS) return []
  const answer = await llm.complete(messages, { maxTokens: PLAN_MAX_TOKENS, signal })
  usage.llm(answer.inputTokens, answer.outputTokens)
  return parseQueries(answer.content, question).slice(0, count)
}

/** Queries from a JSON array if the model gave one, else from its lines (bullets and numbers stripped). */
export function parseQueries (content: string, question: string): string[] {
  let items: unknown[] = []
  const json = /\[[^]*\]/.exec(content)?.[0]
  try {
    if (json !== undefined) items = JSON.parse(json) as unknown[]
  } catch {
    items = []
  }
  if (!Array.isArray(items) || items.length === 0) items = content.split('\n')
  const seen = new Set([question.trim().toLowerCase()])
  const queries: string[] = []
  for (const item of items) {
    if (typeof item !== 'string') continue
    const query = item.replace(/^\s*(?:[-*•]|\d+[.)])\s*/, '').replace(/^["']|["'],?$/g, '').trim()
    if (query.length < 3 || query.length > 200 || seen.has(query.toLowerCase())) continue
    seen.add(query.toLowerCase())
    queries.push(query)
  }
  return queries
}

/**
 * A report written by the model from the numbered sources only, every claim cited. Null when
 * the budget cannot pay for it or the answer cites nothing that was read: the caller then
 * writes the extractive report instead.
 */
export async function writeWithLlm (llm: ChatModel, question: string, sources: WriterSource[], usage: UsageMeter, signal: AbortSignal): Promise<Omit<Report, 'stats'> | null> {
  const material = sources.map((s) => `[${s.id}] ${s.title} (${s.path_or_url})\n${s.excerpts.join('\n\n')}`).join('\n\n---\n\n')
  const instructions = 'You write research reports in Markdown from the numbered sources given, and from nothing else. ' +
    'Cite every claim with the source number in brackets, like [2]. Start with "# " and a title, then "## Summary" ' +
    '(two to four sentences), then two to five "## " sections. Do not add a list of sources. If the sources do not answer the question, say so.'
  const prompt = `Question: ${question}\n\nSources:\n\n${material}`
  const messages = [{ role: 'system' as const, content: instructions }, { role: 'user' as const, content: prompt }]
  const maxTokens = Math.min(REPORT_MAX_TOKENS, usage.tokensLeft - estimateTokens(instructions + prompt))
  if (maxTokens < MIN_REPORT_TOKENS) return null
  const answer = await llm.complete(messages, { maxTokens, signal })
  usage.llm(answer.inputTokens, answer.outputTokens)
  return reportFromMarkdown(answer.content, question, sources)
}

/** Title, summary and sections of a Markdown report, its citations checked against the sources. */
export function reportFromMarkdown (markdown: string, question: string, sources: WriterSource[]): Omit<Report, 'stats'> | null {
  const resolved = resolveCitations(markdown.replace(/\r\n/g, '\n'), sources)
  if (resolved.sources.length === 0) return null
  const lines = resolved.text.split('\n')
  const titleLine = lines.findIndex((line) => /^#\s+\S/.test(line))
  const title = titleLine === -1 ? `Research: ${question}` : (lines[titleLine] as string).replace(/^#\s+/, '').trim()
  const body = titleLine === -1 ? lines : lines.slice(titleLine + 1)
  const parts: Array<{ heading: string, body: string }> = [{ heading: '', body: '' }]
  for (const line of body) {
    const heading = /^#{2,3}\s+(.+)$/.exec(line)?.[1]
    if (heading !== undefined) parts.push({ heading: heading.trim(), body: '' })
    else (parts.at(-1) as { body: string }).body += `${line}\n`
  }
  const kept = parts
    .map((part) => ({ heading: part.heading, body: part.body.trim() }))
    .filter((part) => part.body !== '' && !/^(sources|references|bibliography)$/i.test(part.heading))
  const summaryPart = kept.find((part) => /^summary$/i.test(part.heading)) ?? kept[0] as { heading: string, body: string }
  const sections = kept.filter((part) => part !== summaryPart && part.heading !== '')
  const reportSources = resolved.sources.map(({ excerpts: _excerpts, ...source }) => source)
  return { title, summary: summaryPart.body, markdown: renderMarkdown(title, summaryPart.body, sections, reportSources), sections, sources: reportSources }
}
