import type { DepthName, ReportData, ResearchOptionsData } from '../schemas/job.js'

export type Report = ReportData

export interface ResearchRequest {
  query: string
  depth: DepthName
  /** What to search and the budgets; absent: the corpus alone, defaults for the depth. */
  options?: ResearchOptionsData
}

export interface RunContext {
  /** Fires on cancel, timeout and shutdown; an engine stops as soon as it sees it. */
  signal: AbortSignal
  /** Reports real progress: `percent` 0-99 (the runner sets 100 on completion) and what is happening. */
  progress (percent: number, step: string): Promise<void>
}

/** A research engine turns a question into a cited report. */
export interface ResearchEngine {
  readonly name: string
  run (request: ResearchRequest, context: RunContext): Promise<Report>
  /** Why a job with these options cannot run here (a source not configured), or null. */
  unavailable? (options: ResearchOptionsData): string | null
  /** The providers configured: web search and LLM names, null where none. */
  providers? (): { web_search: string | null, llm: string | null }
  /** Frees what the engine holds open (HTTP connections). */
  close? (): Promise<void>
}

/** An error that retrying cannot fix (bad input, missing corpus...): the job fails at once. */
export class PermanentError extends Error {
  override name = 'PermanentError'
}
