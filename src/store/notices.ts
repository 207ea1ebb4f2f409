/** A record changed: its new version and status ('deleted' when it was deleted). */
export interface JobNotice { id: string, version: number, status: string }

/** What a wait for a job's next change ended with. */
export type WaitEnd = 'changed' | 'deleted' | 'timeout' | 'resync' | 'aborted'

/**
 * Notices of record changes, fanned out to the readers waiting in this process: from Redis's
 * pub/sub (one subscriber per process, every replica's writes, a running record's only while a
 * reader here waits: see NoticeSubscriber) or, without Redis, straight from the local store. A
 * reader subscribes to a job before it reads it, so no change can slip between its read and its
 * wait. When the subscriber reconnects, notices may have been missed: every waiter is woken to
 * read again (`resync`).
 */
export class JobNotices {
  readonly #watchers = new Map<string, Set<JobWatch>>()
  readonly #resyncListeners = new Set<() => void>()
  readonly #listeners = new Set<(notice: JobNotice) => void>()
  readonly #watchingListeners = new Set<(watching: boolean) => void>()
  /** Whether notices arrive now (a live subscriber, or no Redis at all). */
  live: boolean
  /** Redis refuses this process the running records' notices (an ACL): waiting readers are not told of their steps. */
  #runningRefused = false

  constructor (live = true) {
    this.live = live
  }

  /** Waiting readers in this process. */
  get watching (): number {
    let count = 0
    for (const set of this.#watchers.values()) count += set.size
    return count
  }

  emit (notice: JobNotice): void {
    for (const listener of this.#listeners) listener(notice)
    for (const watch of this.#watchers.get(notice.id) ?? []) watch.notify(notice)
  }

  /** Parses a notice as published by the scripts: `<id> <version> <status>`. */
  emitMessage (message: string): void {
    const [id, version, status] = message.split(' ')
    if (id !== undefined && version !== undefined && status !== undefined) this.emit({ id, version: Number(version), status })
  }

  /** The subscriber (re)connected: notices may have been missed meanwhile. */
  resynced (): void {
    this.live = true
    this.resyncWatchers()
    for (const listener of this.#resyncListeners) listener()
  }

  /** Whether a waiting reader is told of every change now (readers that are not read on a timer). */
  get readersLive (): boolean {
    return this.live && !this.#runningRefused
  }

  /**
   * Redis refuses (true) or allows again (false) the running records' notices: waiting readers are
   * woken to read, and go on reading on a timer while refused.
   */
  runningRefused (refused: boolean): void {
    if (refused === this.#runningRefused) return
    this.#runningRefused = refused
    this.resyncWatchers()
  }

  /** Wakes every waiting reader to read again: notices of some of its changes may have been missed. */
  resyncWatchers (): void {
    for (const watches of this.#watchers.values()) for (const watch of watches) watch.resync()
  }

  /** Told when the first reader starts waiting (true) and when the last one stops (false). */
  onWatching (listener: (watching: boolean) => void): void {
    this.#watchingListeners.add(listener)
  }

  /** Told of every notice (the store keeps its copies current with them). */
  onNotice (listener: (notice: JobNotice) => void): void {
    this.#listeners.add(listener)
  }

  /** The subscriber lost its connection: until it is back, notices may be missed. */
  lost (): void {
    this.live = false
  }

  onResync (listener: () => void): void {
    this.#resyncListeners.add(listener)
  }

  /** Starts watching a job: changes after `version` are remembered until `next` is asked. */
  watch (id: string, version: number): JobWatch {
    const watch = new JobWatch(version, () => {
      const set = this.#watchers.get(id)
      if (set?.delete(watch) !== true) return
      if (set.size === 0) this.#watchers.delete(id)
      if (this.#watchers.size === 0) for (const listener of this.#watchingListeners) listener(false)
    })
    const first = this.#watchers.size === 0
    let set = this.#watchers.get(id)
    if (set === undefined) this.#watchers.set(id, set = new Set())
    set.add(watch)
    if (first) for (const listener of this.#watchingListeners) listener(true)
    return watch
  }
}

/** One reader's watch on one job. Call `close` when done. */
export class JobWatch {
  version: number
  #pending: WaitEnd | null = null
  #wake: ((end: WaitEnd) => void) | null = null
  readonly #close: () => void

  constructor (version: number, close: () => void) {
    this.version = version
    this.#close = close
  }

  /**
   * The reader read `version` after it started watching: changes up to it are not news. (Watch
   * first, then read, then settle: no change can fall between the read and the wait.) A resync
   * stays: the read may have run before the notices it missed could reach it.
   */
  settle (version: number): void {
    if (version < this.version) return
    this.version = version
    if (this.#pending === 'changed') this.#pending = null
  }

  notify (notice: JobNotice): void {
    if (notice.status === 'deleted') this.#settle('deleted')
    else if (notice.version > this.version) {
      this.version = notice.version
      this.#settle('changed')
    }
  }

  resync (): void {
    this.#settle('resync')
  }

  /** Resolves at the next change (or one that came since the last call), after `ms`, or on abort. */
  async next (ms: number, signal?: AbortSignal): Promise<WaitEnd> {
    if (this.#pending !== null) {
      const end = this.#pending
      this.#pending = null
      return end
    }
    if (signal?.aborted === true) return 'aborted'
    return await new Promise<WaitEnd>((resolve) => {
      const done = (end: WaitEnd): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#wake = null
        resolve(end)
      }
      const onAbort = (): void => done('aborted')
      const timer = setTimeout(() => done('timeout'), ms)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#wake = done
    })
  }

  close (): void {
    this.#wake?.('aborted')
    this.#close()
  }

  #settle (end: WaitEnd): void {
    if (this.#wake !== null) this.#wake(end)
    // A deletion outranks a change still waiting to be read, and a resync a change (a read
    // settles a change it saw, but not the changes a resync says may have gone unheard).
    else if (this.#pending === null || end === 'deleted' || (end === 'resync' && this.#pending === 'changed')) this.#pending = end
  }
}
