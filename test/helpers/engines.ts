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
  readonly thrown: Error
  readonly afterStep: string
  readonly failures: number
  constructor (thrown: Error, afterStep = 'Reading sources', failures = Infinity) {
    this.thrown = thrown
    this.afterStep = afterStep
    this.failures = failures
  }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    this.runs++
    await context.progress(30, this.afterStep)
    if (this.runs <= this.failures) throw this.thrown
    return { title: request.query, summary: 'ok', markdown: `# ${request.query}\n`, sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 } }
  }
}

/** One run of an engine: which replica ran which job, from when to when (performance.now()). */
export interface RunSpan { replica: string, query: string, start: number, end: number | null, aborted: unknown }

/**
 * A real-paced engine that records every run's span into a shared list, so a test can check
 * that no two runs of one job ever overlapped, across replicas in one process.
 */
export class SpanEngine implements ResearchEngine {
  readonly name = 'spans'
  readonly replica: string
  readonly spans: RunSpan[]
  stepMs: number
  readonly steps: number
  readonly fail: (query: string, runs: number) => boolean
  constructor (replica: string, spans: RunSpan[], stepMs: number, steps = 5, fail: (query: string, runs: number) => boolean = () => false) {
    this.replica = replica
    this.spans = spans
    this.stepMs = stepMs
    this.steps = steps
    this.fail = fail
  }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    const span: RunSpan = { replica: this.replica, query: request.query, start: performance.now(), end: null, aborted: null }
    this.spans.push(span)
    const runs = this.spans.filter((s) => s.query === request.query).length
    try {
      for (let step = 1; step <= this.steps; step++) {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, this.stepMs)
          context.signal.addEventListener('abort', () => { clearTimeout(timer); reject(context.signal.reason) }, { once: true })
        })
        await context.progress((step / this.steps) * 90, `Step ${step} of ${this.steps}`)
      }
      if (this.fail(request.query, runs)) throw new Error(`${request.query} failed on ${this.replica}`)
      return { title: request.query, summary: 'done', markdown: `# ${request.query}\n`, sections: [], sources: [], stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 } }
    } catch (err) {
      if (context.signal.aborted) span.aborted = context.signal.reason
      throw err
    } finally {
      span.end = performance.now()
    }
  }
}

/** Pairs of runs of the same job that overlapped in time. */
export function overlappingRuns (spans: RunSpan[]): string[] {
  const found: string[] = []
  for (let i = 0; i < spans.length; i++) {
    for (let j = i + 1; j < spans.length; j++) {
      const [a, b] = [spans[i] as RunSpan, spans[j] as RunSpan]
      if (a.query !== b.query) continue
      if (a.start < (b.end ?? Infinity) && b.start < (a.end ?? Infinity)) found.push(`${a.query}: ${a.replica} and ${b.replica}`)
    }
  }
  return found
}

/** Runs never end on their own: jobs stay processing until aborted (cancel, shutdown). */
export class StuckEngine implements ResearchEngine {
  readonly name = 'stuck'
  async run (_request: ResearchRequest, context: RunContext): Promise<Report> {
    await context.progress(10, 'Working')
    return await new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true }))
  }
}
