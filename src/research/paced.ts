import { setTimeout as sleep } from 'node:timers/promises'
import type { ResearchOptionsData } from '../schemas/job.js'
import type { Report, ResearchEngine, ResearchRequest, RunContext } from './engine.js'

/**
 * Any engine, slowed down: each progress step waits `stepMs` first (abortably). For demos that
 * want to watch a progress bar and for load and chaos tests that need jobs to be mid-run.
 */
export class PacedEngine implements ResearchEngine {
  readonly name: string
  readonly inner: ResearchEngine
  stepMs: number

  constructor (inner: ResearchEngine, stepMs: number) {
    this.inner = inner
    this.stepMs = stepMs
    this.name = `${inner.name} (paced ${stepMs} ms)`
  }

  unavailable (options: ResearchOptionsData): string | null {
    return this.inner.unavailable?.(options) ?? null
  }

  providers (): { web_search: string | null, llm: string | null } {
    return this.inner.providers?.() ?? { web_search: null, llm: null }
  }

  async prepare (): Promise<void> {
    await this.inner.prepare?.()
  }

  async close (): Promise<void> {
    await this.inner.close?.()
  }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    // The whole context goes on (steps, the cache): only progress is paced.
    return await this.inner.run(request, {
      ...context,
      progress: async (percent, step) => {
        if (this.stepMs > 0) await sleep(this.stepMs, undefined, { signal: context.signal })
        await context.progress(percent, step)
      }
    })
  }
}
