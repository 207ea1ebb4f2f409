// npm run docs:errors: writes the error catalogue (src/errors.ts) as the table of docs/api.md,
// Errors; test/errors.test.ts fails while the two differ.
import { writeErrorTable } from '../test/helpers/error-table.ts'

writeErrorTable()
console.log('docs/api.md: the error table is the catalogue\'s')
