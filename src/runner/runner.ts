import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { PermanentError, type ResearchEngine } from '../research/engine.js'
import type { AttemptData } from '../schemas/job.js'
import type { Claim, ClaimStart, Enqueue, JobStore, StoredJob } from '../store/job-store.js'
import type { JobNotice } from '../store/notices.js'
import { retryDelayMs } from '../backoff.js'
import { START_STEP, complete, fail, retryLater } from '../lifecycle.js'
import { ProgressCoalescer } from './progress-coalescer.js'
import { JobCancelledError, JobTimeoutError, LeaseLostError, ShutdownError } from './errors.js'
import { JobHolder, type WriteOutcome } from './job-holder.js'
import { LeaseReaper } from './reaper.js'
import { Checkpoints, type StepOutcome } from './checkpoints.js'
import type { AnswerCache } from './answer-cache.js'
import type { StepLog } from '../store/job-steps.js'
import { inJobSpan, noteJobOutcome, outsideTraces } from '../telemetry/spans.js'
import { isoTime } from '../iso-time.js'

export interface RunnerLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

export interface ResearchRunnerOptions {
  store: JobStore
  engine: ResearchEngine
  logger: RunnerLogger
  /** Jobs run at once (default 4). */
  concurrency?: number
  /** Deadline of one attempt (default 300000 ms). */
  jobTimeoutMs?: number
  /** Lease a worker holds on a running job, renewed while it works (default 30000 ms). */
  leaseMs?: number
  /** Attempts before a job fails for good (default 3). */
  maxAttempts?: number
  /** Backoff before the first retry; doubles per attempt (default 1000 ms). */
  retryBaseMs?: number
  /** Longest backoff (default 60000 ms). */
  retryMaxMs?: number
  /** This process's name in leases and attempt histories (default host-pid-random). */
  workerId?: string
  /** How often an idle runner looks for queued work another process added (default 250 ms). */
  pollIntervalMs?: number
  /** At most one progress write per this many ms; the latest is written when it ends (default 0: every one). */
  progressMinIntervalMs?: number
  /**
   * The store's notices of writes: the one way the runner is woken. A job queued (here or on
   * any replica) starts at once, and one cancelled or deleted stops here without waiting for its
   * next write to find out. Without them the runner finds work by polling alone.
   */
  notices?: { onNotice (listener: (notice: JobNotice) => void): void }
  /** Jitter source for retry backoff (tests pass their own). */
  random?: () => number
  /** Told when an attempt ends: how (completed, failed, retrying, handed_back, cancelled, lease_lost) and after how long. */
  onAttemptEnd?: (outcome: AttemptEnd, durationMs: number) => void
  /** Where the engine's checkpointed steps are kept (RunContext.step), the largest result kept; without it every step runs. */
  steps?: { log: StepLog, maxBytes: number, onStep?: (outcome: StepOutcome) => void }
  /** The shared cache of pages and LLM answers (RunContext.cached); without it every request runs. */
  cache?: AnswerCache
}

/** How often a busy runner moves due retries into the queue. */
const PROMOTE_EVERY_MS = 1000

export type AttemptEnd = 'completed' | 'failed' | 'retrying' | 'handed_back' | 'cancelled' | 'lease_lost'

interface ActiveJob {
  holder: JobHolder
  controller: AbortController
  done: Promise<void>
  /** Checkpointed steps running now: at shutdown they finish, and are kept, before the job is handed back. */
  inSteps: number
  /** Shutting down: the job stops at its next step or progress report. */
  draining: boolean
}

/** The jobs that were running when `stop` was called, by how their attempts ended. */
export interface StopSummary {
  /** Completed or failed for good: their result is written. */
  finished: string[]
  /** Back in the queue (handed back, or failed and waiting for a retry), for another process (or this one, next start) to run. */
  handedBack: string[]
  /** Still running when the time allowed ran out, or cancelled or lost meanwhile. */
  other: string[]
}

/** `unwritten`: attempts that ended whose final write waits for Redis to accept writes again. */
export interface RunnerStats { running: number, concurrency: number, accepting: boolean, worker: string, unwritten: number }

export function defaultWorkerId (): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
}

/**
 * Claims queued jobs and runs them on the engine, FIFO, `concurrency` at a time, each under a
 * lease it renews while working. Failed attempts are retried with backoff (permanent errors
 * fail at once); jobs whose worker died are taken over by the reaper; on stop, running jobs
 * are handed back to the queue.
 */
