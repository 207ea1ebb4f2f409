import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type CreateResearchRequest, type JobRecord, ResearchClient } from '../client/index.js'
import { EXIT, type ErrorContext, UsageError, WaitTimeoutError, describeError, normalizeUrl, usageFromParseError } from './errors.js'
import { follow } from './follow.js'
import { type Output, ProgressBar } from './progress-bar.js'

export { EXIT } from './errors.js'
export type { Output } from './progress-bar.js'

export interface CliIo {
  stdout: Output
  stderr: Output
  env: Record<string, string | undefined>
  /** Fires on Ctrl-C: a waiting `submit --wait` cancels its job and exits 130. */
  interrupt?: AbortSignal
}

const USAGE = `Usage: deep-research <command> [options]

Commands:
  submit "<question>"   Start a research job (prints its id, or waits with --wait)
  watch <job_id>        Follow a job live until it ends, then print its report
  get <job_id>          Show a job (its report once completed)
  list                  List recent jobs (--all: every page)
  cancel <job_id>       Cancel a job
  delete <job_id>       Delete a job (cancelling it first if it runs)

Options:
  --wait                submit: follow the job live and print its report
  --timeout <seconds>   submit --wait, watch: give up after this long (default: no limit)
  --depth <d>           quick | standard | deep (default standard)
  --source <s>          corpus | urls | web (repeatable; default corpus, plus urls with --read)
  --read <url>          a page to read (repeatable, up to 20)
  --max-sources <n>     1-50
  --format <f>          markdown | json (report format)
  --status <s>          list: only jobs with this status
  --limit <n>           list: jobs per page (1-100)
  --all                 list: follow every page
  --json                machine-readable output (the JSON record)
  --url <url>           API base URL (env DEEP_RESEARCH_URL, default http://localhost:3000;
                        host:port means http://host:port)
  --key <key>           API key (env DEEP_RESEARCH_API_KEY)
  -v, --version         the CLI's version
  -h, --help            this help

While waiting, a lost connection (a server restart, a redeploy) is retried with backoff and
followed from where it stopped; only --timeout or Ctrl-C end the wait early.

Exit codes:
  0    done (the job completed)
  1    the job failed or was cancelled
  2    usage error
  3    API or network error (unreachable, 401, 404, 429...)
  4    timed out (--timeout)
  130  interrupted (Ctrl-C while waiting cancels the job first)`

const HINT = 'Run \'deep-research --help\' for usage.'

/** The CLI, without process concerns: parses `argv`, talks to the API, returns the exit code. */
export async function main (argv: string[], io: CliIo): Promise<number> {
  const context: ErrorContext = { baseUrl: '' }
  try {
    const { command, args, values } = parse(argv)
    if (values.help === true) {
      io.stdout.write(`${USAGE}\n`)
      return EXIT.ok
    }
    if (values.version === true) {
      io.stdout.write(`${version()}\n`)
      return EXIT.ok
    }
    if (command === undefined) {
      io.stderr.write(`${USAGE}\n`)
      return EXIT.usage
    }
    const baseUrl = normalizeUrl(values.url ?? io.env.DEEP_RESEARCH_URL ?? 'http://localhost:3000')
    const apiKey = values.key ?? io.env.DEEP_RESEARCH_API_KEY
    Object.assign(context, { baseUrl, keyGiven: apiKey !== undefined && apiKey !== '', jobId: ['watch', 'get', 'cancel', 'delete'].includes(command) ? args[0] : undefined })
    const client = new ResearchClient({ baseUrl, apiKey })
    switch (command) {
      case 'submit': return await submit(client, args, values, io)
      case 'watch': return await watch(client, one(args, 'watch <job_id>'), values, io)
      case 'get': return print(await client.get(one(args, 'get <job_id>')), values.json === true, io)
      case 'cancel': return print(await client.cancel(one(args, 'cancel <job_id>')), values.json === true, io)
      case 'delete': return await remove(client, one(args, 'delete <job_id>'), io)
      case 'list': return await list(client, values, io)
      default: throw new UsageError(`unknown command "${command}"`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`error: ${err.message}\n${HINT}\n`)
      return EXIT.usage
    }
    if (err instanceof WaitTimeoutError) {
      io.stderr.write(`error: ${err.message}\n`)
      return EXIT.timeout
    }
    io.stderr.write(`error: ${describeError(err, context)}\n`)
    return EXIT.api
  }
}

