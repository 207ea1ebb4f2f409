import { type RetryPolicy, ProviderError, callJson } from './http.js'

export interface ChatMessage { role: 'system' | 'user' | 'assistant', content: string }

/** `cached`: taken from the shared cache, no request sent, no tokens spent by this job. */
export interface Completion { content: string, inputTokens: number, outputTokens: number, cached?: boolean }

/** A chat model: one prompt in, one answer out, with the tokens it used. */
export interface ChatModel {
  readonly model: string
  complete (messages: ChatMessage[], options: { maxTokens: number, signal: AbortSignal }): Promise<Completion>
}

export interface OpenAiChatOptions {
  /** e.g. https://api.openai.com/v1, https://openrouter.ai/api/v1, http://localhost:11434/v1 */
  baseUrl: string
  /** Empty for servers without keys (Ollama, vLLM). */
  apiKey: string
  model: string
  retry?: RetryPolicy
  timeoutMs?: number
}

/** The OpenAI chat completions wire format, which OpenAI, OpenRouter, Ollama and vLLM all speak. */
export class OpenAiCompatibleChat implements ChatModel {
  readonly model: string
  readonly #options: OpenAiChatOptions

  constructor (options: OpenAiChatOptions) {
    this.model = options.model
    this.#options = options
  }

  async complete (messages: ChatMessage[], { maxTokens, signal }: { maxTokens: number, signal: AbortSignal }): Promise<Completion> {
    const base = this.#options.baseUrl.replace(/\/+$/, '')
    const body = await callJson(`${base}/chat/completions`, {
      provider: `The LLM (${this.model})`,
      headers: this.#options.apiKey === '' ? {} : { authorization: `Bearer ${this.#options.apiKey}` },
      body: { model: this.model, messages, max_tokens: maxTokens, temperature: 0.2 },
      signal,
      retry: this.#options.retry,
      timeoutMs: this.#options.timeoutMs ?? 120_000
    }) as { choices?: Array<{ message?: { content?: unknown } }>, usage?: { prompt_tokens?: unknown, completion_tokens?: unknown } }
    const content = body.choices?.[0]?.message?.content
    if (typeof content !== 'string') throw new ProviderError(`The LLM (${this.model}) answered without a message`)
    const prompt = messages.reduce((sum, m) => sum + m.content.length, 0)
    return {
      content,
      // Servers that omit usage are charged an estimate (about four characters per token).
      inputTokens: typeof body.usage?.prompt_tokens === 'number' ? body.usage.prompt_tokens : Math.ceil(prompt / 4),
      outputTokens: typeof body.usage?.completion_tokens === 'number' ? body.usage.completion_tokens : Math.ceil(content.length / 4)
    }
  }
}

/** Rough tokens of a text, to decide whether a call still fits the budget before making it. */
export function estimateTokens (text: string): number {
  return Math.ceil(text.length / 4)
}
