import { stemmer as porterStem } from 'stemmer'

const STOPWORDS = new Set(`a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he her
here hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or other
our ours out over own same she should so some such than that the their theirs them then there these they this those
through to too under until up very was we were what when where which while who whom why will with would you your yours
also use used using uses one two may might must shall within without via per vs etc e.g i.e way ways get gets make makes`
  .split(/\s+/))

/**
 * Lower-cased word tokens (letters, digits, inner hyphens). A hyphenated word also gives its
 * parts, so "at least once" finds "at-least-once".
 */
// Bounded by letters and digits, not \b: \b is ASCII-only, so in "aбaб…" every position is a
// boundary and \p{L}+ would scan on from each one (quadratic on a hostile page).
const NEGATION = /(?<![\p{L}\p{N}])\p{L}+n['’]t(?![\p{L}\p{N}])/gu

export function tokenize (text: string): string[] {
  const tokens: string[] = []
  // "Don't", "won't", "isn't" say "not", a stopword: split at the apostrophe they leave "don", "win", "isn".
  // "80%" is a percentage, as other sources write it in words.
  // Each pattern is tried only where it can match: their scans were more than half of tokenizing
  // a page's text, where few paragraphs hold either.
  let lower = text.toLowerCase()
  if (lower.includes("n't") || lower.includes('n’t')) lower = lower.replace(NEGATION, ' ')
  if (lower.includes('%')) lower = lower.replace(PERCENT_SIGN, '$1 percentage ')
  for (const token of lower.match(/[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)*/gu) ?? []) {
    tokens.push(token)
    if (token.includes('-')) tokens.push(...token.split('-'))
    // "v4" is version 4, as other sources write it.
    else if (/^v\d+$/.test(token)) tokens.push('version', token.slice(1))
  }
  return tokens
}

/** A number with a percent sign after it ("80%", "99.9 %"); not a URL's escape ("%20"), nor "10 % 3" or "80%off". */
const PERCENT_SIGN = /(?<![\p{L}\p{N}%.])(\d+(?:\.\d+)?)\s?%(?![\p{L}\p{N}%]|\s+\d)/gu

/**
 * The Porter stem of a word (wooorm's `stemmer`), so that "persistence" and "persist", "evicted"
 * and "eviction", "retries" and "retry" are one term. Cached: the same few thousand words come
 * back in every job.
 */
export function stem (word: string): string {
  let stemmed = STEMS.get(word)
  if (stemmed === undefined) {
    stemmed = porterStem(IRREGULAR.get(word) ?? word)
    if (STEMS.size >= MAX_CACHED_STEMS) STEMS.clear()
    STEMS.set(word, stemmed)
  }
  return stemmed
}

/** Past forms of irregular English verbs and the comparatives of common adjectives, which no suffix rule finds: "rewritten" is "rewrite", "longer" is "long". */
const IRREGULAR = new Map(`ate:eat eaten:eat began:begin begun:begin bitten:bite blew:blow blown:blow broke:break broken:break
brought:bring built:build bought:buy caught:catch chose:choose chosen:choose dealt:deal did:do done:do
drew:draw drawn:draw drove:drive driven:drive fell:fall fallen:fall felt:feel found:find flew:fly flown:fly
forgot:forget forgotten:forget froze:freeze frozen:freeze gave:give given:give went:go gone:go got:get
gotten:get grew:grow grown:grow held:hold hid:hide hidden:hide kept:keep knew:know known:know led:lead
lost:lose made:make meant:mean met:meet paid:pay ran:run rode:ride ridden:ride rose:rise risen:rise
rewrote:rewrite rewritten:rewrite saw:see seen:see sought:seek sent:send shown:show slept:sleep spoke:speak
spoken:speak spent:spend stole:steal stolen:steal stood:stand struck:strike swept:sweep taught:teach
took:take taken:take thought:think threw:throw thrown:throw told:tell tore:tear torn:tear
understood:understand woke:wake woken:wake won:win wore:wear worn:wear wrote:write written:write
overwritten:overwrite overwrote:overwrite queued:queue queuing:queue queueing:queue
longer:long longest:long shorter:short shortest:short bigger:big biggest:big smaller:small smallest:small
faster:fast fastest:fast slower:slow slowest:slow higher:high highest:high lower:low lowest:low larger:large
largest:large later:late latest:late earlier:early earliest:early cheaper:cheap
cheapest:cheap stronger:strong strongest:strong weaker:weak weakest:weak older:old oldest:old newer:new
newest:new`
  .split(/\s+/).map((pair) => pair.split(':') as [string, string]))

const STEMS = new Map<string, string>()
const MAX_CACHED_STEMS = 50_000

export function isStopword (token: string): boolean {
  return STOPWORDS.has(token)
}

/**
 * The stems of the words of `text` that carry meaning: no stopwords, no one- or two-digit numbers
 * (a status code or a port stays) but a signed one ("-1") or a version's ("v4"), no two-letter
 * words unless they hold a digit ("k1") or are a letter on its own ("b").
 */
export function keyTerms (text: string): string[] {
  const seen = new Set<string>()
  const letters = lettersNamed(text)
  // "-1" is a value a command returns ("TTL returns -1"), not a count.
  const signed = new Set([...text.matchAll(/(?<![\p{L}\p{N}-])-(\d{1,2})\b/gu)].map((m) => m[1] as string))
  for (const token of tokenize(text)) {
    // A hyphenated word counts by its parts, which tokenize gives too; but "at-most-once" says what
    // its parts do not: a word of one part or none that is not a stopword is a term of its own.
    if (STOPWORDS.has(token) || (/^\d{1,2}$/.test(token) && !signed.has(token))) continue
    if (token.includes('-') && token.split('-').filter((piece) => piece.length > 2 && !STOPWORDS.has(piece)).length > 1) continue
    // "v4" is how people write "version 4": which version is asked about as well.
    const version = /^v(\d+)$/.exec(token)?.[1]
    if (version !== undefined) for (const term of [stem('version'), version]) seen.add(term)
    // Short words say little, but "k1" or "b2" name something, as does a letter on its own ("k1 and b").
    else if (token.length > 2 || /\d/.test(token) || letters.has(token)) seen.add(stem(token))
  }
  return [...seen]
}

/**
 * Letters written as words of their own ("what do k1 and b do"): a parameter's or a variable's
 * name. Not "a" or "I", nor what an apostrophe leaves ("job's", "we'd") or an abbreviation ("e.g.").
 */
function lettersNamed (text: string): Set<string> {
  return new Set([...text.toLowerCase().matchAll(/(?<![\p{L}\p{N}'’.-])([b-hj-z])(?![\p{L}\p{N}'’-]|\.\p{L})/gu)].map((m) => m[1] as string))
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
