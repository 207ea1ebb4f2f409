import { type CorpusDocument, readCorpus } from './corpus.js'

/**
 * The corpus documents as a person reads them (the sources a report links to): listed and
 * served by path, exactly the files the research engine searches and nothing else from the
 * disk. Read once; a failed read is tried again on the next call.
 */
export class CorpusDocuments {
  readonly #dir: string
  #documents: Promise<Map<string, CorpusDocument>> | null = null

  constructor (dir: string) {
    this.#dir = dir
  }

  async list (): Promise<CorpusDocument[]> {
    return [...(await this.#load()).values()]
  }

  /** The document at this path in the corpus, or null: a path that is not one of them is never read. */
  async get (path: string): Promise<CorpusDocument | null> {
    return (await this.#load()).get(path) ?? null
  }

  #load (): Promise<Map<string, CorpusDocument>> {
    this.#documents ??= readCorpus(this.#dir)
      .then((documents) => new Map(documents.map((document) => [document.path, document])))
      .catch((err: unknown) => {
        this.#documents = null
        throw err
      })
    return this.#documents
  }
}
