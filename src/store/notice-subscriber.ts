import { ErrorReply } from 'redis'
import type { JobNotices } from './notices.js'
import { type RedisClient, connectInBackground } from './redis-client.js'
import type { NoticeChannels } from './redis.js'

/** How long the running records' channel stays subscribed after the last reader stopped waiting. */
const DEFAULT_LINGER_MS = 30_000
/** How soon a subscription that failed on a live connection is tried again. */
const RETRY_MS = 1000

export interface NoticeSubscriberOptions {
  /** How long the running records' channels stay subscribed after the last reader stopped waiting (default 30 s). */
  lingerMs?: number
  /** Told when Redis refuses the running records' channels, and when it allows them again. */
  logger?: { error: (obj: object, msg: string) => void, info: (obj: object, msg: string) => void }
}

/**
 * The process's one connection for record-change notices (pub/sub). It always listens to the
 * channels of every write but a running record's; the running records' channels (their start and
 * progress, most of a job's writes) only while a reader here waits on a job, and for `lingerMs`
 * after the last one stops (a client polling with `wait` comes back at once), so a process
 * nobody watches through is not sent every progress write of every replica. A reader that
 * started waiting before that subscription took effect may have missed a notice: it reads
 * again once it has (JobNotices.resyncWatchers).
 */
export class NoticeSubscriber {
  readonly #connection: RedisClient
  readonly #channels: NoticeChannels
  readonly #notices: JobNotices
  readonly #lingerMs: number
  readonly #logger: NoticeSubscriberOptions['logger']
  readonly #onMessage = (message: string): void => this.#notices.emitMessage(message)
  /** The channels of every write are subscribed (node-redis subscribes them again after a reconnect). */
  #subscribed = false
  /** The running records' channels are subscribed, as far as Redis confirmed. */
  #runningSubscribed = false
  #reconciling = false
  /** Redis refused the running records' channels (logged once until allowed). */
  #refused = false
  #lingerTimer: NodeJS.Timeout | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #closed = false

  constructor (client: RedisClient, channels: NoticeChannels, notices: JobNotices, options: NoticeSubscriberOptions = {}) {
    this.#connection = client.duplicate()
    this.#channels = channels
    this.#notices = notices
    this.#lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS
    this.#logger = options.logger
    const connection = this.#connection
    connection.on('error', () => { /* the main client reports Redis errors */ })
    connection.on('reconnecting', () => notices.lost())
    connection.on('end', () => notices.lost())
    connection.on('ready', () => { void this.#ready() })
    notices.onWatching((watching) => {
      clearTimeout(this.#lingerTimer)
      this.#lingerTimer = undefined
      if (watching) void this.#reconcile()
      else this.#lingerTimer = setTimeout(() => { this.#lingerTimer = undefined; void this.#reconcile() }, this.#lingerMs).unref()
    })
    connectInBackground(connection)
  }

  /** Whether the running records' channels are subscribed (confirmed by Redis). */
  get listeningToRunning (): boolean {
    return this.#runningSubscribed
  }

  destroy (): void {
    this.#closed = true
    clearTimeout(this.#lingerTimer)
    clearTimeout(this.#retryTimer)
    this.#connection.destroy()
  }

  async #subscribe (channels: string[]): Promise<void> {
    await Promise.all(channels.map(async (channel) => await this.#connection.subscribe(channel, this.#onMessage)))
  }

  #allowed (): void {
    this.#notices.runningRefused(false)
    if (!this.#refused) return
    this.#refused = false
    if (this.#runningSubscribed) this.#logger?.info({ channels: this.#channels.running }, 'Redis allows this process the running jobs\' notice channel again')
  }

  async #ready (): Promise<void> {
    if (this.#subscribed) {
      // A reconnect: node-redis subscribed every channel it had again; what came meanwhile is lost.
      this.#notices.resynced()
      await this.#reconcile()
      return
    }
    try {
      await this.#subscribe(this.#channels.all)
    } catch {
      return // tried again at the next ready
    }
    this.#subscribed = true
    this.#notices.resynced()
    await this.#reconcile()
  }

  /** Subscribes or unsubscribes the running records' channels until that matches whether a reader waits. */
  async #reconcile (): Promise<void> {
    if (this.#reconciling || !this.#subscribed) return
    this.#reconciling = true
    try {
      for (;;) {
        const wanted = !this.#closed && (this.#notices.watching > 0 || this.#lingerTimer !== undefined)
        // Nobody waits for what was refused.
        if (!wanted) this.#allowed()
        if (wanted === this.#runningSubscribed) return
        if (wanted) {
          await this.#subscribe(this.#channels.running)
          this.#runningSubscribed = true
          this.#notices.resyncWatchers()
          this.#allowed()
        } else {
          this.#runningSubscribed = false
          try {
            await Promise.all(this.#channels.running.map(async (channel) => await this.#connection.unsubscribe(channel, this.#onMessage)))
          } catch (err) {
            // Still subscribed as far as node-redis knows (it subscribes it again on a reconnect).
            this.#runningSubscribed = true
            throw err
          }
        }
      }
    } catch (err) {
      // The connection is down (its next ready tries again) or Redis refused the command (an
      // ACL): try again soon. While refused, readers here are not told of running records'
      // changes: they are woken, and read on a timer (SSE_POLL_MS), as while the connection is down.
      if (err instanceof ErrorReply && !this.#runningSubscribed && !this.#refused) {
        this.#refused = true
        this.#notices.runningRefused(true)
        this.#logger?.error({ err, channels: this.#channels.running }, 'Redis refuses this process the running jobs\' notice channel (an ACL that does not name it?): event streams here read every SSE_POLL_MS, and long polls answer at their deadline, until it is allowed; tried again every second')
      }
      clearTimeout(this.#retryTimer)
      if (!this.#closed) this.#retryTimer = setTimeout(() => { void this.#reconcile() }, RETRY_MS).unref()
    } finally {
      this.#reconciling = false
    }
  }
}
