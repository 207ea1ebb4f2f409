import { parseArgs } from 'node:util'
import { ApiError, type CreateResearchRequest, type JobProgress, type JobRecord, ResearchClient } from '../client/index.js'

export interface Output { write (text: string): unknown, isTTY?: boolean, columns?: number }

export interface CliIo {
  stdout: Output
  stderr: Output
  env: Record<string, string | undefined>
  /** Fires on Ctrl-C: a waiting `submit --wait` cancels its job and exits 130. */
  interrupt?: AbortSignal
}

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const

const USAGE = `Usage: deep-research <command> [options]

Commands:
  submit "<question>"   Start a research job (prints its id, or waits with --wait)
  get <job_id>          Show a job (its report once completed)
  list                  List recent jobs
  cancel <job_id>       Cancel a job

Options:
  --wait                submit: follow the job live and print its report
  --depth <d>           quick | standard | deep (default standard)
  --source <s>          corpus | urls | web (repeatable; default corpus, plus urls with --read)
  --read <url>          a page to read (repeatable, up to 20)
  --max-sources <n>     1-50
  --format <f>          markdown | json (report format)
  --status <s>          list: only jobs with this status
  --limit <n>           list: jobs per page (1-100)
  --json                machine-readable output (the JSON record)
  --url <url>           API base URL (env DEEP_RESEARCH_URL, default http://localhost:3000)
  --key <key>           API key (env DEEP_RESEARCH_API_KEY)
  -h, --help            this help

Exit codes: 0 done (job completed), 1 job failed or cancelled, or API error, 2 usage error,
130 interrupted (Ctrl-C while waiting cancels the job first).`

class UsageError extends Error {}

/** The CLI, without process concerns: parses `argv`, talks to the API, returns the exit code. */
export async function main (argv: string[], io: CliIo): Promise<number> {
  let parsed
  try {
    parsed = parse(argv)
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`)
    return EXIT.usage
  }
  const { command, args, values } = parsed
  if (values.help === true) {
    io.stdout.write(`${USAGE}\n`)
    return EXIT.ok
  }
  if (command === undefined) {
    io.stderr.write(`${USAGE}\n`)
    return EXIT.usage
  }
  const client = new ResearchClient({
    baseUrl: values.url ?? io.env.DEEP_RESEARCH_URL ?? 'http://localhost:3000',
    apiKey: values.key ?? io.env.DEEP_RESEARCH_API_KEY
  })
  try {
    switch (command) {
      case 'submit': return await submit(client, args, values, io)
      case 'get': return print(await client.get(one(args, 'get <job_id>')), values.json === true, io)
      case 'cancel': return print(await client.cancel(one(args, 'cancel <job_id>')), values.json === true, io)
      case 'list': return await list(client, values, io)
      default: throw new UsageError(`unknown command "${command}"`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${err.message}\n\n${USAGE}\n`)
      return EXIT.usage
    }
    if (err instanceof ApiError) io.stderr.write(`error: ${err.message} (HTTP ${err.status} ${err.code})\n`)
    else io.stderr.write(`error: ${describeNetworkError(err)}\n`)
    return EXIT.failed
  }
}

type Values = ReturnType<typeof parse>['values']

function parse (argv: string[]): { command: string | undefined, args: string[], values: ReturnType<typeof parseOptions>['values'] } {
  const { values, positionals } = parseOptions(argv)
  return { command: positionals[0], args: positionals.slice(1), values }
}

