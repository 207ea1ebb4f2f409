// Builds dist/ when it is missing or older than any source file, so `npm start` always runs current code.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const entry = join(root, 'dist', 'server.js')

function newestMtime (dir) {
  let newest = 0
  for (const name of readdirSync(dir, { recursive: true })) {
    const stat = statSync(join(dir, String(name)))
    if (stat.isFile()) newest = Math.max(newest, stat.mtimeMs)
  }
  return newest
}

const sources = Math.max(newestMtime(join(root, 'src')), statSync(join(root, 'package.json')).mtimeMs, statSync(join(root, 'tsconfig.json')).mtimeMs)
if (existsSync(entry) && statSync(entry).mtimeMs >= sources) process.exit(0)

process.stdout.write('dist/ is missing or stale: building...\n')
const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' })
process.exit(result.status ?? 1)
