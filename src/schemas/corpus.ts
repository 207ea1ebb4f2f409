import { Type } from 'typebox'

/** Where the service serves the corpus documents; a report's corpus sources link here. */
export const CORPUS_ROUTE = '/v1/corpus'

/** The link to a corpus document: its path as one escaped segment (a subfolder's `/` as `%2F`). */
export function corpusLink (path: string): string {
  return `${CORPUS_ROUTE}/${encodeURIComponent(path)}`
}

export const CorpusDocumentBody = Type.Object({
  path: Type.String({ description: 'Its path in the corpus folder' }),
  title: Type.String({ description: 'Its first `# ` heading, or its file name' }),
  link: Type.String({ description: 'This route, for this document' }),
  text: Type.String({ description: 'The whole document (Markdown or plain text), as the research engine read it' })
}, { title: 'CorpusDocument' })

export const CorpusList = Type.Object({
  documents: Type.Array(Type.Object({ path: Type.String(), title: Type.String(), link: Type.String() }), { description: 'Every document the research engine searches, by path' })
}, { title: 'CorpusList' })

export const CorpusPathParams = Type.Object({
  path: Type.String({ maxLength: 500, examples: ['redis-persistence.md'], description: 'The document\'s path in the corpus folder, as in a source\'s `path_or_url` without `corpus/` (e.g. `redis-persistence.md`; a subfolder\'s `/` as `%2F`)' })
})