export class ResearchRunner {
  readonly #store: JobStore
  readonly #engine: ResearchEngine
  readonly #logger: RunnerLogger
  readonly #concurrency: number
  readonly #jobTimeoutMs: number
  readonly #leaseMs: number
  readonly #maxAttempts: number
  readonly #retryBaseMs: number
  readonly #retryMaxMs: number
  readonly #pollIntervalMs: number
  readonly #progressMinIntervalMs: number
  readonly #random: () => number
  readonly #onAttemptEnd: ResearchRunnerOptions['onAttemptEnd']
  readonly #steps: ResearchRunnerOptions['steps']
  readonly #cache: AnswerCache | undefined
  readonly #reaper: LeaseReaper
  readonly worker: string
  readonly #claimStart: ClaimStart
  readonly #active = new Map<string, ActiveJob>()
  /** How the attempts running at `stop` ended, by job id (filled while stopping). */
  #endings: Map<string, AttemptEnd> | null = null
  /** Aborted once `stop` stops waiting: writes still waiting for Redis give up. */
  #stopping = new AbortController()
  #pollTimer: NodeJS.Timeout | null = null
  #reapTimer: NodeJS.Timeout | null = null
  #promotedAt = -Infinity
  #filling = false
  #refill = false
  #accepting = false

  constructor (options: ResearchRunnerOptions) {
    this.#store = options.store
    this.#engine = options.engine
    this.#logger = options.logger
    this.#concurrency = options.concurrency ?? 4
    this.#jobTimeoutMs = options.jobTimeoutMs ?? 300_000
    this.#leaseMs = options.leaseMs ?? 30_000
    this.#maxAttempts = options.maxAttempts ?? 3
    this.#retryBaseMs = options.retryBaseMs ?? 1000
    this.#retryMaxMs = options.retryMaxMs ?? 60_000
    this.#pollIntervalMs = options.pollIntervalMs ?? 250
    this.#progressMinIntervalMs = options.progressMinIntervalMs ?? 0
    this.#random = options.random ?? Math.random
    this.#onAttemptEnd = options.onAttemptEnd
    this.#steps = options.steps
    this.#cache = options.cache
    this.worker = options.workerId ?? defaultWorkerId()
    this.#claimStart = { worker: this.worker, maxAttempts: this.#maxAttempts, step: START_STEP }
    this.#reaper = new LeaseReaper({ store: this.#store, maxAttempts: this.#maxAttempts, logger: this.#logger })
    options.notices?.onNotice(({ id, status }) => {
      if (status === 'pending') this.notify()
      else if (status === 'cancelled' || status === 'deleted') this.cancel(id)
    })
  }