function parseOptions (argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      wait: { type: 'boolean' },
      depth: { type: 'string' },
      source: { type: 'string', multiple: true },
      read: { type: 'string', multiple: true },
      'max-sources': { type: 'string' },
      format: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      url: { type: 'string' },
      key: { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
}

async function submit (client: ResearchClient, args: string[], values: Values, io: CliIo): Promise<number> {
  const query = args.join(' ').trim()
  if (query === '') throw new UsageError('submit needs a question: deep-research submit "How does ...?"')
  const body: CreateResearchRequest = { query }
  if (values.depth !== undefined) body.depth = oneOf(values.depth, ['quick', 'standard', 'deep'] as const, '--depth')
  if (values.source !== undefined) body.sources = values.source.map((s) => oneOf(s, ['corpus', 'urls', 'web'] as const, '--source'))
  if (values.read !== undefined) body.urls = values.read
  if (values['max-sources'] !== undefined) body.max_sources = integer(values['max-sources'], '--max-sources')
  if (values.format !== undefined) body.report_format = oneOf(values.format, ['markdown', 'json'] as const, '--format')
  const job = await client.submit(body)
  if (values.wait !== true) {
    io.stdout.write(values.json === true ? `${JSON.stringify(job)}\n` : `${job.job_id}\n`)
    return EXIT.ok
  }
  io.stderr.write(`job ${job.job_id}\n`)
  const bar = new ProgressBar(io.stderr)
  const stop = new AbortController()
  const onInterrupt = (): void => stop.abort()
  io.interrupt?.addEventListener('abort', onInterrupt, { once: true })
  try {
    const final = await client.waitForJob(job.job_id, { signal: stop.signal, onProgress: (p) => bar.update(p) })
    bar.done()
    return print(final, values.json === true, io)
  } catch (err) {
    bar.done()
    if (!stop.signal.aborted) throw err
    // Ctrl-C: the job would go on without anyone waiting for it; ask the server to stop it.
    try {
      await client.cancel(job.job_id)
      io.stderr.write(`interrupted: cancelled job ${job.job_id}\n`)
    } catch (cancelErr) {
      io.stderr.write(`interrupted: could not cancel job ${job.job_id}: ${(cancelErr as Error).message}\n`)
    }
    return EXIT.interrupted
  } finally {
    io.interrupt?.removeEventListener('abort', onInterrupt)
  }
}

async function list (client: ResearchClient, values: Values, io: CliIo): Promise<number> {
  const query: Parameters<ResearchClient['list']>[0] = {}
  if (values.status !== undefined) query.status = oneOf(values.status, ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const, '--status')
  if (values.limit !== undefined) query.limit = integer(values.limit, '--limit')
  const page = await client.list(query)
  if (values.json === true) {
    io.stdout.write(`${JSON.stringify(page)}\n`)
    return EXIT.ok
  }
  for (const job of page.jobs) io.stdout.write(`${job.job_id}  ${job.status.padEnd(10)} ${String(job.progress).padStart(3)}%  ${job.query.slice(0, 60)}\n`)
  if (page.jobs.length === 0) io.stderr.write('no jobs\n')
  return EXIT.ok
}

/** A job's outcome for people (its report) or scripts (the record); the exit code follows its status. */
function print (job: JobRecord, json: boolean, io: CliIo): number {
  if (json) io.stdout.write(`${JSON.stringify(job)}\n`)
  else if (job.status === 'completed' && job.result !== null) {
    io.stdout.write(job.result.markdown ?? `${job.result.title}\n\n${job.result.summary}\n`)
  } else {
    io.stdout.write(`${job.job_id}  ${job.status}  ${job.progress}%  ${job.current_step}${job.error === null ? '' : `\nerror: ${job.error}`}\n`)
  }
  return job.status === 'failed' || job.status === 'cancelled' ? EXIT.failed : EXIT.ok
}

/** A one-line bar redrawn in place on a terminal; a line per change otherwise. */
class ProgressBar {
  #last = ''
  #drawn = false
  constructor (readonly out: Output) {}

  update (p: JobProgress): void {
    const line = `${String(p.progress).padStart(3)}% ${p.current_step}`
    if (line === this.#last) return
    this.#last = line
    if (this.out.isTTY !== true) {
      this.out.write(`${line}\n`)
      return
    }
    const width = 24
    const filled = Math.round((p.progress / 100) * width)
    const text = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${line}`
    this.out.write(`\r\x1b[2K${text.slice(0, (this.out.columns ?? 80) - 1)}`)
    this.#drawn = true
  }

  done (): void {
    if (this.#drawn) this.out.write('\n')
    this.#drawn = false
  }
}

function one (args: string[], usage: string): string {
  if (args.length !== 1) throw new UsageError(`usage: deep-research ${usage}`)
  return args[0] as string
}

function oneOf<T extends string> (value: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} must be one of: ${allowed.join(', ')}`)
  return value as T
}

function integer (value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number`)
  return Number(value)
}

function describeNetworkError (err: unknown): string {
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  if (cause?.code === 'ECONNREFUSED') return `cannot reach the API (${cause.message}); is the service running? (--url or DEEP_RESEARCH_URL)`
  return (cause?.message ?? (err as Error).message)
}
