import { createHash } from 'node:crypto'
import { SpanKind } from '@opentelemetry/api'
import { inSpan, urlForSpan } from '../telemetry/spans.js'
import { type RunContext, runStep, throughCache } from './engine.js'
import type { ChatMessage, ChatModel, Completion } from './providers/llm.js'
import type { SearchHit, WebSearch } from './providers/web-search.js'
import type { PageSource, ReadPage } from './reader/page-reader.js'

/**
 * The engine's sources as one job uses them: every page read, search and LLM call is a
 * checkpointed step (done once per job, whatever replica runs its next attempt), and pages and
 * LLM answers also go through the shared cache (done once per tenant within their lifetime).
 * A step replays what it recorded: a page or answer the cache gave keeps `cached`, so the
 * job's usage counts it the same on every attempt.
 */

/** Pages: a step per URL; the cache key is the URL and the reader's settings. */
export function durableReader (reader: PageSource & { settings: string }, context: RunContext): PageSource {
  return {
    read: async (url, signal) => await runStep(context, `page:${url}`, async (): Promise<ReadPage> => {
      const { value, hit } = await throughCache(context, 'page', `${reader.settings}\n${url}`, async () => await readSpan(reader, url, signal))
      return hit ? { ...value, cached: true } : value
    })
  }
}

/** LLM calls: a step per exact request (model, messages, max tokens), which is also the cache key. */
export function durableModel (llm: ChatModel, context: RunContext): ChatModel {
  return {
    model: llm.model,
    complete: async (messages, options) => {
      const request = JSON.stringify({ model: llm.model, messages, max_tokens: options.maxTokens })
      const digest = createHash('sha256').update(request).digest('base64url')
      return await runStep(context, `llm:${digest}`, async (): Promise<Completion> => {
        const { value, hit } = await throughCache(context, 'llm', request, async () => await chatSpan(llm, messages, options))
        return hit ? { ...value, cached: true } : value
      })
    }
  }
}

/** Web searches: a step per query (results change too often to share between jobs). */
export function durableSearch (search: WebSearch, context: RunContext): WebSearch {
  return {
    name: search.name,
    search: async (query, options): Promise<SearchHit[]> => await runStep(context, `search:${search.name}:${options.limit}:${query}`, async () =>
      await inSpan(`search ${search.name}`, { kind: SpanKind.CLIENT, attributes: { 'research.search.provider': search.name, 'research.search.limit': options.limit } }, async (span) => {
        const hits = await search.search(query, options)
        span?.setAttribute('research.search.hits', hits.length)
        return hits
      }))
  }
}

/** A page fetched and read (redirects followed, text extracted): what it cost and gave, or why not. */
async function readSpan (reader: PageSource, url: string, signal: AbortSignal): Promise<ReadPage> {
  return await inSpan('read page', { kind: SpanKind.CLIENT, attributes: { 'url.full': urlForSpan(url) } }, async (span) => {
    const page = await reader.read(url, signal)
    span?.setAttributes({ 'research.page.bytes': page.bytes, 'research.page.final_url': urlForSpan(page.finalUrl) })
    return page
  })
}

/** An LLM call, in OpenTelemetry's GenAI terms: the model, the budget it was given, the tokens it used. */
async function chatSpan (llm: ChatModel, messages: ChatMessage[], options: { maxTokens: number, signal: AbortSignal }): Promise<Completion> {
  const attributes = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': llm.model, 'gen_ai.request.max_tokens': options.maxTokens }
  return await inSpan(`chat ${llm.model}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
    const completion = await llm.complete(messages, options)
    span?.setAttributes({ 'gen_ai.usage.input_tokens': completion.inputTokens, 'gen_ai.usage.output_tokens': completion.outputTokens })
    return completion
  })
}
