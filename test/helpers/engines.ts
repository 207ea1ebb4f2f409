import { setTimeout as sleep } from 'node:timers/promises'
import { CorpusResearchEngine } from '../../src/research/corpus-engine.js'
import type { Report, ResearchEngine, ResearchRequest, RunContext } from '../../src/research/engine.js'
import { SHIPPED_CORPUS_DIR } from '../../src/config.js'

/**
 * The real corpus engine, slowed down: every progress step waits `stepMs` (abortably) first.
 * Tests use it to act while a job is mid-run (cancel it, kill Redis, shut down).
 */
export class PacedEngine implements ResearchEngine {
  readonly name = 'paced-corpus'
  readonly inner = new CorpusResearchEngine({ corpusDir: SHIPPED_CORPUS_DIR })
  readonly abortReasons: unknown[] = []
  started = 0
  stepMs: number

  constructor (stepMs: number) {
    this.stepMs = stepMs
  }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    this.started++
    try {
      return await this.inner.run(request, {
        signal: context.signal,
        progress: async (percent, step) => {
          await sleep(this.stepMs, undefined, { signal: context.signal })
          await context.progress(percent, step)
        }
      })
    } catch (err) {
      if (context.signal.aborted) this.abortReasons.push(context.signal.reason)
      throw err
    }
  }
}

/** An engine that fails the way a caller tells it to. */
export class FailingEngine implements ResearchEngine {
  readonly name = 'failing'
  constructor (readonly error: Error, readonly afterStep = 'Reading sources') {}
  async run (_request: ResearchRequest, context: RunContext): Promise<Report> {
    await context.progress(30, this.afterStep)
    throw this.error
  }
}
