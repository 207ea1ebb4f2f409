import type { UsageData } from '../schemas/job.js'

/** USD prices; null where unknown (then a cost that needs it is unknown too). */
export interface Prices {
  llmInputPerMTok: number | null
  llmOutputPerMTok: number | null
  /** Per web search query; null = unknown, for providers that bill per query. */
  searchPerQuery: number | null
}

export const NO_PRICES: Prices = { llmInputPerMTok: null, llmOutputPerMTok: null, searchPerQuery: null }

/** Counts what one job spends, and stops LLM calls at the token budget. */
export class UsageMeter {
  llmCalls = 0
  inputTokens = 0
  outputTokens = 0
  pagesFetched = 0
  bytesFetched = 0
  searchQueries = 0
  /** Queries to a provider that does not bill (self-hosted SearXNG). */
  freeSearchQueries = 0
  cachedPages = 0
  cachedLlmCalls = 0
  readonly tokenBudget: number
  readonly #started = performance.now()

  constructor (tokenBudget: number) {
    this.tokenBudget = tokenBudget
  }

  get tokensLeft (): number {
    return Math.max(0, this.tokenBudget - this.inputTokens - this.outputTokens)
  }

  /** One LLM answer; one from the shared cache cost this job nothing. */
  llm (answer: { inputTokens: number, outputTokens: number, cached?: boolean }): void {
    if (answer.cached === true) {
      this.cachedLlmCalls++
      return
    }
    this.llmCalls++
    this.inputTokens += answer.inputTokens
    this.outputTokens += answer.outputTokens
  }

  /** One page read; one from the shared cache was not fetched. */
  page (bytes: number, cached = false): void {
    if (cached) {
      this.cachedPages++
      return
    }
    this.pagesFetched++
    this.bytesFetched += bytes
  }

  search (free: boolean): void {
    this.searchQueries++
    if (free) this.freeSearchQueries++
  }

  snapshot (prices: Prices): UsageData {
    return {
      llm_calls: this.llmCalls,
      input_tokens: this.inputTokens,
      output_tokens: this.outputTokens,
      pages_fetched: this.pagesFetched,
      bytes_fetched: this.bytesFetched,
      search_queries: this.searchQueries,
      duration_ms: Math.round(performance.now() - this.#started),
      cost_usd: this.#cost(prices),
      cached_pages: this.cachedPages,
      cached_llm_calls: this.cachedLlmCalls
    }
  }

  #cost (prices: Prices): number | null {
    let cost = 0
    if (this.llmCalls > 0) {
      if (prices.llmInputPerMTok === null || prices.llmOutputPerMTok === null) return null
      cost += (this.inputTokens * prices.llmInputPerMTok + this.outputTokens * prices.llmOutputPerMTok) / 1e6
    }
    const billed = this.searchQueries - this.freeSearchQueries
    if (billed > 0) {
      if (prices.searchPerQuery === null) return null
      cost += billed * prices.searchPerQuery
    }
    return Math.round(cost * 1e6) / 1e6
  }
}
