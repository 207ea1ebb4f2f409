import { type Corpus, loadCorpus } from './corpus.js'
import { PassageCollection } from './passage-collection.js'

export interface CorpusIndex {
  documents: number
  collection: PassageCollection
}

/**
 * The local document collection, read and indexed once and shared by every job; a failed read
 * (a missing or empty folder) is retried by the next job.
 */
export class CorpusRetriever {
  readonly #corpusDir: string
  #index: Promise<CorpusIndex> | null = null

  constructor (corpusDir: string) {
    this.#corpusDir = corpusDir
  }

  load (): Promise<CorpusIndex> {
    this.#index ??= loadCorpus(this.#corpusDir)
      .then((corpus: Corpus) => ({ documents: corpus.documents, collection: new PassageCollection(corpus.passages) }))
      .catch((err: unknown) => {
        this.#index = null
        throw err
      })
    return this.#index
  }
}
