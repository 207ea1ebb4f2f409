/** Abort reasons the runner gives its engines' signals; each leads to a different final write. */
export class JobCancelledError extends Error {
  override name = 'JobCancelledError'
  constructor () { super('The job was cancelled') }
}

export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError'
  /** The deadline was the client's max_duration_s, not JOB_TIMEOUT_MS. */
  readonly clientBudget: boolean
  constructor (ms: number, clientBudget = false) {
    super(clientBudget ? `The job did not finish within its time budget (max_duration_s = ${ms / 1000})` : `The job did not finish within ${ms} ms`)
    this.clientBudget = clientBudget
  }
}

export class ShutdownError extends Error {
  override name = 'ShutdownError'
  constructor () { super('The process is shutting down; the job goes back to the queue') }
}

/** The lease was taken over or could not be renewed: another worker may own the job now. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError'
  constructor (why: string) { super(`Lost the job's lease: ${why}`) }
}
