import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ServiceError } from '../errors.js'
import { PermanentError } from '../research/engine.js'
import { CORPUS_ROUTE, CorpusDocumentBody, CorpusList, CorpusPathParams, corpusLink } from '../schemas/corpus.js'
import { described, problems } from '../schemas/responses.js'

/**
 * The corpus documents a report cites, read-only and behind the same keys as the jobs: a
 * source's `link` opens here. Plain text (the Markdown source) for a browser; JSON for a client
 * that asks for it with `Accept: application/json`.
 */
const corpusRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(CORPUS_ROUTE, {
    config: { budget: 'poll' },
    schema: {
      operationId: 'listCorpus',
      tags: ['sources'],
      summary: 'List the corpus documents the research searches',
      description: 'Every document of the corpus (`RESEARCH_CORPUS_DIR`, by default the shipped `corpus/`), with the link that opens it.',
      response: { 200: described('The documents, by path', CorpusList), ...problems(401, 429, 503) }
    }
  }, async () => ({ documents: (await readable(app.corpus.list())).map(({ path, title }) => ({ path, title, link: corpusLink(path) })) }))

  app.get(`${CORPUS_ROUTE}/:path`, {
    config: { budget: 'poll' },
    schema: {
      operationId: 'getCorpusDocument',
      tags: ['sources'],
      summary: 'Open a corpus document a report cites',
      description: 'The document a corpus source of a report links to (`sources[].link`). Answers the document as plain text (its Markdown source), or as JSON with `Accept: application/json`. Only the corpus\'s own documents are served: any other path is a 404.',
      params: CorpusPathParams,
      response: {
        200: { description: 'The document', content: { 'text/plain': { schema: { type: 'string' } }, 'application/json': { schema: CorpusDocumentBody } } },
        ...problems(401, 404, 429, 503)
      }
    }
  }, async (request, reply) => {
    const { path } = request.params
    const document = await readable(app.corpus.get(path))
    if (document === null) throw new ServiceError('not_found', `No corpus document at "${path}" (GET ${CORPUS_ROUTE} lists them)`)
    if (wantsJson(request.headers.accept)) return { ...document, link: corpusLink(path) }
    return await reply.type('text/plain; charset=utf-8').send(document.text)
  })
}

/** The corpus as read, or a 503 problem naming why it cannot be (a folder missing, empty or unreadable): the operator's to fix. */
async function readable<T> (reading: Promise<T>): Promise<T> {
  try {
    return await reading
  } catch (err) {
    if (err instanceof PermanentError) throw new ServiceError('corpus_unavailable', err.message, { retryAfter: 30 })
    throw err
  }
}

/**
 * JSON when the client prefers it to plain text: by the quality each gets in Accept (an exact
 * type before a wildcard), and on a tie by which comes first. A browser (`text/html`, `*` + `/*`)
 * gets the text; `application/json, text/plain, *` + `/*` gets JSON.
 */
function wantsJson (accept: string | undefined): boolean {
  if (accept === undefined) return false
  const ranges = accept.split(',').map((range, order) => {
    const [type = '', ...params] = range.trim().toLowerCase().split(';').map((p) => p.trim())
    const q = Number(params.find((p) => p.startsWith('q='))?.slice(2) ?? 1)
    return { type, q: Number.isFinite(q) ? q : 0, order }
  })
  const rank = (media: string): { q: number, order: number } => {
    const match = ranges.find((r) => r.type === media) ?? ranges.find((r) => r.type === `${media.split('/')[0]}/*`) ?? ranges.find((r) => r.type === '*/*')
    return match === undefined ? { q: 0, order: Infinity } : { q: match.q, order: match.type === media ? match.order : Infinity }
  }
  const json = rank('application/json')
  const text = rank('text/plain')
  return json.q > text.q || (json.q === text.q && json.q > 0 && json.order < text.order)
}

export default corpusRoutes
