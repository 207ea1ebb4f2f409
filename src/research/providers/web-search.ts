import { type RetryPolicy, ProviderError, callJson } from './http.js'

export interface SearchHit { url: string, title: string, snippet: string }

/** A web search API. */
export interface WebSearch {
  /** Shown in progress steps and errors. */
  readonly name: string
  search (query: string, options: { limit: number, signal: AbortSignal }): Promise<SearchHit[]>
}

interface ProviderOptions { retry?: RetryPolicy }

/** A self-hosted SearXNG instance with its JSON output enabled (`search.formats: [json]`). */
export class SearxngSearch implements WebSearch {
  readonly name = 'SearXNG'
  readonly baseUrl: string
  readonly options: ProviderOptions
  constructor (baseUrl: string, options: ProviderOptions = {}) {
    this.baseUrl = baseUrl
    this.options = options
  }

  async search (query: string, { limit, signal }: { limit: number, signal: AbortSignal }): Promise<SearchHit[]> {
    const url = new URL('search', this.baseUrl.endsWith('/') ? this.baseUrl : `${this.baseUrl}/`)
    url.searchParams.set('q', query)
    url.searchParams.set('format', 'json')
    const body = await callJson(url.href, { provider: this.name, signal, retry: this.options.retry }) as { results?: Array<{ url?: unknown, title?: unknown, content?: unknown }> }
    return hits(this.name, body.results, limit, (r) => [r.url, r.title, r.content])
  }
}

/** Tavily's search API (https://api.tavily.com/search), key in TAVILY_API_KEY. */
export class TavilySearch implements WebSearch {
  readonly name = 'Tavily'
  readonly apiKey: string
  readonly options: ProviderOptions & { endpoint?: string }
  constructor (apiKey: string, options: ProviderOptions & { endpoint?: string } = {}) {
    this.apiKey = apiKey
    this.options = options
  }

  async search (query: string, { limit, signal }: { limit: number, signal: AbortSignal }): Promise<SearchHit[]> {
    const body = await callJson(this.options.endpoint ?? 'https://api.tavily.com/search', {
      provider: this.name,
      headers: { authorization: `Bearer ${this.apiKey}` },
      body: { query, max_results: limit, search_depth: 'basic' },
      signal,
      retry: this.options.retry
    }) as { results?: Array<{ url?: unknown, title?: unknown, content?: unknown }> }
    return hits(this.name, body.results, limit, (r) => [r.url, r.title, r.content])
  }
}

/** Brave's Web Search API, key in BRAVE_API_KEY. */
export class BraveSearch implements WebSearch {
  readonly name = 'Brave Search'
  readonly apiKey: string
  readonly options: ProviderOptions & { endpoint?: string }
  constructor (apiKey: string, options: ProviderOptions & { endpoint?: string } = {}) {
    this.apiKey = apiKey
    this.options = options
  }

  async search (query: string, { limit, signal }: { limit: number, signal: AbortSignal }): Promise<SearchHit[]> {
    const url = new URL(this.options.endpoint ?? 'https://api.search.brave.com/res/v1/web/search')
    url.searchParams.set('q', query)
    url.searchParams.set('count', String(Math.min(20, limit)))
    const body = await callJson(url.href, {
      provider: this.name,
      headers: { 'x-subscription-token': this.apiKey },
      signal,
      retry: this.options.retry
    }) as { web?: { results?: Array<{ url?: unknown, title?: unknown, description?: unknown }> } }
    return hits(this.name, body.web?.results ?? [], limit, (r) => [r.url, r.title, r.description])
  }
}

export interface WebSearchSettings {
  SEARXNG_URL: string
  TAVILY_API_KEY: string
  BRAVE_API_KEY: string
}

/** The configured provider, SearXNG first, then Tavily, then Brave; null when none is. */
export function webSearchFrom (settings: WebSearchSettings, retry?: RetryPolicy): WebSearch | null {
  if (settings.SEARXNG_URL !== '') return new SearxngSearch(settings.SEARXNG_URL, { retry })
  if (settings.TAVILY_API_KEY !== '') return new TavilySearch(settings.TAVILY_API_KEY, { retry })
  if (settings.BRAVE_API_KEY !== '') return new BraveSearch(settings.BRAVE_API_KEY, { retry })
  return null
}

export const NO_WEB_SEARCH = 'the "web" source is unavailable: no web search provider is configured (set SEARXNG_URL, TAVILY_API_KEY or BRAVE_API_KEY)'

function hits<T> (provider: string, results: T[] | undefined, limit: number, fields: (result: T) => unknown[]): SearchHit[] {
  if (!Array.isArray(results)) throw new ProviderError(`${provider} answered without a results list`)
  const found: SearchHit[] = []
  for (const result of results) {
    const [url, title, snippet] = fields(result)
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) continue
    found.push({ url, title: typeof title === 'string' ? title : url, snippet: typeof snippet === 'string' ? snippet.replace(/<[^>]+>/g, '') : '' })
    if (found.length === limit) break
  }
  return found
}
