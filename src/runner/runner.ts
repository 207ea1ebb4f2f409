import type { ResearchEngine } from '../research/engine.js'
import type { StoredJob } from '../schemas/job.js'
import { type Enqueue, type JobStore, isFinal } from '../store/job-store.js'
import { JobCancelledError, JobTimeoutError, ShutdownError } from './errors.js'

export interface RunnerLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

export interface ResearchRunnerOptions {
  store: JobStore
  engine: ResearchEngine
  /** Jobs run at once (default 4). */
  concurrency?: number
  /** Deadline of one run (default 300000 ms). */
  jobTimeoutMs?: number
  /** How often an idle runner looks for queued work another process added (default 250 ms). */
  pollIntervalMs?: number
  logger: RunnerLogger
}

interface ActiveJob {
  controller: AbortController
  done: Promise<void>
}

export interface RunnerStats { running: number, concurrency: number, accepting: boolean }

/**
 * Takes queued jobs from the store and runs them on the engine, FIFO, `concurrency` at a time.
 * Every write is a compare-and-set on the job the runner holds: when someone else finished the
 * job (cancel), the write fails and the engine's signal fires.
 */
export class ResearchRunner {
  readonly #store: JobStore
  readonly #engine: ResearchEngine
  readonly #concurrency: number
  readonly #jobTimeoutMs: number
  readonly #pollIntervalMs: number
  readonly #logger: RunnerLogger
  readonly #active = new Map<string, ActiveJob>()
  #timer: NodeJS.Timeout | null = null
  #filling = false
  #refill = false
  #accepting = false

  constructor (options: ResearchRunnerOptions) {
    this.#store = options.store
    this.#engine = options.engine
    this.#concurrency = options.concurrency ?? 4
    this.#jobTimeoutMs = options.jobTimeoutMs ?? 300_000
    this.#pollIntervalMs = options.pollIntervalMs ?? 250
    this.#logger = options.logger
  }

  start (): void {
    if (this.#accepting) return
    this.#accepting = true
    this.#timer = setInterval(() => this.notify(), this.#pollIntervalMs)
    this.#timer.unref()
    this.notify()
  }

  /** New work may be queued: take as much as there is room for. */
  notify (): void {
    if (!this.#accepting) return
    if (this.#filling) {
      this.#refill = true
      return
    }
    this.#filling = true
    void this.#fill().finally(() => {
      this.#filling = false
      if (this.#refill) {
        this.#refill = false
        this.notify()
      }
    })
  }

