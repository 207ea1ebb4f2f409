import { anyAddress, publicAddressesOnly } from '../net/address-guard.js'
import type { Config } from '../config.js'
import { corpusLink } from '../schemas/corpus.js'
import { CorpusRetriever } from './corpus-retriever.js'
import { DeepResearchEngine } from './deep-engine.js'
import type { ResearchEngine } from './engine.js'
import { NoopEngine } from './noop.js'
import { PacedEngine } from './paced.js'
import { DEFAULT_RETRY, type RetryPolicy } from './providers/http.js'
import { OpenAiCompatibleChat } from './providers/llm.js'
import { webSearchFrom } from './providers/web-search.js'
import { HtmlPool } from './reader/html-pool.js'
import { PageFetcher } from './reader/page-fetcher.js'
import { PageReader } from './reader/page-reader.js'

/** Where the engine logs what it keeps from clients (the network errors behind unread pages). */
export interface EngineLogger { debug (obj: object, msg: string): void }

/** The engine the configuration describes: RESEARCH_ENGINE, its providers, budgets and prices. */
export function engineFromConfig (config: Config, logger?: EngineLogger): ResearchEngine {
  const engine = config.RESEARCH_ENGINE === 'noop' ? new NoopEngine(config.NOOP_PROGRESS_WRITES) : researchEngine(config, logger)
  return config.RESEARCH_STEP_DELAY_MS > 0 ? new PacedEngine(engine, config.RESEARCH_STEP_DELAY_MS) : engine
}

function researchEngine (config: Config, logger?: EngineLogger): DeepResearchEngine {
  const retry: RetryPolicy = { ...DEFAULT_RETRY, retries: config.PROVIDER_RETRIES, baseMs: config.PROVIDER_RETRY_BASE_MS }
  return new DeepResearchEngine({
    corpus: new CorpusRetriever(config.RESEARCH_CORPUS_DIR),
    reader: new PageReader(new PageFetcher({
      policy: config.ALLOW_PRIVATE_URLS ? anyAddress : publicAddressesOnly,
      maxBytes: config.PAGE_MAX_BYTES,
      timeoutMs: config.PAGE_TIMEOUT_MS,
      logger
    }), new HtmlPool({
      threads: config.READER_THREADS,
      timeoutMs: config.READER_TIMEOUT_MS,
      maxDepth: config.READER_MAX_DEPTH,
      maxElements: config.READER_MAX_ELEMENTS
    })),
    webSearch: webSearchFrom(config, retry),
    llm: config.LLM_MODEL === '' ? null : new OpenAiCompatibleChat({ baseUrl: config.LLM_BASE_URL, apiKey: config.LLM_API_KEY, model: config.LLM_MODEL, retry }),
    tokenBudget: config.LLM_MAX_TOKENS_PER_JOB,
    corpusLink,
    prices: {
      llmInputPerMTok: price(config.LLM_PRICE_INPUT_PER_MTOK),
      llmOutputPerMTok: price(config.LLM_PRICE_OUTPUT_PER_MTOK),
      searchPerQuery: price(config.SEARCH_PRICE_PER_QUERY)
    }
  })
}

function price (value: string): number | null {
  return value === '' ? null : Number(value)
}
