import type { Report, ResearchEngine, ResearchRequest, RunContext } from './engine.js'

/**
 * Does no research: reports `progressWrites` steps and returns an empty report at once. It exists
 * to measure the service itself (queue, store, runner, HTTP) without the cost of an engine, with
 * as many progress writes per job as the measurement asks for (NOOP_PROGRESS_WRITES).
 */
export class NoopEngine implements ResearchEngine {
  readonly name = 'noop'

  readonly progressWrites: number

  constructor (progressWrites = 1) { this.progressWrites = progressWrites }

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    for (let i = 1; i <= this.progressWrites; i++) {
      await context.progress(Math.round((99 * i) / (this.progressWrites + 1)), `No-op engine: step ${i} of ${this.progressWrites}, nothing to research`)
    }
    return {
      title: `No-op: ${request.query}`,
      summary: 'The no-op engine (RESEARCH_ENGINE=noop) does no research; it measures the service.',
      markdown: `# No-op: ${request.query}\n`,
      sections: [],
      sources: [],
      stats: { documents_searched: 0, passages_read: 0, duration_ms: 0 },
      usage: { llm_calls: 0, input_tokens: 0, output_tokens: 0, pages_fetched: 0, bytes_fetched: 0, search_queries: 0, duration_ms: 0, cost_usd: 0 }
    }
  }
}
