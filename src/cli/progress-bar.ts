import type { JobProgress } from '../client/index.js'

export interface Output { write (text: string): unknown, isTTY?: boolean, columns?: number }

/** A one-line bar redrawn in place on a terminal; a line per change otherwise. */
export class ProgressBar {
  #last = ''
  #drawn = false
  readonly out: Output
  constructor (out: Output) { this.out = out }

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

  /** A line of its own below the bar (reconnecting...), the bar redrawn at the next update. */
  note (text: string): void {
    this.done()
    this.out.write(`${text}\n`)
    this.#last = ''
  }

  done (): void {
    if (this.#drawn) this.out.write('\n')
    this.#drawn = false
  }
}
