import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ServiceError } from '../errors.js'
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
      response: { 200: described('The documents, by path', CorpusList), ...problems(401, 429) }
    }
  }, async () => ({ documents: (await app.corpus.list()).map(({ path, title }) => ({ path, title, link: corpusLink(path) })) }))

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
        ...problems(401, 404, 429)
      }
    }
  }, async (request, reply) => {
    const { path } = request.params
    const document = await app.corpus.get(path)
    if (document === null) throw new ServiceError(404, 'not_found', `No corpus document at "${path}" (GET ${CORPUS_ROUTE} lists them)`)
    if (wantsJson(request.headers.accept)) return { ...document, link: corpusLink(path) }
    return await reply.type('text/plain; charset=utf-8').send(document.text)
  })
}

/** JSON when the client names it and not plain text too: a browser (any type, or text/html) gets the text. */
function wantsJson (accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/json') && !accept.includes('text/plain')
}

export default corpusRoutes