function version (): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
}

type Values = ReturnType<typeof parse>['values']

function parse (argv: string[]): { command: string | undefined, args: string[], values: ReturnType<typeof parseOptions>['values'] } {
  let parsed
  try {
    parsed = parseOptions(argv)
  } catch (err) {
    throw usageFromParseError(err as Error)
  }
  return { command: parsed.positionals[0], args: parsed.positionals.slice(1), values: parsed.values }
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
      all: { type: 'boolean' },
      timeout: { type: 'string' },
      url: { type: 'string' },
      key: { type: 'string' },
      version: { type: 'boolean', short: 'v' },
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
  const timeoutMs = values.timeout === undefined ? null : integer(values.timeout, '--timeout') * 1000
  const job = await client.submit(body)
  if (values.wait !== true) {
    io.stdout.write(values.json === true ? `${JSON.stringify(job)}\n` : `${job.job_id}\n`)
    return EXIT.ok
  }
  io.stderr.write(`job ${job.job_id}\n`)
  return await waitAndPrint(client, job.job_id, timeoutMs, values, io)
}

async function watch (client: ResearchClient, jobId: string, values: Values, io: CliIo): Promise<number> {
  const timeoutMs = values.timeout === undefined ? null : integer(values.timeout, '--timeout') * 1000
  return await waitAndPrint(client, jobId, timeoutMs, values, io)
}

/** Follows the job with a progress bar and prints its outcome; Ctrl-C cancels it on the server. */
async function waitAndPrint (client: ResearchClient, jobId: string, timeoutMs: number | null, values: Values, io: CliIo): Promise<number> {
  const bar = new ProgressBar(io.stderr)
  const stop = new AbortController()
  const onInterrupt = (): void => stop.abort()
  io.interrupt?.addEventListener('abort', onInterrupt, { once: true })
  try {
    const final = await follow(client, jobId, {
      signal: stop.signal,
      timeoutMs,
      onProgress: (p) => bar.update(p),
      onReconnecting: (err, waitMs) => bar.note(`reconnecting in ${(waitMs / 1000).toFixed(1)} s: ${describeError(err, { baseUrl: client.baseUrl })}`)
    })
    bar.done()
    return print(final, values.json === true, io)
  } catch (err) {
    bar.done()
    if (!stop.signal.aborted) throw err
    // Ctrl-C: the job would go on without anyone waiting for it; ask the server to stop it.
    try {
      await client.cancel(jobId)
      io.stderr.write(`interrupted: cancelled job ${jobId}\n`)
    } catch (cancelErr) {
      io.stderr.write(`interrupted: could not cancel job ${jobId}: ${(cancelErr as Error).message}\n`)
    }
    return EXIT.interrupted
  } finally {
    io.interrupt?.removeEventListener('abort', onInterrupt)
  }
}

async function remove (client: ResearchClient, jobId: string, io: CliIo): Promise<number> {
  await client.delete(jobId)
  io.stdout.write(`deleted ${jobId}\n`)
  return EXIT.ok
}

async function list (client: ResearchClient, values: Values, io: CliIo): Promise<number> {
  const query: Parameters<ResearchClient['list']>[0] = {}
  if (values.status !== undefined) query.status = oneOf(values.status, ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const, '--status')
  if (values.limit !== undefined) query.limit = integer(values.limit, '--limit')
  let shown = 0
  for (;;) {
    const page = await client.list(query)
    if (values.json === true) io.stdout.write(`${JSON.stringify(page)}\n`)
    else for (const job of page.jobs) io.stdout.write(`${job.job_id}  ${job.status.padEnd(10)} ${String(job.progress).padStart(3)}%  ${job.query.slice(0, 60)}\n`)
    shown += page.jobs.length
    if (values.all !== true || page.next_cursor === null) break
    query.cursor = page.next_cursor
  }
  if (shown === 0 && values.json !== true) io.stderr.write('no jobs\n')
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
