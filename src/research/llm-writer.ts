import type { Passage } from './corpus.js'
import type { Report } from './engine.js'
import { type Finding, isGrounded } from './evidence.js'
import { type ChatModel, estimateTokens } from './providers/llm.js'
import type { Question } from './question.js'
import { renderMarkdown } from './report-writer.js'
import type { PartFindings } from './rounds.js'
import { SUPPORTED, support } from './support.js'
import { sentences, truncate } from './text.js'
import type { UsageMeter } from './usage.js'

/** A source as the model is shown it: a number, and the passages of it the research found. */
export interface WriterSource {
  id: number
  title: string
  path_or_url: string
  kind: 'corpus' | 'url' | 'web'
  link: string
  score: number
  /** What the writer may state: the passages found in this source. */
  excerpts: Array<{ heading: string, text: string }>
}

export interface DroppedClaim { sentence: string, reason: string }

/** The written report, and the sentences its citation check took out. */
export interface CheckedReport {
  /** Null: too little survived the check (or nothing was cited); the extractive report stands. */
  report: Omit<Report, 'stats'> | null
  dropped: DroppedClaim[]
  /** Sentences whose citation pointed at the wrong source and now points at the one that supports them. */
  reattributed: number
}

const PLAN_MAX_TOKENS = 300
const REFLECT_MAX_TOKENS = 200
const REPORT_MAX_TOKENS = 1800
const MIN_REPORT_TOKENS = 300
const EXCERPTS_PER_SOURCE = 3
const EXCERPT_CHARS = 1500
/** A sentence that says the sources are silent on something needs no citation. */
const SAYS_NOT_FOUND = /\b(?:sources?|documents?|material)\b.{0,40}\b(?:do(?:es)? not|don't|doesn't|never)\b|\bnot (?:covered|answered|found|addressed)\b/i
const CITATION = /\s?\[(\d+(?:\s*,\s*\d+)*)\]/g

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
 * The sources the model is shown: the documents of the passages that answer a part, best
 * first, at most `maxSources`, each with up to three of its passages.
 */
export function writerSources (weighed: PartFindings[], maxSources: number, linkOf: (passage: Passage) => string): WriterSource[] {
  const answering: Finding[] = weighed.flatMap((p) => p.findings.filter(isGrounded)).sort((a, b) => b.score - a.score)
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
    'Start with "# " and a title, then "## Summary": its first sentence answers the question directly, and it answers every part of the question in one or two sentences each. ' +
    'Then one "## " section per part of the question with what the sources add. End every sentence with the number of the source that states it, like [2]; ' +
    'never cite a source for something it does not say. If the sources do not answer a part, say so in one sentence without a citation. Do not add a list of sources.'
  const parts = question.parts.length > 1 ? `\nParts: ${question.parts.map((p, i) => `${i + 1}. ${p.text}?`).join(' ')}` : ''
  const prompt = `Question: ${question.text}${parts}\n\nSources:\n\n${material}`
  const messages = [{ role: 'system' as const, content: instructions }, { role: 'user' as const, content: prompt }]
  const maxTokens = Math.min(REPORT_MAX_TOKENS, usage.tokensLeft - estimateTokens(instructions + prompt))
  if (maxTokens < MIN_REPORT_TOKENS) return null
  const answer = await llm.complete(messages, { maxTokens, signal })
  usage.llm(answer.inputTokens, answer.outputTokens)
  return checkReport(answer.content, question.text, sources)
}

/**
 * Every sentence of a model's report checked against the passages it cites: kept when they
 * support it (see support); re-pointed when another source read supports it instead; dropped
 * when it cites nothing, cites a source that was not read, or no source read supports it. A
 * sentence that says the sources are silent needs no citation. The sources cited are then
 * renumbered 1..k in order of first citation, each with the passages that supported it.
 */
