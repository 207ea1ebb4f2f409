import type { Report, ResearchEngine, ResearchRequest, RunContext } from '../../src/research/engine.js'
import { PacedEngine as Paced } from '../../src/research/paced.js'
import { researchEngine } from './research.js'

/**
 * The real corpus engine, paced (every progress step waits `stepMs`, abortably), counting its
 * runs and recording why each run was aborted. Tests use it to act while a job is mid-run.
 */
export class PacedEngine implements ResearchEngine {
  readonly name = 'paced-corpus'
  readonly #paced: Paced
  readonly abortReasons: unknown[] = []
  started = 0

  constructor (stepMs: number) {
    this.#paced = new Paced(researchEngine(), stepMs)
  }

  get stepMs (): number { return this.#paced.stepMs }
  set stepMs (ms: number) { this.#paced.stepMs = ms }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    this.started++
    try {
      return await this.#paced.run(request, context)
    } catch (err) {
      if (context.signal.aborted) this.abortReasons.push(context.signal.reason)
      throw err
    }
  }
}

/** An engine that fails the way a caller tells it to: `failures` times, then it succeeds. */
export class FailingEngine implements ResearchEngine {
  readonly name = 'failing'
  runs = 0
  constructor (readonly error: Error, readonly afterStep = 'Reading sources', readonly failures = Infinity) {}
  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    this.runs++
    await context.progress(30, this.afterStep)
    if (this.runs <= this.failures) throw this.error
    return { title: request.query, summary: 'ok', markdown: `# ${request.query}\n`, sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 } }
  }
}
