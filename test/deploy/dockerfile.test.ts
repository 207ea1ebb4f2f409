import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { type Stage, parseDockerfile } from '../helpers/dockerfile.js'
import { freePort } from '../helpers/redis-server.js'

const root = new URL('../../', import.meta.url).pathname
const stages = parseDockerfile(join(root, 'Dockerfile'))

t.test('the Dockerfile lints clean (dockerfile-utils: no errors, no warnings)', async (t) => {
  const lint = spawnSync(join(root, 'node_modules/.bin/dockerfile-utils'), ['lint', 'Dockerfile'], { cwd: root, encoding: 'utf8' })
  t.equal(lint.status, 0)
  t.equal(lint.stdout.trim(), '', lint.stdout)
})

t.test('the Dockerfile follows the deployment rules', async (t) => {
  t.equal(stages.length, 2, 'multi-stage: build, then runtime')
  const nodeVersion = readFileSync(join(root, '.node-version'), 'utf8').trim()
  t.match(nodeVersion, /^24\.\d+\.\d+$/, '.node-version names a Node 24 LTS release (.ci/run runs the tests on it)')
  for (const stage of stages) t.match(stage.base, new RegExp(`^node:${nodeVersion.replaceAll('.', '\\.')}-[a-z]+-slim$`), `${stage.name} pins the slim image of Node ${nodeVersion}`)
  const engines = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node
  t.equal(engines, '>=22', 'the package asks for a Node its production dependencies support (>= 22)')
  const runtime = stages.at(-1) as Stage
  const find = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword)
  t.ok(find('RUN').some((i) => i.args.includes('npm ci --omit=dev')), 'runtime installs production dependencies only')
  t.same(find('USER').map((i) => i.args), ['node'], 'runs as the unprivileged node user')
  t.same(find('CMD').map((i) => i.args), ['["node", "dist/server.js"]'], 'exec-form CMD straight to node')
  t.same(find('EXPOSE').map((i) => i.args), ['3000'])
  t.ok(find('COPY').some((i) => i.args.startsWith('--from=build')), 'the runtime takes the compiled output from the build stage')
})

/**
 * Runs the Dockerfile's own COPY and RUN steps, stage by stage, in clean temporary folders
 * (there is no Docker engine here), then starts the result the way CMD would.
 */
t.test('the Dockerfile\'s build steps work in a clean folder, and the result serves /health and stops on SIGTERM', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'docker-steps-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const dirs = new Map<string, string>()
  let env: Record<string, string> = {}
  for (const [index, stage] of stages.entries()) {
    const dir = join(work, stage.name ?? `stage${index}`)
    mkdirSync(dir)
    dirs.set(stage.name ?? String(index), dir)
    env = {}
    for (const { keyword, args } of stage.instructions) {
      if (keyword === 'ENV') {
        for (const [, key = '', value = ''] of args.matchAll(/(\w+)=(\S+)/g)) env[key] = value
      } else if (keyword === 'COPY') {
        const parts = args.split(' ')
        const from = parts[0]?.startsWith('--from=') ? dirs.get((parts.shift() as string).slice(7)) : root
        const dest = parts.pop() as string
        for (const source of parts) {
          const target = dest.endsWith('/') ? join(dir, dest, source.split('/').pop() as string) : join(dir, dest)
          cpSync(join(from as string, source.replace(/^\/app\//, '')), target, { recursive: true })
        }
      } else if (keyword === 'RUN') {
        const run = spawnSync('bash', ['-c', args], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env, npm_config_prefer_offline: 'true' } })
        t.equal(run.status, 0, `${stage.name}: RUN ${args}\n${run.stderr.slice(-2000)}`)
        if (run.status !== 0) return
      }
    }
  }
  const app = dirs.get('runtime') as string
  const port = await freePort()
  const child = spawn('node', ['dist/server.js'], { cwd: app, env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', REDIS_URL: '', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => child.kill('SIGKILL'))
  let health
  for (let i = 0; i < 100 && health === undefined; i++) {
    try {
      health = await (await fetch(`http://127.0.0.1:${port}/health`)).json()
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  t.match(health, { status: 'ok', store: 'memory' }, `the built service answers /health\n${output}`)
  const created = await fetch(`http://127.0.0.1:${port}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'graceful shutdown in containers', depth: 'quick' }) })
  t.equal(created.status, 202, 'and runs research from the copied corpus')
  const sent = Date.now()
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM ends it cleanly')
  t.ok(Date.now() - sent < 3000, 'within Railway\'s window')
  const lines = output.trim().split('\n')
  t.ok(lines.every((line) => { try { return typeof JSON.parse(line).level === 'number' } catch { return false } }), 'logs are JSON lines')
  t.ok(lines.some((line) => line.includes('"shutting down"') && line.includes('SIGTERM')))
})
