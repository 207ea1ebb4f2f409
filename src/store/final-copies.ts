import { isFinal } from '../schemas/job.js'
import { dropOldest } from './bounded.js'
import type { StoredJob } from './job-store.js'
import type { MemoryJobStore } from './memory.js'
import type { JobNotices } from './notices.js'

const TRUSTED_MAX = 100_000

/**
 * The copies this process keeps of what Redis holds, and which of them are known to be current:
 * a final record changes only by a webhook amendment or a delete, and either publishes a notice
 * that drops the id here. While notices arrive, a read of such a job needs no Redis round trip.
 */
export class FinalCopies {
  readonly #memory: MemoryJobStore
  readonly #notices: JobNotices
  readonly #trusted = new Map<string, true>()

  constructor (memory: MemoryJobStore, notices: JobNotices) {
    this.#memory = memory
    this.#notices = notices
    notices.onNotice((notice) => {
      const copy = memory.peek(notice.id)
      if (copy !== null && copy.version >= notice.version && notice.status !== 'deleted') return
      this.#trusted.delete(notice.id)
      if (notice.status === 'deleted') void memory.delete(notice.id)
    })
    notices.onResync(() => this.#trusted.clear())
  }

  /** Keeps a copy of what Redis answered; a final one is trusted while notices arrive. */
  adopt (job: StoredJob): void {
    if (!this.#memory.adopt(job) || !isFinal(job.status) || !this.#notices.live) return
    if (this.#trusted.size >= TRUSTED_MAX) dropOldest(this.#trusted, TRUSTED_MAX / 100)
    this.#trusted.set(job.job_id, true)
  }

  /** Whether the copy of `id` held here is known to be current (no Redis read needed). */
  isCurrent (id: string): boolean {
    return this.#trusted.has(id) && this.#notices.live
  }

  forget (id: string): void {
    this.#trusted.delete(id)
  }
}
