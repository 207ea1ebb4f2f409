import {
  type Enqueue, type JobStore, type ListPage, type ListQuery, type PutResult, type StoredJob,
  StoreFullError, compareNewestFirst, createdMs, isAfterCursor, isFinal, stampWrite
} from './job-store.js'

export interface MemoryJobStoreOptions {
  ttlSeconds: number
  /** Most records held; past it, expired then the oldest finished records are evicted. */
  maxJobs: number
  now?: () => number
}

interface Entry { job: StoredJob, expiresAtMs: number }

/**
 * Jobs in a Map, with the same TTL rules as Redis and a hard bound on size.
 * The Map's insertion order is kept as "least recently written first" (every write
 * re-inserts), which makes "evict the oldest finished record" a scan from the front.
 */
export class MemoryJobStore implements JobStore {
  readonly #entries = new Map<string, Entry>()
  readonly #queue: string[] = []
  readonly #ttlSeconds: number
  readonly #maxJobs: number
  readonly #now: () => number

  constructor (options: MemoryJobStoreOptions) {
    this.#ttlSeconds = options.ttlSeconds
    this.#maxJobs = options.maxJobs
    this.#now = options.now ?? Date.now
  }

  get size (): number {
    return this.#entries.size
  }

  async get (id: string): Promise<StoredJob | null> {
    return this.peek(id)
  }

  /** Synchronous read, for the fallback store's "newest of both" merge. */
  peek (id: string): StoredJob | null {
    const entry = this.#entries.get(id)
    if (entry === undefined) return null
    if (entry.expiresAtMs <= this.#now()) {
      this.#entries.delete(id)
      return null
    }
    return entry.job
  }

  async put (job: StoredJob, expectedVersion: number, enqueue?: Enqueue): Promise<PutResult> {
    const current = this.peek(job.job_id)
    if (current === null ? expectedVersion !== 0 : current.version !== expectedVersion || isFinal(current.status)) {
      return { ok: false, current }
    }
    const written = stampWrite(job, expectedVersion, this.#ttlSeconds, this.#now())
    this.#store(written)
    this.#enqueue(job.job_id, enqueue)
    return { ok: true, job: written }
  }

  /**
   * Keeps a copy of `job` as it is (version and expiry included) when it is newer than what
   * is held: the fallback store's copy of what it wrote to Redis. A full store skips it.
   */
  adopt (job: StoredJob): void {
    const current = this.peek(job.job_id)
    if (current !== null && current.version >= job.version) return
    try {
      this.#store(job)
    } catch (err) {
      if (!(err instanceof StoreFullError)) throw err
    }
  }

  /**
   * Writes a job this store has no copy of, trusting the writer's `expectedVersion`: the
   * fallback store's path when Redis holds the record but cannot be reached.
   */
  putUnseen (job: StoredJob, expectedVersion: number, enqueue?: Enqueue): PutResult {
    const written = stampWrite(job, expectedVersion, this.#ttlSeconds, this.#now())
    this.#store(written)
    this.#enqueue(job.job_id, enqueue)
    return { ok: true, job: written }
  }

  /** Takes an id out of the local queue; true when it was there. */
  unqueue (id: string): boolean {
    const index = this.#queue.indexOf(id)
    if (index === -1) return false
    this.#queue.splice(index, 1)
    return true
  }

  /** Drops expired records; called periodically so memory is returned even without writes. */
  sweep (): number {
    const now = this.#now()
    let dropped = 0
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAtMs <= now) {
        this.#entries.delete(id)
        dropped++
      }
    }
    return dropped
  }

  async delete (id: string): Promise<boolean> {
    this.unqueue(id)
    return this.#entries.delete(id)
  }

  /** `include` narrows the list to some ids (the fallback store lists only records Redis lacks). */
  async list (query: ListQuery, include?: (id: string) => boolean): Promise<ListPage> {
    const now = this.#now()
    const matches: StoredJob[] = []
    for (const { job, expiresAtMs } of this.#entries.values()) {
      if (expiresAtMs <= now) continue
      if (include !== undefined && !include(job.job_id)) continue
      if (query.status !== undefined && job.status !== query.status) continue
      if (!isAfterCursor(createdMs(job), job.job_id, query.after)) continue
      matches.push(job)
    }
    matches.sort(compareNewestFirst)
    return { jobs: matches.slice(0, query.limit), hasMore: matches.length > query.limit }
  }

  async dequeue (): Promise<string | null> {
    return this.#queue.shift() ?? null
  }

  async queueDepth (): Promise<number> {
    return this.#queue.length
  }

  #store (job: StoredJob): void {
    const id = job.job_id
    const expiresAtMs = Date.parse(job.expires_at)
    if (!this.#entries.delete(id) && this.#entries.size >= this.#maxJobs) this.#makeRoom()
    this.#entries.set(id, { job, expiresAtMs })
  }

  /** Queues an id without writing its record (used to undo a failed hand-over to Redis). */
  enqueue (id: string, where: Enqueue): void {
    this.#enqueue(id, where)
  }

  #enqueue (id: string, enqueue: Enqueue | undefined): void {
    if (enqueue === 'tail') this.#queue.push(id)
    else if (enqueue === 'head') this.#queue.unshift(id)
  }

  #makeRoom (): void {
    this.sweep()
    if (this.#entries.size < this.#maxJobs) return
    for (const [id, entry] of this.#entries) {
      if (isFinal(entry.job.status)) {
        this.#entries.delete(id)
        return
      }
    }
    throw new StoreFullError(`In-memory store is full: ${this.#maxJobs} jobs are pending or running`)
  }
}
