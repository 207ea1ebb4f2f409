import type { Report, ResearchEngine, ResearchRequest, RunContext } from './engine.js'

/**
 * Does no research: reports one step and returns an empty report at once. It exists to measure
 * the service itself (queue, store, runner, HTTP) without the cost of an engine.
 */
export class NoopEngine implements ResearchEngine {
  readonly name = 'noop'

  async run (request: ResearchRequest, context: RunContext): Promise<Report> {
    await context.progress(50, 'No-op engine: nothing to research')
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
