import type { DepthName, ReportData, ResearchOptionsData } from '../schemas/job.js'

export type Report = ReportData

export interface ResearchRequest {
  query: string
  depth: DepthName
  /** What to search and the budgets; absent: the corpus alone, defaults for the depth. */
  options?: ResearchOptionsData
}

/** What the shared cache holds: pages read and LLM answers (each kind has its own lifetime). */
export type CacheKind = 'page' | 'llm'

/** An answer from `RunContext.cached`: `hit` when another run (of any job) got it first. */
export interface Cached<T> { value: T, hit: boolean }

export interface RunContext {
  /** Fires on cancel, timeout and shutdown; an engine stops as soon as it sees it. */
  signal: AbortSignal
  /** Reports real progress: `percent` 0-99 (the runner sets 100 on completion) and what is happening. */
  progress (percent: number, step: string): Promise<void>
  /**
   * Runs `run` once per job, across its attempts (see docs/steps.md): the first time its result
   * is kept beside the job, and a later attempt, on any replica, gets that result back instead
   * of running it again. `name` must say what the step does and name the same work on every
   * attempt (`page:<url>`, `llm:<digest of the request>`); the result must survive JSON. A
   * step that throws keeps nothing and runs again next time. Absent (the runner always gives
   * it; an engine driven by hand may not): every step simply runs.
   */
  step?<T>(name: string, run: () => Promise<T>): Promise<T>
  /**
   * The answer to a request that other jobs may have made already: `key` must hold everything
   * that decides the answer (the URL, the exact LLM request). Shared by the replicas, per
   * tenant unless CACHE_SCOPE=shared; a job created with `cache: false` always runs. Absent:
   * `run` runs.
   */
  cached?<T>(kind: CacheKind, key: string, run: () => Promise<T>): Promise<Cached<T>>
}

/** `context.step` when the runner gives one, else a step that just runs. */
export async function runStep<T> (context: RunContext, name: string, run: () => Promise<T>): Promise<T> {
  return context.step === undefined ? await run() : await context.step(name, run)
}

/** `context.cached` when the runner gives one, else a miss. */
export async function throughCache<T> (context: RunContext, kind: CacheKind, key: string, run: () => Promise<T>): Promise<Cached<T>> {
  return context.cached === undefined ? { value: await run(), hit: false } : await context.cached(kind, key, run)
}

/** A research engine turns a question into a cited report. */
export interface ResearchEngine {
  readonly name: string
  run (request: ResearchRequest, context: RunContext): Promise<Report>
  /** Why a job with these options cannot run here (a source not configured), or null. */
  unavailable? (options: ResearchOptionsData): string | null
  /** The providers configured: web search and LLM names, null where none. */
  providers? (): { web_search: string | null, llm: string | null }
  /**
   * Reads now what the engine would otherwise read on its first job (its indexes, its word
   * lists), so that job does not hold the process up: called before the process takes work. A
   * head start only: when it rejects, the process starts anyway, and the first job reads what
   * is missing again (and reports what fails).
   */
  prepare? (): Promise<void>
  /** Frees what the engine holds open (HTTP connections). */
  close? (): Promise<void>
}

/** An error that retrying cannot fix (bad input, missing corpus...): the job fails at once. */
export class PermanentError extends Error {
  override name = 'PermanentError'
}