  stats (): RunnerStats {
    return { running: this.#active.size, concurrency: this.#concurrency, accepting: this.#accepting }
  }

  isRunning (id: string): boolean {
    return this.#active.has(id)
  }

  /** Aborts the job if this process runs it; returns whether it did. */
  cancel (id: string): boolean {
    const active = this.#active.get(id)
    if (active === undefined) return false
    active.controller.abort(new JobCancelledError())
    return true
  }

  /**
   * Stops taking work, aborts every running job and hands it back to the queue (pending, first
   * in line). Resolves when all are handed back or `timeoutMs` has passed.
   */
  async stop (timeoutMs: number): Promise<void> {
    this.#accepting = false
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    const running = [...this.#active.values()]
    for (const job of running) job.controller.abort(new ShutdownError())
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled(running.map((job) => job.done)),
      new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs) })
    ])
    clearTimeout(timer)
  }

  async #fill (): Promise<void> {
    while (this.#accepting && this.#active.size < this.#concurrency) {
      let id: string | null
      try {
        id = await this.#store.dequeue()
      } catch (err) {
        this.#logger.error({ err }, 'could not take a job from the queue')
        return
      }
      if (id === null) return
      const controller = new AbortController()
      const entry: ActiveJob = { controller, done: Promise.resolve() }
      this.#active.set(id, entry)
      entry.done = this.#run(id, controller)
        .catch((err: unknown) => this.#logger.error({ err, job_id: id }, 'job run failed unexpectedly'))
        .finally(() => {
          this.#active.delete(id)
          this.notify()
        })
    }
  }

  async #run (id: string, controller: AbortController): Promise<void> {
    const queued = await this.#store.get(id)
    if (queued === null) {
      this.#logger.warn({ job_id: id }, 'dropping a queued job whose record is gone (expired or deleted)')
      return
    }
    if (queued.status !== 'pending') return
    const holder = new JobHolder(this.#store, queued)
    const claimed = await holder.write((job) => ({
      ...job,
      status: 'processing',
      attempts: job.attempts + 1,
      started_at: new Date().toISOString(),
      current_step: 'Starting research',
      error: null
    }), (job) => job.status === 'pending')
    if (!claimed) return
    const started = Date.now()
    this.#logger.info({ job_id: id, status: 'processing', attempt: holder.job.attempts }, 'job started')

    const timer = setTimeout(() => controller.abort(new JobTimeoutError(this.#jobTimeoutMs)), this.#jobTimeoutMs)
    let lastStep = 'Starting research'
    try {
      const report = await this.#engine.run(
        { query: holder.job.query, depth: holder.job.depth },
        {
          signal: controller.signal,
          progress: async (percent, step) => {
            controller.signal.throwIfAborted()
            lastStep = step
            const kept = await holder.write((job) => ({
              ...job,
              progress: Math.max(job.progress, Math.min(99, Math.max(0, Math.round(percent)))),
              current_step: step
            }))
            if (!kept) controller.abort(new JobCancelledError())
            controller.signal.throwIfAborted()
          }
        })
      controller.signal.throwIfAborted()
      const completed = await holder.write((job) => ({
        ...job,
        status: 'completed',
        progress: 100,
        current_step: 'Completed',
        result: report,
        completed_at: new Date().toISOString()
      }))
      this.#logger.info({ job_id: id, status: completed ? 'completed' : holder.job.status, attempt: holder.job.attempts, duration_ms: Date.now() - started }, 'job finished')
    } catch (err) {
      await this.#settleFailure(holder, controller.signal.reason ?? err, err, lastStep, started)
    } finally {
      clearTimeout(timer)
    }
  }

  async #settleFailure (holder: JobHolder, reason: unknown, err: unknown, lastStep: string, started: number): Promise<void> {
    const id = holder.job.job_id
    const duration = Date.now() - started
    if (reason instanceof JobCancelledError) {
      this.#logger.info({ job_id: id, status: holder.job.status, attempt: holder.job.attempts, duration_ms: duration }, 'job stopped: cancelled or deleted')
      return
    }
    if (reason instanceof ShutdownError) {
      const handedBack = await holder.write((job) => ({ ...job, status: 'pending', current_step: 'Queued again: the process running it shut down' }), undefined, 'head')
      this.#logger.info({ job_id: id, status: 'pending', attempt: holder.job.attempts, duration_ms: duration, handed_back: handedBack }, 'job handed back at shutdown')
      return
    }
    const message = reason instanceof JobTimeoutError ? reason.message : err instanceof Error ? err.message : String(err)
    await holder.write((job) => ({
      ...job,
      status: 'failed',
      error: message,
      current_step: `Failed during: ${lastStep}`,
      completed_at: new Date().toISOString()
    }))
    this.#logger.warn({ job_id: id, status: 'failed', attempt: holder.job.attempts, duration_ms: duration, error: message }, 'job failed')
  }
}

/**
 * The runner's copy of one job and the only way it writes it: a compare-and-set against the
 * version it holds. On a version conflict it re-applies the change on the newer record; it
 * gives up (returns false) when the job was finished by someone else or is gone.
 */
class JobHolder {
  readonly #store: JobStore
  job: StoredJob

  constructor (store: JobStore, job: StoredJob) {
    this.#store = store
    this.job = job
  }

  async write (change: (job: StoredJob) => StoredJob, precondition?: (job: StoredJob) => boolean, enqueue?: Enqueue): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (precondition !== undefined && !precondition(this.job)) return false
      const result = await this.#store.put(change(this.job), this.job.version, enqueue)
      if (result.ok) {
        this.job = result.job
        return true
      }
      if (result.current === null || isFinal(result.current.status)) {
        if (result.current !== null) this.job = result.current
        return false
      }
      this.job = result.current
    }
    return false
  }
}
