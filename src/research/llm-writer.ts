import { type CheckedReport, type WriterSource, checkReport } from './citation-check.js'
import type { Passage } from './corpus.js'
import { type Finding, isGrounded } from './evidence.js'
import { type ChatModel, estimateTokens } from './providers/llm.js'
import type { Question } from './question.js'
import type { PartFindings } from './rounds.js'
import { truncate } from './text.js'
import type { UsageMeter } from './usage.js'

const PLAN_MAX_TOKENS = 300
const REFLECT_MAX_TOKENS = 200
const REPORT_MAX_TOKENS = 1800
const MIN_REPORT_TOKENS = 300
const EXCERPTS_PER_SOURCE = 3
const EXCERPT_CHARS = 1500

/**
 * Sub-questions that, searched one by one, cover the question. Empty when the token budget
 * cannot pay for the call; the research then runs on the question alone.
 */
export async function planSubQuestions (llm: ChatModel, question: string, count: number, usage: UsageMeter, signal: AbortSignal): Promise<string[]> {
  const instructions = `You plan research. Reply with a JSON array of at most ${count} short search queries (strings) that together cover the user's question. No other text.`
  return await askForQueries(llm, instructions, question, PLAN_MAX_TOKENS, usage, signal, question, count)
}

/**
 * The model's reading of what the findings so far leave unanswered, as follow-up searches;
 * empty when it finds nothing lacking or the budget cannot pay for the call.
 */
export async function reflectOnGaps (llm: ChatModel, question: string, weighed: PartFindings[], usage: UsageMeter, signal: AbortSignal): Promise<string[]> {
  const instructions = 'You check research for gaps. Reply with a JSON array of at most 2 short search queries for what the findings do not yet answer, or [] when they answer every part of the question. No other text.'
  const findings = weighed.map(({ part, findings: found }) => {
    const best = found.filter(isGrounded).slice(0, 3).map((f) => `  - ${f.sentence.text}`)
    return `- ${part.text}?\n${best.length === 0 ? '  (nothing found)' : best.join('\n')}`
  }).join('\n')
  return await askForQueries(llm, instructions, `Question: ${question}\n\nFindings so far:\n${findings}`, REFLECT_MAX_TOKENS, usage, signal, question, 2)
}

async function askForQueries (llm: ChatModel, instructions: string, prompt: string, maxTokens: number, usage: UsageMeter, signal: AbortSignal, question: string, count: number): Promise<string[]> {
  if (usage.tokensLeft < estimateTokens(instructions + prompt) + maxTokens) return []
  const answer = await llm.complete([{ role: 'system', content: instructions }, { role: 'user', content: prompt }], { maxTokens, signal })
  usage.llm(answer)
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
  if (!Array.isArray(items) || (items.length === 0 && json === undefined)) items = content.split('\n')
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
 * The sources the model is shown: the documents of the passages that answer a part, taken from
 * the same on-topic findings as the extractive report's (see topicalFindings), best first, at
 * most `maxSources`, each with up to three of its passages.
 */
export function writerSources (topical: Map<PartFindings, Finding[]>, maxSources: number, linkOf: (passage: Passage) => string): WriterSource[] {
  const answering = [...topical.entries()].filter(([part]) => part.grounded).flatMap(([, findings]) => findings.filter(isGrounded)).sort((a, b) => b.score - a.score)
  const byDocument = new Map<string, WriterSource>()
  const shown = new Set<number>()
  for (const { sentence: { passage }, score } of answering) {
    let source = byDocument.get(passage.path)
    if (source === undefined) {
      if (byDocument.size === maxSources) continue
      source = { id: byDocument.size + 1, title: passage.title, path_or_url: passage.location, kind: passage.kind, link: linkOf(passage), score: Math.round(score * 1000) / 1000, excerpts: [] }
      byDocument.set(passage.path, source)
    }
    if (shown.has(passage.id) || source.excerpts.length === EXCERPTS_PER_SOURCE) continue
    shown.add(passage.id)
    source.excerpts.push({ heading: passage.heading, text: truncate(passage.text, EXCERPT_CHARS) })
  }
  return [...byDocument.values()]
}

/**
 * A report written by the model from the numbered sources only, answer first, a section per
 * part, every sentence cited and then checked (see checkReport). Null when the budget cannot
 * pay for it.
 */
export async function writeWithLlm (llm: ChatModel, question: Question, sources: WriterSource[], usage: UsageMeter, signal: AbortSignal): Promise<CheckedReport | null> {
  const material = sources.map((s) => `[${s.id}] ${s.title} (${s.path_or_url})\n${s.excerpts.map((e) => `### ${e.heading}\n${e.text}`).join('\n\n')}`).join('\n\n---\n\n')
  const instructions = 'You write research reports in Markdown from the numbered sources given, and from nothing else. ' +
    'Start with "## Summary": its first sentence answers the question directly, and it answers every part of the question in one or two sentences each. ' +
    'Then one "## " section per part of the question with what the sources add. End every sentence with the number of the source that states it, like [2]; ' +
    'never cite a source for something it does not say. If the sources do not answer a part, say so in one sentence without a citation. Do not add a list of sources.'
  const parts = question.parts.length > 1 ? `\nParts: ${question.parts.map((p, i) => `${i + 1}. ${p.text}?`).join(' ')}` : ''
  const prompt = `Question: ${question.text}${parts}\n\nSources:\n\n${material}`
  const messages = [{ role: 'system' as const, content: instructions }, { role: 'user' as const, content: prompt }]
  const maxTokens = Math.min(REPORT_MAX_TOKENS, usage.tokensLeft - estimateTokens(instructions + prompt))
  if (maxTokens < MIN_REPORT_TOKENS) return null
  const answer = await llm.complete(messages, { maxTokens, signal })
  usage.llm(answer)
  return checkReport(answer.content, question.text, sources)
}
