import { setTimeout as sleep } from 'node:timers/promises'
import { ApiError, type JobProgress, type JobRecord, type ResearchClient } from '../client/index.js'
import { WaitTimeoutError, isTransient } from './errors.js'

export interface FollowOptions {
  /** Ctrl-C. */
  signal: AbortSignal
  /** Give up after this long (null: wait as long as the job runs). */
  timeoutMs: number | null
  onProgress: (progress: JobProgress) => void
  /** The connection was lost (a restart, a redeploy, the network): why, and the wait before the next try. */
  onReconnecting: (err: unknown, waitMs: number) => void
}

const FINAL = new Set(['completed', 'failed', 'cancelled'])

/**
 * Follows a job to its end through anything short of the job's own failure: the event stream
 * resumes where it stopped (Last-Event-ID) after a dropped connection or a server restart, with
 * backoff; a server without a usable stream is long-polled. Only --timeout, Ctrl-C or an answer
 * that retrying cannot change (401, 404...) ends it early.
 */
export async function follow (client: ResearchClient, jobId: string, options: FollowOptions): Promise<JobRecord> {
  const deadline = options.timeoutMs === null ? null : AbortSignal.timeout(options.timeoutMs)
  const signal = deadline === null ? options.signal : AbortSignal.any([options.signal, deadline])
  let lastEventId: string | undefined
  let failures = 0
  let streaming = true
  for (;;) {
    try {
      if (streaming) {
        for await (const event of client.events(jobId, { signal, lastEventId, maxReconnects: 0 })) {
          failures = 0
          lastEventId = event.id
          options.onProgress(event.data)
        }
        return await client.get(jobId)
      }
      const job = await client.waitForJob(jobId, { signal, stream: false, onProgress: options.onProgress })
      if (FINAL.has(job.status)) return job
    } catch (err) {
      if (deadline?.aborted === true && !options.signal.aborted) throw new WaitTimeoutError(`timed out after ${Math.round((options.timeoutMs ?? 0) / 1000)} s waiting for job ${jobId}`)
      if (options.signal.aborted) throw err
      // An old server or a proxy without the stream: long polls instead.
      if (err instanceof ApiError && err.status === 405) {
        streaming = false
        continue
      }
      if (!isTransient(err)) throw err
      const retryAfterMs = err instanceof ApiError && err.retryAfter !== null ? err.retryAfter * 1000 : 0
      const waitMs = Math.max(retryAfterMs, Math.min(5000, 250 * 2 ** failures++))
      options.onReconnecting(err, waitMs)
      await sleep(waitMs, undefined, { signal }).catch(() => {})
    }
  }
}
