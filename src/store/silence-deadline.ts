import { ErrorReply } from 'redis'

/** However long Redis keeps answering a backlog, or this process stays too busy to read, no call waits longer than this many deadlines. */
const MAX_DEADLINES_PER_CALL = 8

/** Redis did not answer within the deadline: the call may still have run. */
export class RedisTimeoutError extends Error {
  override name = 'RedisTimeoutError'
}

/**
 * Deadlines for the calls to one Redis (over one connection or more) that measure its silence,
 * not a call's age: a call queued behind a burst that Redis is still answering is not failed
 * (a reply on any of its connections shows it answering), and time this process
 * itself was too busy to read (its timers fire late, or other callbacks hold the loop between a
 * timer and the check) does not count, so a burst on a slow machine is not mistaken for an
 * outage. One plain timer per call: node-redis's own `timeout` option costs an AbortSignal and a
 * DOMException per command.
 */
export class SilenceDeadline {
  readonly timeoutMs: number
  /** When the last reply (or error reply) from this Redis was read, on any of its connections. */
  #lastReplyAt = 0
  /**
   * The calls sent in the current synchronous stretch: node-redis writes them when it ends, so
   * their silence counts from then (`freeAt`, set by one immediate per stretch), not from the send.
   */
  #stretch: { freeAt: number } | null = null

  constructor (timeoutMs: number) {
    this.timeoutMs = timeoutMs
  }

  /** `reply`, or a RedisTimeoutError once Redis was silent too long; `onTimeout` is told first. */
  wait<T> (reply: Promise<T>, label: string, onTimeout?: () => void): Promise<T> {
    const sentAt = performance.now()
    const stretch = this.#currentStretch()
    const timeoutMs = this.timeoutMs
    const slackMs = Math.min(20, timeoutMs / 5)
    return new Promise<T>((resolve, reject) => {
      let settled = false
      let due = sentAt + timeoutMs
      const giveUpAt = sentAt + timeoutMs * MAX_DEADLINES_PER_CALL
      /** Silence is counted from here: the send, or the end of a stretch this process was too busy to read. */
      let quietFrom = sentAt
      let timer: NodeJS.Timeout
      const check = (): void => {
        const firedAt = performance.now()
        if (firedAt - due > slackMs) quietFrom = firedAt
        // The poll phase before this immediate reads every reply that had arrived when the timer
        // fired, so silence is measured up to `firedAt`. Whatever ran between the two (other
        // calls' checks, a burst of callbacks) is this process's own time, not Redis's silence.
        setImmediate(() => {
          if (settled) return
          const now = performance.now()
          const heardFrom = Math.max(quietFrom, stretch.freeAt, this.#lastReplyAt)
          if (firedAt - heardFrom < timeoutMs && now < giveUpAt) {
            due = Math.max(now + 1, Math.min(heardFrom + timeoutMs, giveUpAt))
            timer = setTimeout(check, due - now)
            return
          }
          settled = true
          onTimeout?.()
          reject(new RedisTimeoutError(`Redis did not answer ${label} within ${timeoutMs} ms`))
        })
      }
      timer = setTimeout(check, timeoutMs)
      reply.then((value) => {
        this.#lastReplyAt = performance.now()
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(value)
      }, (err: unknown) => {
        if (err instanceof ErrorReply) this.#lastReplyAt = performance.now()
        if (settled) return
        settled = true
        clearTimeout(timer)
        reject(err)
      })
    })
  }

  #currentStretch (): { freeAt: number } {
    if (this.#stretch !== null) return this.#stretch
    const stretch = { freeAt: 0 }
    this.#stretch = stretch
    setImmediate(() => {
      stretch.freeAt = performance.now()
      this.#stretch = null
    })
    return stretch
  }
}
