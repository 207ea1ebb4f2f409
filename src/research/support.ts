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
