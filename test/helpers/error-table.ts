import { readFileSync, writeFileSync } from 'node:fs'
import { ERROR_CATALOGUE, type ErrorCode } from '../../src/errors.js'

const DOC = new URL('../../docs/api.md', import.meta.url)
const BEGIN = '<!-- errors:begin -->'
const END = '<!-- errors:end -->'

/** The catalogue as the Markdown table docs/api.md shows (`npm run docs:errors` writes it). */
export function errorTable (): string {
  const rows = (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).map((code) => {
    const { status, title, meaning } = ERROR_CATALOGUE[code]
    return `| ${status} | \`${code}\` | ${title} | ${meaning} |`
  })
  return ['| status | code | title | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n')
}

/** The table between the markers of docs/api.md, as it is now. */
export function documentedTable (): string {
  const doc = readFileSync(DOC, 'utf8')
  const begin = doc.indexOf(BEGIN)
  const end = doc.indexOf(END)
  if (begin === -1 || end < begin) throw new Error(`docs/api.md has no ${BEGIN} ... ${END} markers`)
  return doc.slice(begin + BEGIN.length, end).trim()
}

/** Writes the catalogue's table between the markers of docs/api.md. */
export function writeErrorTable (): void {
  const doc = readFileSync(DOC, 'utf8')
  const begin = doc.indexOf(BEGIN)
  const end = doc.indexOf(END)
  if (begin === -1 || end < begin) throw new Error(`docs/api.md has no ${BEGIN} ... ${END} markers`)
  writeFileSync(DOC, `${doc.slice(0, begin + BEGIN.length)}\n${errorTable()}\n${doc.slice(end)}`)
}
