import { createHash } from 'node:crypto'
import type { CacheKind, Cached } from '../research/engine.js'

/** Where cached answers are kept (SharedCache in the store). */
export interface AnswerStore {
  get (digest: string): Promise<string | null>
  set (digest: string, value: string, ttlSeconds: number): Promise<void>
}

export interface AnswerCacheOptions {
  store: AnswerStore
  /** `tenant`: each tenant its own answers; `shared`: every tenant's. */
  scope: 'tenant' | 'shared'
  ttlSeconds: Record<CacheKind, number>
  /** Largest answer kept, as JSON. */
  maxEntryBytes: number
  onLookup?: (kind: CacheKind, outcome: 'hit' | 'miss' | 'skipped') => void
}

/**
 * The shared cache as one job sees it (RunContext.cached): answers are found by a digest of
 * their kind, the job's tenant (unless shared) and everything that decides them. A job created
 * with `cache: false` reads nothing from it but still leaves what it fetched for the next one.
 * A cache that cannot answer is a miss: never a reason to fail a job.
 */
export class AnswerCache {
  readonly #options: AnswerCacheOptions

  constructor (options: AnswerCacheOptions) {
    this.#options = options
  }

  /** The cache for one job of `tenant` ('' for the open API's); `read` false: skip lookups. */
  forJob (tenant: string, read: boolean): <T>(kind: CacheKind, key: string, run: () => Promise<T>) => Promise<Cached<T>> {
    return async <T>(kind: CacheKind, key: string, run: () => Promise<T>): Promise<Cached<T>> => {
      const { store, ttlSeconds, maxEntryBytes, onLookup } = this.#options
      const digest = this.#digest(kind, tenant, key)
      if (read) {
        const held = parsed<T>(await store.get(digest).catch(() => null))
        if (held !== undefined) {
          onLookup?.(kind, 'hit')
          return { value: held, hit: true }
        }
      }
      onLookup?.(kind, read ? 'miss' : 'skipped')
      const value = await run()
      const json = JSON.stringify(value)
      if (json !== undefined && Buffer.byteLength(json) <= maxEntryBytes) await store.set(digest, json, ttlSeconds[kind]).catch(() => {})
      return { value, hit: false }
    }
  }

  #digest (kind: CacheKind, tenant: string, key: string): string {
    const scope = this.#options.scope === 'shared' ? '*' : `t:${tenant}`
    return `${kind}:${createHash('sha256').update(`${scope}\n${key}`).digest('base64url')}`
  }
}

/** A cached answer, or undefined for none (or one that is not JSON: a miss, not a failed job). */
function parsed<T> (held: string | null): T | undefined {
  if (held === null) return undefined
  try {
    return JSON.parse(held) as T
  } catch {
    return undefined
  }
}
