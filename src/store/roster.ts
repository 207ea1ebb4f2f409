/**
 * One replica as the roster last heard it: when (Redis clock), what it holds alone, its clock's
 * offset from Redis's, and whether it said it left (it stopped holding nothing of its own).
 */
export interface RosterEntry { replica: string, atMs: number, held: number, skewMs: number, left: boolean }

/** What a heartbeat gets back: Redis's now and every replica heard from within the grace. */
export interface Roster { nowMs: number, entries: RosterEntry[] }

/** The heartbeat script's reply as a roster. */
export function parseRoster (reply: Array<number | string>): Roster {
  const entries: RosterEntry[] = []
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const entry = JSON.parse(String(reply[i + 1])) as { at: number, held: number, skew: number, left?: boolean }
    entries.push({ replica: String(reply[i]), atMs: entry.at, held: entry.held, skewMs: entry.skew, left: entry.left === true })
  }
  return { nowMs: Number(reply[0]), entries }
}
