const STOPWORDS = new Set(`a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he her
here hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or other
our ours out over own same she should so some such than that the their theirs them then there these they this those
through to too under until up very was we were what when where which while who whom why will with would you your yours
also use used using uses one two may might must shall within without via per vs etc e.g i.e way ways get gets make makes`
  .split(/\s+/))

/** Lower-cased word tokens (letters, digits, inner hyphens). */
export function tokenize (text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)*/gu) ?? []
}

/**
 * A light English stemmer, enough to make "retries", "retrying" and "retried" one term:
 * plural and -ing/-ed endings only, never shorter than three letters.
 */
export function stem (word: string): string {
  if (word.length <= 3) return word
  if (word.endsWith('ies') || word.endsWith('ied')) return `${word.slice(0, -3)}y`
  if (word.endsWith('sses')) return word.slice(0, -2)
  if (word.endsWith('ing') && word.length > 5) return undouble(word.slice(0, -3))
  if (word.endsWith('ed') && word.length > 4) return undouble(word.slice(0, -2))
  if (word.endsWith('s') && !/(ss|us|is)$/.test(word)) return word.slice(0, -1)
  return word
}

function undouble (word: string): string {
  return /([^aeiouls])\1$/.test(word) ? word.slice(0, -1) : word
}

export function isStopword (token: string): boolean {
  return STOPWORDS.has(token)
}

/** The stems of the words of `text` that carry meaning: no stopwords, numbers or very short tokens. */
export function keyTerms (text: string): string[] {
  const seen = new Set<string>()
  for (const token of tokenize(text)) {
    if (token.length > 2 && !STOPWORDS.has(token) && !/^\d+$/.test(token)) seen.add(stem(token))
  }
  return [...seen]
}

export function sentences (text: string): string[] {
  return text
    .replace(/\s+/g, ' ')
    .split(/(?<=[.!?])\s+(?=[A-Z0-9"'(`[])/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

/** Share of distinct tokens two texts have in common (Jaccard index), 0-1. */
export function similarity (a: string, b: string): number {
  const left = new Set(tokenize(a))
  const right = new Set(tokenize(b))
  if (left.size === 0 || right.size === 0) return 0
  let shared = 0
  for (const token of left) if (right.has(token)) shared++
  return shared / (left.size + right.size - shared)
}

export function truncate (text: string, max: number): string {
  if (text.length <= max) return text
  const cut = text.slice(0, max - 1)
  const space = cut.lastIndexOf(' ')
  return `${space > max / 2 ? cut.slice(0, space) : cut}…`
}
