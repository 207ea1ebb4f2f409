/** A source as the writer knows it: the number it was given when shown to the writer. */
export interface Citable { id: number }

/**
 * Makes every `[n]` of a text point at a source that was read: numbers that match no source
 * are dropped (a writer may invent them), the sources cited are renumbered 1..k in order of
 * first citation, and sources never cited are left out. `[1, 3]` and `[1][3]` are understood.
 */
export function resolveCitations<T extends Citable> (text: string, sources: T[]): { text: string, sources: T[] } {
  const known = new Map(sources.map((source) => [source.id, source]))
  const renumbered = new Map<number, number>()
  const cited: T[] = []
  const rewritten = text.replace(/\s?\[(\d+(?:\s*,\s*\d+)*)\]/g, (whole, list: string) => {
    const numbers: number[] = []
    for (const part of list.split(',')) {
      const source = known.get(Number(part.trim()))
      if (source === undefined) continue
      let n = renumbered.get(source.id)
      if (n === undefined) {
        n = cited.length + 1
        renumbered.set(source.id, n)
        cited.push(source)
      }
      if (!numbers.includes(n)) numbers.push(n)
    }
    if (numbers.length === 0) return ''
    const lead = whole.startsWith(' ') || whole.startsWith('\n') ? whole[0] as string : ''
    return `${lead}${numbers.map((n) => `[${n}]`).join('')}`
  })
  return { text: rewritten, sources: cited.map((source, i) => ({ ...source, id: i + 1 })) }
}
