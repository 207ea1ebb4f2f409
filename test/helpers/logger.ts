/** A logger for the runner and store that keeps each line as `level: message {fields}`, for assertions. */
export function recordingLogger (): { lines: string[], info: Log, warn: Log, error: Log } {
  const lines: string[] = []
  const log = (level: string): Log => (obj, msg) => { lines.push(`${level}: ${msg} ${JSON.stringify(obj)}`) }
  return { lines, info: log('info'), warn: log('warn'), error: log('error') }
}

type Log = (obj: object, msg: string) => void
