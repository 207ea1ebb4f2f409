import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

const root = new URL('../../', import.meta.url).pathname

t.test('`npm start` builds dist/ first when it is missing or older than the sources, and only then', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'start-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const entry of ['package.json', 'tsconfig.json', 'scripts', 'src']) cpSync(join(root, entry), join(dir, entry), { recursive: true })
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  const prestart = () => spawnSync('node', ['scripts/ensure-build.mjs'], { cwd: dir, encoding: 'utf8' })

  const first = prestart()
  t.equal(first.status, 0, first.stderr)
  t.match(first.stdout, /dist\/ is missing or stale: building/)
  t.ok(existsSync(join(dir, 'dist/server.js')))
  t.ok(existsSync(join(dir, 'dist/store/lua/put.lua')), 'the Lua scripts are copied next to the compiled store')
  t.ok(existsSync(join(dir, 'dist/store/lua/lib/job.lua')))

  const second = prestart()
  t.equal(second.status, 0)
  t.equal(second.stdout, '', 'an up-to-date build is not rebuilt')

  const later = new Date(Date.now() + 60_000)
  utimesSync(join(dir, 'src/app.ts'), later, later)
  t.match(prestart().stdout, /building/, 'a changed source triggers a rebuild')
})

t.test('a bad environment variable or argument stops the server with a message naming it', async (t) => {
  // The server's own entry point, run from source (the build is tested above) with this test's
  // own TypeScript loader: another transpiler's output would garble the merged coverage.
  const loader = Object.fromEntries(Object.entries(process.env).filter(([name]) => /^(PATH|TS_NODE_|TAP|NODE_)/.test(name)))
  const server = (args: string[], env: Record<string, string>) => spawnSync(process.execPath, [...process.execArgv, join(root, 'src/server.ts'), ...args], { cwd: root, encoding: 'utf8', env: { ...loader, ...env }, timeout: 20_000 })
  const badEnv = server([], { PORT: 'eighty', LOG_LEVEL: 'loud' })
  t.equal(badEnv.status, 1)
  t.equal(badEnv.stderr.trim(), 'Invalid configuration: PORT must be integer, LOG_LEVEL is not one of the allowed values')
  const badArg = server(['--port', '80'], {})
  t.equal(badArg.status, 1)
  t.match(badArg.stderr.trim(), /^Unknown argument --port: the server takes only --demo/)
})