  start (): void {
    if (this.#accepting) return
    this.#accepting = true
    if (this.#stopping.signal.aborted) this.#stopping = new AbortController()
    this.#pollTimer = setInterval(() => this.#poll(), this.#pollIntervalMs)
    this.#pollTimer.unref()
    this.#reapTimer = setInterval(() => { void this.reapNow() }, Math.min(5000, Math.max(50, this.#leaseMs / 2)))
    this.#reapTimer.unref()
    this.notify()
  }

  /**
   * A runner with room looks for work; a busy one, whose next jobs come with its final writes,
   * moves retries that are due into the queue (a claim of none) about once a second, so they
   * never wait for a lull (and join the queue's tail at most a second late).
   */
  #poll (): void {
    if (this.#active.size < this.#concurrency) {
      this.notify()
      return
    }
    const now = performance.now()
    if (now - this.#promotedAt < PROMOTE_EVERY_MS) return
    this.#promotedAt = now
    void this.#store.claim(this.#leaseMs, 0).catch((err: unknown) => this.#logger.warn({ err }, 'could not move due retries into the queue'))
  }

  /** New work may be queued: take as much as there is room for. */
  notify (): void {
    if (!this.#accepting) return
    if (this.#filling) {
      this.#refill = true
      return
    }
    this.#filling = true
    void outsideTraces(async () => await this.#fill()).finally(() => {
      this.#filling = false
      if (this.#refill) {
        this.#refill = false
        this.notify()
      }
    })
  }

  /** One reaper pass: take over jobs whose worker stopped renewing its lease, and requeue orphans. */
  async reapNow (): Promise<number> {
    try {
      const takenOver = await this.#reaper.reap()
      if (takenOver > 0) this.notify()
      return takenOver
    } catch (err) {
      this.#logger.warn({ err }, 'lease reaper pass failed; the next pass retries')
      return 0
    }
  }

  stats (): RunnerStats {
    let unwritten = 0
    for (const { holder } of this.#active.values()) if (holder.waitingToWrite) unwritten++
    return { running: this.#active.size, concurrency: this.#concurrency, accepting: this.#accepting, worker: this.worker, unwritten }
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
   * in line, lease released). Resolves when all are handed back or `timeoutMs` has passed.
   * `finishWithinMs`: first let running jobs finish on their own for up to this long (a store
   * that dies with the process has no queue to hand them back to). Says how each ended.
   */
  async stop (timeoutMs: number, finishWithinMs = 0): Promise<StopSummary> {
    this.#accepting = false
    for (const timer of [this.#pollTimer, this.#reapTimer]) if (timer !== null) clearInterval(timer)
    this.#pollTimer = null
    this.#reapTimer = null
    const endings = new Map<string, AttemptEnd>()
    this.#endings = endings
    const running = [...this.#active.values()]
    if (finishWithinMs > 0 && running.length > 0) await settledWithin(running.map((job) => job.done), finishWithinMs)
    const left = running.filter((job) => this.#active.has(job.holder.job.job_id))
    // A job inside a step (a page read, an LLM call) finishes it, so its result is kept for the
    // next attempt, and stops before the next one; the others stop now. Half the time allowed is
    // the most a step gets.
    for (const job of left) {
      if (job.inSteps > 0) job.draining = true
      else job.controller.abort(new ShutdownError())
    }
    const cutOff = setTimeout(() => { for (const job of left) job.controller.abort(new ShutdownError()) }, timeoutMs / 2)
    await settledWithin(left.map((job) => job.done), timeoutMs)
    clearTimeout(cutOff)
    this.#stopping.abort()
    this.#endings = null
    const summary: StopSummary = { finished: [], handedBack: [], other: [] }
    for (const { holder } of running) {
      const id = holder.job.job_id
      const ending = endings.get(id)
      if (ending === 'completed' || ending === 'failed') summary.finished.push(id)
      // A failed attempt waiting for its retry is back in the queue, as a job handed back is.
      else if (ending === 'handed_back' || ending === 'retrying') summary.handedBack.push(id)
      else summary.other.push(id)
    }
    return summary
  }

  #ended (id: string, outcome: AttemptEnd, durationMs: number, error?: unknown): void {
    noteJobOutcome(outcome, error)
    this.#endings?.set(id, outcome)
    this.#onAttemptEnd?.(outcome, durationMs)
  }

  async #fill (): Promise<void> {
    while (this.#accepting && this.#active.size < this.#concurrency) {
      let claims: Claim[]
      const claimedAt = performance.now()
      try {
        // Every free slot in one claim: a busy runner pays one round trip per batch, not per job.
        // The claim also begins each attempt where the store can (Redis): one step per job, not two.
        claims = await this.#store.claim(this.#leaseMs, this.#concurrency - this.#active.size, this.#claimStart)
      } catch (err) {
        this.#logger.error({ err }, 'could not take a job from the queue')
        return
      }
      if (claims.length === 0) return
      for (const claim of claims) this.#begin(this.#holderOf(claim, claimedAt))
    }
  }

  /**
   * Ends the attempt (see JobHolder.end) with a write that also claims and begins the worker's
   * next job, so a busy runner pays one round trip per job, then runs that job; one claimed
   * while stopping is handed straight back, within this run, so `stop` waits for it.
   */
  async #finish (holder: JobHolder, outcome: AttemptData['outcome'], next: (job: StoredJob, now: string) => StoredJob, enqueue?: Enqueue): Promise<WriteOutcome> {
    const claimNext = this.#accepting ? { leaseMs: this.#leaseMs, limit: 1, start: this.#claimStart } : undefined
    const result = await holder.end(outcome, next, enqueue, claimNext)
    for (const claim of holder.handedOn.claims) {
      const following = this.#holderOf(claim, holder.handedOn.claimedAt)
      if (this.#accepting) this.#begin(following)
      else await following.release()
    }
    return result
  }

  #holderOf (claim: Claim, claimedAt: number): JobHolder {
    return new JobHolder(this.#store, claim, this.worker, this.#leaseMs, claimedAt, this.#stopping.signal)
  }

  #begin (holder: JobHolder): void {
    const id = holder.job.job_id
    const controller = new AbortController()
    const entry: ActiveJob = { holder, controller, done: Promise.resolve(), inSteps: 0, draining: false }
    this.#active.set(id, entry)
    const job = holder.job
    const attributes = { 'job.attempt': holder.attempt, 'job.depth': job.depth, 'job.worker': this.worker }
    entry.done = inJobSpan({ jobId: id, tenant: job.owner ?? '', carrier: job.trace_context, attributes }, async () => await this.#run(entry))
      .catch((err: unknown) => this.#logger.error({ err, job_id: id }, 'job run failed unexpectedly'))
      .finally(() => {
        this.#active.delete(id)
        this.notify()
      })
  }

  async #run (entry: ActiveJob): Promise<void> {
    const { holder, controller } = entry
    const id = holder.job.job_id
    const base = { job_id: id, attempt: holder.attempt, worker: this.worker }
    if (!this.#accepting) {
      // Claimed while stopping: straight back to the queue, no attempt used.
      const released = await holder.release()
      this.#ended(id, 'handed_back', 0)
      this.#logger.info({ ...base, status: holder.job.status, handed_back: released === 'written' }, 'job handed back at shutdown before it started')
      return
    }
    const start = await holder.start(this.#maxAttempts)
    if (start !== 'started') {
      noteJobOutcome(`not_started_${start}`, start === 'exhausted' ? new Error('no attempts left') : undefined)
      if (start === 'unavailable') this.#logger.warn(base, 'could not start a claimed job (the store is unavailable); it is queued again when its lease runs out')
      else if (start === 'exhausted') this.#logger.warn({ ...base, status: holder.job.status }, 'job failed: no attempts left')
      else this.#logger.info(base, 'claimed job not started: cancelled, deleted or taken over meanwhile')
      return
    }
    const started = Date.now()
    this.#logger.info({ ...base, status: holder.job.status }, 'job started')

    const renewEveryMs = Math.max(20, Math.floor(this.#leaseMs / 3))
    // Stops the run a renewal period before the lease may run out, whether or not the store
    // answers: after that, another worker may take the job over. Not while Redis refuses every
    // writer alike (MISCONF, OOM): nobody can take it over then, and the result will be kept.
    const watchLease = (): void => {
      if (holder.refusing) return
      if (performance.now() + renewEveryMs >= holder.confirmedUntil) controller.abort(new LeaseLostError('the lease could not be renewed in time'))
    }
    const guard = (outcome: WriteOutcome): void => {
      if (outcome === 'finished') controller.abort(new JobCancelledError())
      else if (outcome === 'lost') controller.abort(new LeaseLostError('another worker holds it now, or it was deleted'))
      else watchLease()
    }
    const heartbeat = setInterval(() => {
      watchLease()
      if (!controller.signal.aborted) void holder.renew().then(guard, () => {})
    }, renewEveryMs)
    const budgetS = holder.job.options.max_duration_s ?? null
    const timeoutMs = budgetS === null ? this.#jobTimeoutMs : Math.min(this.#jobTimeoutMs, budgetS * 1000)
    const deadline = setTimeout(() => controller.abort(new JobTimeoutError(timeoutMs, budgetS !== null)), timeoutMs)
    let lastStep = START_STEP
    const progress = new ProgressCoalescer<{ percent: number, step: string }>(this.#progressMinIntervalMs, async ({ percent, step }) => {
      if (controller.signal.aborted) return
      guard(await holder.progress(percent, step))
    })
    const checkpoints = this.#checkpointsOf(holder, controller)
    const { job } = holder
    try {
      let report
      try {
        report = await this.#engine.run(
          { query: job.query, depth: job.depth, options: job.options },
          {
            signal: controller.signal,
            progress: async (percent, step) => {
              stopIfDraining(entry)
              controller.signal.throwIfAborted()
              lastStep = step
              await progress.report({ percent, step })
              controller.signal.throwIfAborted()
            },
            ...(checkpoints === undefined
              ? {}
              : {
                  step: async (name, run) => {
                    stopIfDraining(entry)
                    controller.signal.throwIfAborted()
                    entry.inSteps++
                    try {
                      return await checkpoints.step(name, run)
                    } finally {
                      entry.inSteps--
                    }
                  }
                }),
            ...(this.#cache === undefined ? {} : { cached: this.#cache.forJob(job.owner ?? '', job.options.cache !== false) })
          })
        if (checkpoints !== undefined && report.usage !== undefined) report = { ...report, usage: { ...report.usage, steps_reused: checkpoints.reused } }
      } finally {
        progress.stop()
        // The end of the engine's work on this attempt (the chaos suite checks no two overlap).
        this.#logger.info({ ...base, run_ms: Date.now() - started }, 'job run ended')
      }
      controller.signal.throwIfAborted()
      clearInterval(heartbeat)
      const result = await this.#finish(holder, 'completed', (job, now) => complete(job, holder.owner, report, now))
      const outcome = result === 'written' ? 'completed' : result === 'lost' ? 'lease_lost' : 'cancelled'
      if (outcome !== 'lease_lost') await this.#steps?.log.drop(id)
      this.#ended(id, outcome, Date.now() - started, outcome === 'lease_lost' ? new LeaseLostError('the final write was refused: another worker holds the job') : undefined)
      this.#logger.info({ ...base, status: result === 'written' ? 'completed' : holder.job.status, duration_ms: Date.now() - started, written: result === 'written' }, 'job finished')
    } catch (err) {
      clearInterval(heartbeat)
      await this.#settleFailure(holder, controller.signal.reason ?? err, err, lastStep, started)
    } finally {
      clearInterval(heartbeat)
      clearTimeout(deadline)
    }
  }

  /**
   * The attempt's checkpointed steps (RunContext.step). A step result the store refuses (the
   * claim moved on) stops the attempt as a lost lease: another worker holds the job.
   */
  #checkpointsOf (holder: JobHolder, controller: AbortController): Checkpoints | undefined {
    if (this.#steps === undefined) return undefined
    return new Checkpoints({
      log: this.#steps.log,
      jobId: holder.job.job_id,
      fence: holder.fence,
      resumed: holder.job.attempt_history.length > 1,
      maxBytes: this.#steps.maxBytes,
      onStep: this.#steps.onStep,
      onFenced: () => {
        controller.abort(new LeaseLostError('another worker holds it now, or it was deleted'))
        throw controller.signal.reason
      }
    })
  }

  async #settleFailure (holder: JobHolder, reason: unknown, err: unknown, lastStep: string, started: number): Promise<void> {
    const id = holder.job.job_id
    const base = { job_id: id, attempt: holder.attempt, duration_ms: Date.now() - started }
    if (reason instanceof JobCancelledError) {
      await this.#steps?.log.drop(id)
      this.#ended(id, 'cancelled', base.duration_ms)
      this.#logger.info({ ...base, status: holder.job.status }, 'job stopped: cancelled or deleted')
      return
    }
    if (reason instanceof LeaseLostError) {
      this.#ended(id, 'lease_lost', base.duration_ms, reason)
      this.#logger.warn({ ...base, status: holder.job.status, reason: reason.message }, 'job stopped: lease lost; this worker writes nothing more')
      return
    }
    if (reason instanceof ShutdownError) {
      // A shutdown is not the job's fault: the attempt does not count against JOB_MAX_ATTEMPTS.
      const result = await holder.handBack()
      this.#ended(id, 'handed_back', base.duration_ms)
      this.#logger.info({ ...base, status: holder.job.status, handed_back: result === 'written' }, 'job handed back at shutdown')
      return
    }
    const message = reason instanceof JobTimeoutError ? reason.message : err instanceof Error ? err.message : String(err)
    // A client's own time budget (max_duration_s) is spent: another attempt would overrun it.
    const permanent = err instanceof PermanentError || (reason instanceof JobTimeoutError && reason.clientBudget)
    if (!permanent && holder.attempt < this.#maxAttempts) {
      const delay = retryDelayMs(holder.attempt, { baseMs: this.#retryBaseMs, maxMs: this.#retryMaxMs, random: this.#random })
      await this.#finish(holder, 'retrying', (job, now) => retryLater(job, holder.owner, {
        error: message,
        step: `Attempt ${holder.attempt} of ${this.#maxAttempts} failed during: ${lastStep}; retrying in ${Math.ceil(delay / 1000)} s`,
        retryAt: isoTime(Date.parse(now) + delay)
      }, now), { retryInMs: delay })
      this.#ended(id, 'retrying', base.duration_ms, new Error(message))
      this.#logger.warn({ ...base, status: holder.job.status, error: message, retry_in_ms: delay }, 'job attempt failed; retrying')
      return
    }
    await this.#finish(holder, 'failed', (job, now) => fail(job, holder.owner, { error: message, lastStep }, now))
    await this.#steps?.log.drop(id)
    this.#ended(id, 'failed', base.duration_ms, new Error(message))
    this.#logger.warn({ ...base, status: holder.job.status, error: message, permanent }, 'job failed')
  }
}

/** A job draining at shutdown stops here, between two steps: handed back with every step done so far kept. */
function stopIfDraining ({ draining, controller }: ActiveJob): void {
  if (draining && !controller.signal.aborted) controller.abort(new ShutdownError())
}

/** Waits for every promise to settle, or `ms`, whichever comes first. */
async function settledWithin (promises: Array<Promise<unknown>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([Promise.allSettled(promises), new Promise((resolve) => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}
