/** Abort reasons the runner gives its engines' signals; each leads to a different final write. */
export class JobCancelledError extends Error {
  override name = 'JobCancelledError'
  constructor () { super('The job was cancelled') }
}

export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError'
  constructor (ms: number) { super(`The job did not finish within ${ms} ms`) }
}

export class ShutdownError extends Error {
  override name = 'ShutdownError'
  constructor () { super('The process is shutting down; the job goes back to the queue') }
}
