import type { Report } from './engine.js'
import { renderMarkdown } from './report-writer.js'
import { SUPPORTED, contradicts, support } from './support.js'
import { sentences, truncate } from './text.js'

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

/**
 * A sentence that only says the sources are silent on something needs no citation: "The
 * sources do not say how many attempts to allow." Short, with no number, and nothing else.
 */
const SAYS_SOURCES_ARE_SILENT = /^(?:the )?(?:sources?|documents?|material)(?: (?:searched|given|read|provided|shown))? (?:do not|don't|does not|doesn't|never) (?:say|answer|cover|mention|state|address|explain|describe|specify|give)\b[^\d]*$/i
const CITATION = /\s?\[(\d+(?:\s*,\s*\d+)*)\]/g
/** Markup a model may write that a report must not carry: HTML tags, images, links (their text stays). */
const MARKUP: Array<[RegExp, string]> = [[/<[^>]*>/g, ''], [/!\[[^\]]*\]\([^)]*\)/g, ''], [/\[([^\]]+)\]\((?:[^)]*)\)/g, '$1']]

/** One sentence of the model's, checked: what to keep (with its citations), or why it was dropped. */
type Verdict = { kept: string, sources: number[] } | { dropped: string }

/**
 * Every sentence of a model's report checked against the passages it cites, as a reader would:
 * kept when the passages hold its words and numbers and no sentence of them says the opposite
 * (see support and contradicts); re-pointed when another source read supports it instead;
 * dropped when it cites nothing, cites a source that was not read, or no source read supports
 * it. A sentence that only says the sources are silent needs no citation, and a sentence said
 * twice is kept once. The title is the question's, and a heading no source or the question
 * supports is replaced, so nothing the model made up reaches the report. The sources cited are
 * renumbered 1..k in order of first citation, each with the sentence of its passages that
 * supported the report.
 */
export function checkReport (markdown: string, question: string, sources: WriterSource[]): CheckedReport {
  const dropped: DroppedClaim[] = []
  let reattributed = 0
  const known = new Map(sources.map((s) => [s.id, s]))
  const quoted = new Map<number, Map<string, { heading: string, text: string }>>()
  const kept = new Set<string>()
  const everything = sources.flatMap((s) => s.excerpts.map((e) => `${e.heading} ${e.text}`)).join('\n')

  const verdictOn = (claim: string, cited: number[]): Verdict => {
    if (cited.length === 0) return SAYS_SOURCES_ARE_SILENT.test(claim) && claim.split(/\s+/).length <= 30 ? { kept: claim, sources: [] } : { dropped: 'no citation' }
    const read = [...new Set(cited.filter((id) => known.has(id)))]
    if (read.length > 0 && supports(claim, read)) return { kept: claim, sources: read }
    const other = sources.find((s) => supports(claim, [s.id]))
    if (other !== undefined) {
      reattributed++
      return { kept: claim, sources: [other.id] }
    }
    const unread = cited.filter((id) => !known.has(id))
    if (read.length === 0) return { dropped: `cites [${unread.join('], [')}], which is not a source that was read` }
    return { dropped: `not supported by the passages of [${read.join('], [')}] it cites` }
  }
  const supports = (claim: string, ids: number[]): boolean => {
    const excerpts = ids.flatMap((id) => known.get(id)?.excerpts ?? [])
    if (support(claim, excerpts.map((e) => `${e.heading} ${e.text}`).join('\n')) < SUPPORTED) return false
    const closest = bestSentence(claim, excerpts)
    return closest !== null && !contradicts(claim, closest.text)
  }
  const check = (sentence: string): string | null => {
    const cited = [...sentence.matchAll(CITATION)].flatMap((m) => (m[1] as string).split(',').map((n) => Number(n.trim())))
    const claim = sentence.replace(CITATION, '').trim()
    const key = claim.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim()
    if (kept.has(key)) return null
    const verdict = verdictOn(claim, cited)
    if ('dropped' in verdict) {
      dropped.push({ sentence: claim, reason: verdict.dropped })
      return null
    }
    kept.add(key)
    for (const id of verdict.sources) quote(id, claim)
    return verdict.sources.length === 0 ? claim : `${claim} ${verdict.sources.map((id) => `[${id}]`).join('')}`
  }
  const quote = (id: number, claim: string): void => {
    const best = bestSentence(claim, known.get(id)?.excerpts ?? [])
    if (best === null) return
    const list = quoted.get(id) ?? new Map<string, { heading: string, text: string }>()
    list.set(best.text, best)
    quoted.set(id, list)
  }

  const clean = MARKUP.reduce((text, [pattern, replacement]) => text.replace(pattern, replacement), markdown.replace(/\r\n/g, '\n'))
  const checked = parseSections(clean).map((part) => ({
    heading: part.heading === '' || /^summary$/i.test(part.heading) || support(part.heading, `${question}\n${everything}`) >= SUPPORTED ? part.heading : 'Details',
    body: part.body.split('\n').map((line) => {
      const bullet = /^\s*(?:[-*]|\d+\.)\s+/.exec(line)?.[0] ?? ''
      const sentencesKept = splitSentences(line.slice(bullet.length)).map(check).filter((s): s is string => s !== null)
      return sentencesKept.length === 0 ? null : `${bullet}${sentencesKept.join(' ')}`
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
  const title = `Research: ${truncate(question, 120)}`
  const summary = renumber(summaryPart.body)
  const sections = checked.filter((p) => p !== summaryPart && p.heading !== '').map((p) => ({ heading: p.heading, body: renumber(p.body) }))
  const reportSources = order.map((id, i) => {
    const s = known.get(id) as WriterSource
    const quotes = [...(quoted.get(id)?.values() ?? [])]
    return { id: i + 1, title: s.title, path_or_url: s.path_or_url, kind: s.kind, snippet: truncate(quotes[0]?.text ?? s.excerpts[0]?.text ?? '', 240), score: s.score, link: s.link, quotes }
  })
  return { report: { title, summary, markdown: renderMarkdown(title, summary, sections, reportSources), sections, sources: reportSources }, dropped, reattributed }
}

/** The sentence of these passages that holds most of the claim's words, with its heading; null when none holds any. */
function bestSentence (claim: string, excerpts: WriterSource['excerpts']): { heading: string, text: string } | null {
  let best: { heading: string, text: string, score: number } | null = null
  for (const excerpt of excerpts) {
    for (const text of sentences(excerpt.text)) {
      const score = support(claim, `${excerpt.heading} ${text}`)
      if (score > 0 && (best === null || score > best.score)) best = { heading: excerpt.heading, text, score }
    }
  }
  return best === null ? null : { heading: best.heading, text: best.text }
}

/** The "## " parts of a Markdown report; its own title and a list of sources the model added are left out. */
function parseSections (markdown: string): Array<{ heading: string, body: string }> {
  const parts: Array<{ heading: string, body: string }> = [{ heading: '', body: '' }]
  for (const line of markdown.split('\n')) {
    if (/^#\s+\S/.test(line)) continue
    const heading = /^#{2,3}\s+(.+)$/.exec(line)?.[1]
    if (heading !== undefined) parts.push({ heading: heading.trim(), body: '' })
    else (parts.at(-1) as { body: string }).body += `${line}\n`
  }
  return parts.map((p) => ({ heading: p.heading, body: p.body.trim() })).filter((p) => !/^(?:sources|references|bibliography)$/i.test(p.heading))
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
