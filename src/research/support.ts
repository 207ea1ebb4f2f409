import { isStopword, stem, tokenize } from './text.js'

/**
 * Share of a sentence's meaningful words that the cited text holds, 0-1: a lexical support
 * check. A number the sentence states (in digits or in words) that the text does not hold makes
 * it 0: "a crash loses at most five seconds" is not supported by a passage that says one second.
 */
export function support (sentence: string, evidence: string): number {
  const words = tokenize(sentence).filter((t) => (!isStopword(t) && t.length > 2) || /^\d/.test(t) || NUMBER_WORDS.has(t))
  if (words.length === 0) return 0
  const held = new Set(tokenize(evidence).map(stem))
  const numbers = words.filter((w) => /^\d/.test(w) || NUMBER_WORDS.has(w))
  if (numbers.some((n) => !held.has(stem(n)))) return 0
  const stems = [...new Set(words.map(stem))]
  return stems.filter((s) => held.has(s)).length / stems.length
}

/** A sentence is supported when its cited passages hold this share of its words (see support). */
export const SUPPORTED = 0.6

const NUMBER_WORDS = new Set(['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
  'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'hundred', 'thousand', 'million', 'billion', 'once', 'twice', 'half', 'double'])

/** Words that turn a statement around. */
const NEGATIONS = new Set(['not', 'no', 'never', 'none', 'nothing', 'cannot', "can't", "don't", "doesn't", "isn't", "aren't", "won't", 'without', 'neither', 'nor'])
/** Words whose opposite a claim must not swap in: "faster" for "slower", "always" for "never". */
const OPPOSITES: Array<[string, string]> = [
  ['faster', 'slower'], ['more', 'less'], ['more', 'fewer'], ['higher', 'lower'], ['larger', 'smaller'], ['bigger', 'smaller'],
  ['longer', 'shorter'], ['safer', 'riskier'], ['always', 'never'], ['always', 'sometimes'], ['before', 'after'], ['increase', 'decrease'],
  ['increases', 'decreases'], ['earlier', 'later'], ['stronger', 'weaker'], ['better', 'worse'], ['first', 'last'], ['minimum', 'maximum'],
  ['cheaper', 'costlier'], ['open', 'closed'], ['allowed', 'forbidden'], ['safe', 'unsafe'], ['all', 'some'], ['most', 'least']
]

/**
 * Whether a claim says the opposite of the sentence it leans on: one of them negated and the
 * other not ("a crash never loses writes" against "a crash loses at most one second of
 * writes"), or a word swapped for its opposite ("faster" where the sentence says "slower").
 */
export function contradicts (claim: string, sentence: string): boolean {
  const said = new Set(wordsOf(claim))
  const source = new Set(wordsOf(sentence))
  const negated = (words: Set<string>): boolean => [...words].some((w) => NEGATIONS.has(w) || w.endsWith("n't"))
  if (negated(said) !== negated(source)) return true
  return OPPOSITES.some(([a, b]) => (said.has(a) && source.has(b) && !source.has(a)) || (said.has(b) && source.has(a) && !source.has(b)))
}

function wordsOf (text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []
}
