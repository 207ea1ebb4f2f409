import type { StepLog } from '../store/job-steps.js'
import { inSpan } from '../telemetry/spans.js'

/** What happened to a step: its kept result was used, it ran and was kept, it ran and was too large to keep. */
export type StepOutcome = 'reused' | 'ran' | 'too_large'

export interface CheckpointsOptions {
  log: StepLog
  jobId: string
  /** The claim this attempt holds: a result is kept only while it is the job's. */
  fence: string
  /** Whether an earlier attempt may have kept results (none can have on a job's first run). */
  resumed: boolean
  /** Largest result kept (STEP_MAX_BYTES). */
  maxBytes: number
  /** The claim moved on: this attempt must stop (the runner aborts it as a lost lease). */
  onFenced: () => never
  onStep?: (outcome: StepOutcome) => void
}

/**
 * One attempt's view of a job's checkpointed steps (RunContext.step): a step kept by an earlier
 * attempt, on this replica or another, is not run again; a step that ran is kept before its
 * result is used, so an attempt cut off at any point loses at most the step it was in.
 */
export class Checkpoints {
  readonly #options: CheckpointsOptions
  #kept: Promise<Map<string, string>> | null = null
  /** Steps whose kept result this attempt used. */
  reused = 0

  constructor (options: CheckpointsOptions) {
    this.#options = options
  }

  async step<T>(name: string, run: () => Promise<T>): Promise<T> {
    // Named by its kind (`page`, `llm`, `search`: what comes before the first colon), never the
    // rest: a search step's name holds the user's question.
    const kind = (name.split(':')[0] ?? name).slice(0, 40)
    return await inSpan(`step ${kind}`, { attributes: { 'research.step.kind': kind } }, async (span) => {
      const { outcome, value } = await this.#step(name, run)
      span?.setAttribute('research.step.outcome', outcome)
      return value
    })
  }

  async #step<T>(name: string, run: () => Promise<T>): Promise<{ outcome: StepOutcome, value: T }> {
    const { log, jobId, fence, maxBytes, onStep } = this.#options
    const kept = (await this.#load()).get(name)
    if (kept !== undefined) {
      this.reused++
      onStep?.('reused')
      return { outcome: 'reused', value: JSON.parse(kept) as T }
    }
    const value = await run()
    const json = JSON.stringify(value)
    if (json === undefined || Buffer.byteLength(json) > maxBytes) {
      onStep?.('too_large')
      return { outcome: 'too_large', value }
    }
    if (await log.save(jobId, fence, name, json) === 'fenced') this.#options.onFenced()
    ;(await this.#load()).set(name, json)
    onStep?.('ran')
    return { outcome: 'ran', value }
  }

  /** The results kept for the job, read once per attempt and only when an earlier attempt ran. */
  async #load (): Promise<Map<string, string>> {
    this.#kept ??= this.#options.resumed ? this.#options.log.load(this.#options.jobId).catch(() => new Map()) : Promise.resolve(new Map())
    return await this.#kept
  }
}
