/** A place held by one open stream. Giving it back more than once gives it back once. */
export interface StreamSlot {
  release (): void
}

/**
 * Places for open event streams: at most `max` on this process and `maxPerClient` per client.
 * A place is checked and taken in one synchronous step, before the stream's first await:
 * counted only once a stream had opened, many opened at once all passed a check that none of
 * them had been counted in yet (#25).
 */
export class StreamSlots {
  readonly #perClient = new Map<string, number>()
  #open = 0

  readonly max: number
  readonly maxPerClient: number

  constructor (max: number, maxPerClient: number) {
    this.max = max
    this.maxPerClient = maxPerClient
  }

  /** Places held now (for tests and metrics). */
  get open (): number {
    return this.#open
  }

  heldBy (client: string): number {
    return this.#perClient.get(client) ?? 0
  }

  /** A place for `client`, or null when this process or the client is at its cap. */
  take (client: string): StreamSlot | null {
    const held = this.heldBy(client)
    if (this.#open >= this.max || held >= this.maxPerClient) return null
    this.#open++
    this.#perClient.set(client, held + 1)
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        this.#open--
        const left = this.heldBy(client) - 1
        if (left === 0) this.#perClient.delete(client)
        else this.#perClient.set(client, left)
      }
    }
  }
}
