import type { RedisGate } from './redis-gate.js'

export interface SharedCacheOptions {
  gate?: RedisGate
  /** Most entries in Redis (spread over the shards), oldest written out first. */
  maxEntries: number
  /** Most bytes held in this process (no Redis, or while it cannot be reached), least recently used out first. */
  maxLocalBytes: number
}

interface LocalEntry { value: string, expiresAt: number }

/**
 * A cache of answers that cost time or money to get again (pages read, LLM answers), by digest,
 * shared by replicas through Redis and bounded there (see cache-set.lua). Without Redis, or while
 * it cannot be reached, this process keeps its own, bounded in bytes. What the digest covers
 * (tenant, request) is the caller's; a miss is never an error.
 */
export class SharedCache {
  readonly #options: SharedCacheOptions
  readonly #local = new Map<string, LocalEntry>()
  #localBytes = 0

  constructor (options: SharedCacheOptions) {
    this.#options = options
  }

  get localBytes (): number {
    return this.#localBytes
  }

  async get (digest: string): Promise<string | null> {
    const remote = await this.#options.gate?.call((redis) => redis.cacheGet(digest))
    if (remote?.ok === true) return remote.value
    const entry = this.#local.get(digest)
    if (entry === undefined) return null
    this.#local.delete(digest)
    if (entry.expiresAt <= Date.now()) {
      this.#localBytes -= entryBytes(digest, entry)
      return null
    }
    // Least recently used last: read entries move to the back of the Map.
    this.#local.set(digest, entry)
    return entry.value
  }

  async set (digest: string, value: string, ttlSeconds: number): Promise<void> {
    const { gate, maxEntries } = this.#options
    const remote = await gate?.call((redis) => redis.cacheSet(digest, value, ttlSeconds, { maxEntries }), 'write')
    if (remote?.ok === true) return
    this.#setLocal(digest, { value, expiresAt: Date.now() + ttlSeconds * 1000 })
  }

  #setLocal (digest: string, entry: LocalEntry): void {
    const replaced = this.#local.get(digest)
    if (replaced !== undefined) {
      this.#local.delete(digest)
      this.#localBytes -= entryBytes(digest, replaced)
    }
    const bytes = entryBytes(digest, entry)
    if (bytes > this.#options.maxLocalBytes) return
    this.#local.set(digest, entry)
    this.#localBytes += bytes
    for (const [oldest, held] of this.#local) {
      if (this.#localBytes <= this.#options.maxLocalBytes) break
      this.#local.delete(oldest)
      this.#localBytes -= entryBytes(oldest, held)
    }
  }
}

function entryBytes (digest: string, entry: LocalEntry): number {
  return Buffer.byteLength(digest) + Buffer.byteLength(entry.value)
}
