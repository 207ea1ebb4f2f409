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
  readonly tokenBudget: number
  readonly #started = performance.now()

  constructor (tokenBudget: number) {
    this.tokenBudget = tokenBudget
  }

  get tokensLeft (): number {
    return Math.max(0, this.tokenBudget - this.inputTokens - this.outputTokens)
  }

  llm (inputTokens: number, outputTokens: number): void {
    this.llmCalls++
    this.inputTokens += inputTokens
    this.outputTokens += outputTokens
  }

  page (bytes: number): void {
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
      cost_usd: this.#cost(prices)
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