export function checkReport (markdown: string, question: string, sources: WriterSource[]): CheckedReport {
  const dropped: DroppedClaim[] = []
  let reattributed = 0
  const known = new Map(sources.map((s) => [s.id, s]))
  const quoted = new Map<number, Map<string, { heading: string, text: string }>>()
  const evidenceOf = (ids: number[]): string => ids.flatMap((id) => known.get(id)?.excerpts.map((e) => `${e.heading} ${e.text}`) ?? []).join('\n')
  const quote = (id: number, claim: string): void => {
    const excerpts = known.get(id)?.excerpts ?? []
    const best = [...excerpts].sort((a, b) => support(claim, b.text) - support(claim, a.text))[0]
    if (best === undefined) return
    const list = quoted.get(id) ?? new Map<string, { heading: string, text: string }>()
    list.set(best.heading + best.text, { heading: best.heading, text: truncate(best.text, 300) })
    quoted.set(id, list)
  }

  const check = (sentence: string): string | null => {
    const cited = [...sentence.matchAll(CITATION)].flatMap((m) => (m[1] as string).split(',').map((n) => Number(n.trim())))
    const claim = sentence.replace(CITATION, '').trim()
    if (cited.length === 0) {
      if (SAYS_NOT_FOUND.test(claim)) return claim
      dropped.push({ sentence: claim, reason: 'no citation' })
      return null
    }
    const read = [...new Set(cited.filter((id) => known.has(id)))]
    if (read.length > 0 && support(claim, evidenceOf(read)) >= SUPPORTED) {
      for (const id of read) quote(id, claim)
      return `${claim} ${read.map((id) => `[${id}]`).join('')}`
    }
    const other = sources.map((s) => ({ s, score: support(claim, evidenceOf([s.id])) })).sort((a, b) => b.score - a.score)[0]
    if (other !== undefined && other.score >= SUPPORTED) {
      reattributed++
      quote(other.s.id, claim)
      return `${claim} [${other.s.id}]`
    }
    const unread = cited.filter((id) => !known.has(id))
    dropped.push({ sentence: claim, reason: read.length === 0 ? `cites [${unread.join('], [')}], which is not a source that was read` : `not supported by the passages of [${read.join('], [')}] it cites` })
    return null
  }

  const { title, parts } = parseSections(markdown.replace(/\r\n/g, '\n'), question)
  const checked = parts.map((part) => ({
    heading: part.heading,
    body: part.body.split('\n').map((line) => {
      const bullet = /^\s*(?:[-*]|\d+\.)\s+/.exec(line)?.[0] ?? ''
      const kept = splitSentences(line.slice(bullet.length)).map(check).filter((s): s is string => s !== null)
      return kept.length === 0 ? null : `${bullet}${kept.join(' ')}`
    }).filter((line): line is string => line !== null).join('\n').trim()
  })).filter((part) => part.body !== '')

  const summaryPart = checked.find((part) => /^summary$/i.test(part.heading)) ?? checked.find((part) => part.heading === '')
  if (summaryPart === undefined || !/\[\d+\]/.test(summaryPart.body)) return { report: null, dropped, reattributed }
  // Renumber 1..k by first citation, summary first.
  const order: number[] = []
  for (const part of [summaryPart, ...checked.filter((p) => p !== summaryPart)]) {
    for (const m of part.body.matchAll(/\[(\d+)\]/g)) if (!order.includes(Number(m[1]))) order.push(Number(m[1]))
  }
  const renumber = (text: string): string => text.replace(/\[(\d+)\]/g, (_whole, n: string) => `[${order.indexOf(Number(n)) + 1}]`)
  const summary = renumber(summaryPart.body)
  const sections = checked.filter((p) => p !== summaryPart && p.heading !== '').map((p) => ({ heading: p.heading, body: renumber(p.body) }))
  const reportSources = order.map((id, i) => {
    const s = known.get(id) as WriterSource
    const quotes = [...(quoted.get(id)?.values() ?? [])]
    return { id: i + 1, title: s.title, path_or_url: s.path_or_url, kind: s.kind, snippet: truncate(quotes[0]?.text ?? s.excerpts[0]?.text ?? '', 240), score: s.score, link: s.link, quotes }
  })
  return { report: { title, summary, markdown: renderMarkdown(title, summary, sections, reportSources), sections, sources: reportSources }, dropped, reattributed }
}

/** The title and the "## " parts of a Markdown report; a list of sources the model added is left out. */
function parseSections (markdown: string, question: string): { title: string, parts: Array<{ heading: string, body: string }> } {
  const lines = markdown.split('\n')
  const titleLine = lines.findIndex((line) => /^#\s+\S/.test(line))
  const title = titleLine === -1 ? `Research: ${truncate(question, 120)}` : (lines[titleLine] as string).replace(/^#\s+/, '').trim()
  const parts: Array<{ heading: string, body: string }> = [{ heading: '', body: '' }]
  for (const line of titleLine === -1 ? lines : lines.slice(titleLine + 1)) {
    const heading = /^#{2,3}\s+(.+)$/.exec(line)?.[1]
    if (heading !== undefined) parts.push({ heading: heading.trim(), body: '' })
    else (parts.at(-1) as { body: string }).body += `${line}\n`
  }
  return { title, parts: parts.map((p) => ({ heading: p.heading, body: p.body.trim() })).filter((p) => !/^(?:sources|references|bibliography)$/i.test(p.heading)) }
}

/** Sentences of a line, a citation after the full stop ("... second. [2]") kept with its sentence. */
function splitSentences (line: string): string[] {
  const out: string[] = []
  for (const sentence of sentences(line)) {
    const lead = /^((?:\[\d+(?:\s*,\s*\d+)*\]\s*)+)(.*)$/.exec(sentence)
    if (lead !== null && out.length > 0) {
      out[out.length - 1] += ` ${(lead[1] as string).trim()}`
      if ((lead[2] as string).trim() !== '') out.push((lead[2] as string).trim())
    } else out.push(sentence)
  }
  return out
}
