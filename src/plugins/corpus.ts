import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import { CorpusDocuments } from '../research/corpus-documents.js'

declare module 'fastify' {
  interface FastifyInstance {
    corpus: CorpusDocuments
  }
}

/** The corpus documents the reports cite, for the route that serves them. */
const corpusPlugin: FastifyPluginAsync<{ config: Config }> = async (app, { config }) => {
  app.decorate('corpus', new CorpusDocuments(config.RESEARCH_CORPUS_DIR))
}

export default fp(corpusPlugin, { name: 'corpus' })
