import type { RedisGate } from './redis-gate.js'
import type { Roster } from './roster.js'

export interface ReplicaRosterOptions {
  gate: RedisGate
  /** This replica's name in the roster. */
  replica: string
  /** How often this replica says it is here (REPLICA_HEARTBEAT_MS). */
  everyMs: number
  /** Replicas heard from within this long count (JOB_VISIBILITY_GRACE_MS): one silent for longer holds no job anyone may still ask for. */
  graceMs: number
  /** Jobs this replica holds that Redis does not have yet (created while it was cut off). */
  held: () => number
}

/** A replica not heard from for this many heartbeats has gone silent: cut off, stalled or dead. */
const SILENT_AFTER_BEATS = 3
/** Slack between clocks beyond what the replicas report (a report is up to a heartbeat old). */
const CLOCK_SLACK_MS = 1000
/** A round trip this quick measures the clock's offset well enough (within half of it). */
const OFFSET_ROUND_TRIP_MS = 250

/**
 * Which replicas are up and connected, from the heartbeats they write to Redis. It lets a read of
 * an id issued moments ago that no store holds answer a certain 404 when it can be certain: every
 * replica heard from within the grace has been heard from since the id was issued, holds nothing
 * that only it has, and is still heard from. While any of them has gone silent (cut off from
 * Redis, where it may have accepted the job into its own memory), the answer stays 503.
 */
export class ReplicaRoster {
  readonly #options: ReplicaRosterOptions
  #roster: Roster | null = null
  /** performance.now() when #roster arrived. */
  #heardAt = 0
  #timer: NodeJS.Timeout | null = null
  /** This replica's wall clock less Redis's, as last measured (ms). */
  #skewMs = 0

  constructor (options: ReplicaRosterOptions) {
    this.#options = options
  }

  start (): void {
    if (this.#timer !== null) return
    void this.beat()
    this.#timer = setInterval(() => { void this.beat() }, this.#options.everyMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** Off the roster (this replica stops, holding nothing of its own). */
  async leave (): Promise<void> {
    this.stop()
    await this.#options.gate.call((redis) => redis.leaveRoster(this.#options.replica), 'write')
  }

  /** One heartbeat now (a timer sends one every `everyMs`). */
  async beat (): Promise<void> {
    const { gate, replica, held, graceMs } = this.#options
    const sent = performance.now()
    const sentWallMs = Date.now()
    const reply = await gate.call((redis) => redis.heartbeat(replica, held(), sentWallMs, graceMs, this.#skewMs), 'write')
    if (!reply.ok) return
    // This clock's offset from Redis's, from a quick round trip (half of it each way).
    const roundTripMs = performance.now() - sent
    if (roundTripMs < OFFSET_ROUND_TRIP_MS) this.#skewMs = sentWallMs + roundTripMs / 2 - reply.value.nowMs
    // A replica this one heard of within the grace stays on its roster even if Redis forgot it
    // (Redis lost its data while that replica was cut off): it may hold jobs no one else has.
    const known = new Set(reply.value.entries.map((entry) => entry.replica))
    const forgotten = (this.#roster?.entries ?? []).filter((entry) => !known.has(entry.replica) && entry.atMs >= reply.value.nowMs - graceMs)
    this.#roster = { nowMs: reply.value.nowMs, entries: [...reply.value.entries, ...forgotten] }
    this.#heardAt = sent
  }

  /**
   * Whether this replica may still take a create into its own memory: the others must know it is
   * there. One that was on the roster and has been silent so long that the others will take it for
   * gone before the grace ends (they would answer 404 for the job) may not; one never heard from
   * (Redis down since it started) and a grace too short to matter leave the choice as it was.
   */
  get mayHoldCreates (): boolean {
    const { everyMs, graceMs } = this.#options
    const forgottenAfterMs = graceMs - SILENT_AFTER_BEATS * everyMs
    if (this.#roster === null || forgottenAfterMs <= 0) return true
    return performance.now() - this.#heardAt < forgottenAfterMs
  }

  /** Whether no replica can be holding a job issued at `issuedAtMs` (its own clock) that Redis does not have. */
  accountsFor (issuedAtMs: number): boolean {
    const roster = this.#roster
    const { everyMs, replica: self } = this.#options
    const silentAfterMs = SILENT_AFTER_BEATS * everyMs
    const sinceHeard = performance.now() - this.#heardAt
    // This replica's own view must be fresh: it is connected, and so is what it knows.
    if (roster === null || sinceHeard > silentAfterMs) return false
    const nowMs = roster.nowMs + sinceHeard
    // An id carries the wall clock of the replica that issued it: allow for the slowest clock.
    const behindMs = Math.max(0, ...roster.entries.map((entry) => -entry.skewMs))
    const issuedByRedisClock = issuedAtMs + behindMs + CLOCK_SLACK_MS
    // A replica that left holds nothing and takes no more jobs: it accounts for every id.
    return roster.entries.every((entry) => entry.replica === self || entry.left || (
      nowMs - entry.atMs <= silentAfterMs && entry.atMs >= issuedByRedisClock && entry.held === 0
    ))
  }
}
