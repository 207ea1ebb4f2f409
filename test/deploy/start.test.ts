import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { waitFor } from '../helpers/app.js'
import { freePort } from '../helpers/redis-server.js'

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

t.test('`npm start` passes SIGTERM to the server, which shuts down and says it stopped: no server is left running behind npm', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'start-signal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const entry of ['package.json', 'tsconfig.json', 'scripts', 'src', 'corpus']) cpSync(join(root, entry), join(dir, entry), { recursive: true })
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  const port = await freePort()
  const npm = spawn('npm', ['start'], { cwd: dir, env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ROLE: 'all', RESEARCH_ENGINE: 'research' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  npm.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  npm.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)))
  t.teardown(() => { npm.kill('SIGKILL') })
  await waitFor('the server listening', () => /Server listening/.test(out), 120_000)
  const prepared = out.indexOf('"msg":"research engine prepared"')
  t.ok(prepared >= 0 && prepared < out.indexOf('Server listening'), 'the research engine read its tables (the shipped corpus too) before the server listened')
  npm.kill('SIGTERM')
  await exited
  // The server's own exit can trail npm's by a moment.
  let answering = true
  for (let i = 0; i < 50 && answering; i++) {
    answering = await fetch(`http://127.0.0.1:${port}/health`).then(() => true, () => false)
    if (answering) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.notOk(answering, `nothing answers on port ${port} once npm is gone`)
  t.match(out, /"msg":"stopped"/, 'the last word is that it stopped')
})

t.test('another package imports the typed client by name (package.json exports), with its types', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'consumer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const built = join(dir, 'deep-research-api')
  for (const entry of ['package.json', 'tsconfig.json', 'scripts', 'src']) cpSync(join(root, entry), join(built, entry), { recursive: true })
  symlinkSync(join(root, 'node_modules'), join(built, 'node_modules'))
  t.equal(spawnSync('node', ['scripts/ensure-build.mjs'], { cwd: built, encoding: 'utf8' }).status, 0, 'built')
  const consumer = join(dir, 'consumer')
  cpSync(join(root, 'node_modules/@types'), join(consumer, 'node_modules/@types'), { recursive: true })
  mkdirSync(join(consumer, 'node_modules'), { recursive: true })
  symlinkSync(built, join(consumer, 'node_modules/deep-research-api'))
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }))
  writeFileSync(join(consumer, 'use.ts'), [
    "import { ApiError, ResearchClient, type JobRecord } from 'deep-research-api/client'",
    "const client: ResearchClient = new ResearchClient({ baseUrl: 'http://127.0.0.1:1' })",
    'const pick = (job: JobRecord): string => job.status',
    'console.log(typeof client.submit, typeof ApiError, typeof pick)'
  ].join('\n'))
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', 'use.ts'], { cwd: consumer, encoding: 'utf8' })
  t.equal(tsc.status, 0, `the consumer type-checks against the exported declarations: ${tsc.stdout}${tsc.stderr}`)
  writeFileSync(join(consumer, 'use.mjs'), "const { ResearchClient, ApiError } = await import('deep-research-api/client'); console.log(typeof ResearchClient, typeof ApiError)")
  const run = spawnSync('node', ['use.mjs'], { cwd: consumer, encoding: 'utf8' })
  t.equal(run.stdout.trim(), 'function function', run.stderr)
  const deep = spawnSync('node', ['-e', "import('deep-research-api/dist/store/redis.js').then(() => console.log('reached'), (err) => console.log(err.code))"], { cwd: consumer, encoding: 'utf8' })
  t.equal(deep.stdout.trim(), 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'only what is exported can be imported')
})

t.test('a bad environment variable or argument stops the server with a message naming it', async (t) => {
  // The server's own entry point, run from source (the build is tested above) with this test's
  // own TypeScript loader: another transpiler's output would garble the merged coverage.
  const loader = Object.fromEntries(Object.entries(process.env).filter(([name]) => /^(PATH|TS_NODE_|TAP|NODE_)/.test(name)))
  // NODE_OPTIONS (kept above) turns Maglev off (test/helpers/no-maglev.mjs): one exit during the
  // loader's start-up compiling deadlocked here (nodejs/node#54918) until the file's timeout.
  const server = (args: string[], env: Record<string, string>) => spawnSync(process.execPath, [...process.execArgv, join(root, 'src/server.ts'), ...args], { cwd: root, encoding: 'utf8', env: { ...loader, ...env }, timeout: 60_000, killSignal: 'SIGKILL' })
  const badEnv = server([], { PORT: 'eighty', LOG_LEVEL: 'loud' })
  t.equal(badEnv.status, 1)
  t.equal(badEnv.stderr.trim(), 'Invalid configuration: PORT must be integer, LOG_LEVEL is not one of the allowed values: fatal, error, warn, info, debug, trace, silent (got "loud")')
  const badArg = server(['--port', '80'], {})
  t.equal(badArg.status, 1)
  t.match(badArg.stderr.trim(), /^Unknown argument --port: the server takes only --demo/)
})
