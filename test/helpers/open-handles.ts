import { createHook } from 'node:async_hooks'
import type { Test } from 'tap'

/**
 * Names what keeps this test process alive when it does not exit within `afterMs` of its last
 * test: the file then hangs until tap's timeout, with nothing said about why. Seen rarely for
 * durability.test.ts in full runs, never when run alone; once (CI, 2026-12-06) what held it was a
 * timer, besides the pipe tap reads the output from. So every timer's creation is recorded, and
 * a stuck process prints where each timer still holding it was set. The report's own timer is
 * unref'd, so it fires only when something else holds the process open.
 */
export function reportOpenHandlesIfStuck (t: Test, afterMs = 10_000): void {
  const timers = new Map<number, { stack: string, timer: { hasRef?: () => boolean } }>()
  const hook = createHook({
    init (id, type, _trigger, resource) {
      if (type !== 'Timeout') return
      const limit = Error.stackTraceLimit
      Error.stackTraceLimit = 20
      timers.set(id, { stack: new Error('timer set').stack ?? '', timer: resource as { hasRef?: () => boolean } })
      Error.stackTraceLimit = limit
    },
    destroy (id) { timers.delete(id) }
  })
  hook.enable()
  t.teardown(() => {
    setTimeout(() => {
      const handles = (process as unknown as { _getActiveHandles: () => unknown[] })._getActiveHandles().map(describe)
      const holding = [...timers.values()].filter(({ timer }) => timer.hasRef?.() === true).map(({ stack }) => stack.split('\n').slice(5, 18).join('\n'))
      process.stderr.write(`still running ${afterMs} ms after the last test; open: ${JSON.stringify(process.getActiveResourcesInfo())}\n${handles.join('\n')}\n` +
        `timers holding the process, where each was set:\n${holding.join('\n--\n')}\n`)
      hook.disable()
    }, afterMs).unref()
  })
}

function describe (handle: unknown): string {
  const h = handle as Record<string, any>
  const kind = String(h?.constructor?.name)
  if (kind === 'Socket') return `Socket to ${String(h.remoteAddress)}:${String(h.remotePort)} from port ${String(h.localPort)}, destroyed ${String(h.destroyed)}`
  if (kind === 'Server') return `Server on ${JSON.stringify(h.address())}`
  return kind
}
