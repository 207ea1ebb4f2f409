import { SHIPPED_CORPUS_DIR } from '../../src/config.js'
import { anyAddress } from '../../src/net/address-guard.js'
import { CorpusRetriever } from '../../src/research/corpus-retriever.js'
import { DeepResearchEngine, type DeepResearchEngineOptions } from '../../src/research/deep-engine.js'
import { PageFetcher, type PageFetcherOptions } from '../../src/research/reader/page-fetcher.js'
import { PageReader } from '../../src/research/reader/page-reader.js'
import { NO_PRICES } from '../../src/research/usage.js'
import { corpusLink } from '../../src/schemas/corpus.js'

/**
 * The real research engine as the service builds it, over the shipped corpus (its sources
 * linking to the service's corpus route), with no web search and no LLM unless given; its
 * reader may reach local test servers (guard opened).
 */
export function researchEngine (overrides: Partial<DeepResearchEngineOptions> & { fetcher?: PageFetcherOptions } = {}): DeepResearchEngine {
  const { fetcher, ...options } = overrides
  return new DeepResearchEngine({
    corpus: new CorpusRetriever(SHIPPED_CORPUS_DIR),
    reader: new PageReader(new PageFetcher({ policy: anyAddress, ...fetcher })),
    webSearch: null,
    llm: null,
    tokenBudget: 50_000,
    prices: NO_PRICES,
    corpusLink,
    ...options
  })
}
