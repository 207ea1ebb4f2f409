import { readdir, readFile } from 'node:fs/promises'
import { join, extname, basename } from 'node:path'
import { PermanentError } from './engine.js'

export type SourceKind = 'corpus' | 'url' | 'web'

export interface Passage {
  id: number
  /** The document it comes from: its path in the corpus folder, or its URL. */
  path: string
  /** Where a reader finds the document: `corpus/<path>` or the URL. */
  location: string
  /** How it was found: the local corpus, a URL the client gave, or a web search. */
  kind: SourceKind
  title: string
  heading: string
  text: string
  /**
   * It comes before its document's first section heading, in a document that has sections: the
   * opening, where a document says what it is about (and the problem it deals with).
   */
  opening?: boolean
}

export type DocumentPassage = Pick<Passage, 'path' | 'title' | 'heading' | 'text' | 'opening'>

export interface Corpus {
  documents: number
  passages: Passage[]
}

const EXTENSIONS = new Set(['.md', '.markdown', '.txt'])
const PASSAGE_TARGET_CHARS = 700

/** A document of the corpus: its path in the corpus folder (with `/`), its title and its text. */
export interface CorpusDocument { path: string, title: string, text: string }

/** Folders below the corpus folder that are read; deeper ones are not. */
const MAX_DEPTH = 8

/**
 * Reads every .md/.txt file under `dir`, in path order: regular files only, so a symbolic link
 * (to a file outside, or a folder that loops) is never followed, and nothing but these documents
 * is ever read from the disk. Any failure is the corpus's, and permanent.
 */
export async function readCorpus (dir: string): Promise<CorpusDocument[]> {
  const files: string[] = []
  const walk = async (folder: string, depth: number): Promise<void> => {
    for (const entry of await readdir(join(dir, folder), { withFileTypes: true })) {
      const path = folder === '' ? entry.name : `${folder}/${entry.name}`
      if (entry.isDirectory() && depth < MAX_DEPTH) await walk(path, depth + 1)
      else if (entry.isFile() && EXTENSIONS.has(extname(entry.name).toLowerCase())) files.push(path)
    }
  }
  const documents: CorpusDocument[] = []
  try {
    await walk('', 0)
    for (const path of files.sort()) {
      const text = await readFile(join(dir, path), 'utf8')
      documents.push({ path, title: titleOf(path, text), text })
    }
  } catch (err) {
    throw new PermanentError(`Cannot read the research corpus at ${dir}: ${(err as Error).message}`)
  }
  if (documents.length === 0) throw new PermanentError(`The research corpus at ${dir} has no .md or .txt documents`)
  return documents
}

/** Reads every .md/.txt file under `dir` and cuts it into passages under their headings. */
export async function loadCorpus (dir: string): Promise<Corpus> {
  const documents = await readCorpus(dir)
  const passages: Passage[] = []
  for (const { path, text } of documents) {
    for (const passage of splitDocument(path, text)) passages.push({ ...passage, id: passages.length, location: `corpus/${path}`, kind: 'corpus' })
  }
  return { documents: documents.length, passages }
}

/** A document's first `# ` heading, else its file name in words. */
function titleOf (path: string, text: string): string {
  return /^#\s+(.+)$/m.exec(text)?.[1]?.trim() ?? basename(path, extname(path)).replace(/[-_]+/g, ' ')
}

/** Splits a document at its headings, then packs paragraphs into passages of about 700 characters. */
export function splitDocument (path: string, text: string): DocumentPassage[] {
  const title = titleOf(path, text)
  const passages: DocumentPassage[] = []
  let heading = title
  let buffer: string[] = []
  // How many passages came before the first section heading; null while there is none.
  let opening: number | null = null
  const flush = (): void => {
    const body = buffer.join('\n\n').trim()
    if (body.length > 0) passages.push({ path, title, heading, text: body })
    buffer = []
  }
  for (const block of text.split(/\n\s*\n/)) {
    const trimmed = block.trim()
    const headingMatch = /^#{1,6}\s+(.+)$/.exec(trimmed)
    if (headingMatch !== null && !trimmed.includes('\n')) {
      flush()
      heading = (headingMatch[1] as string).trim()
      // The title again (a page's own <h1>) still heads the opening; any other heading starts a section.
      if (heading !== title) opening ??= passages.length
      continue
    }
    if (trimmed.length === 0) continue
    if (buffer.join('\n\n').length + trimmed.length > PASSAGE_TARGET_CHARS) flush()
    buffer.push(trimmed)
  }
  flush()
  // A document without sections is all opening, which is to say none of it is.
  for (const passage of passages.slice(0, opening ?? 0)) passage.opening = true
  return passages
}
