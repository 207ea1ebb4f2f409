import type { Test } from 'tap'

/**
 * Names what keeps this test process alive when it does not exit within `afterMs` of its last
 * test: the file then hangs until tap's timeout, with nothing said about why. Seen rarely for
 * durability.test.ts in full local runs, never when run alone. The timer is unref'd, so it fires
 * only when something else holds the process open.
 */
export function reportOpenHandlesIfStuck (t: Test, afterMs = 10_000): void {
  t.teardown(() => {
    setTimeout(() => {
      const handles = (process as unknown as { _getActiveHandles: () => unknown[] })._getActiveHandles().map(describe)
      process.stderr.write(`still running ${afterMs} ms after the last test; open: ${JSON.stringify(process.getActiveResourcesInfo())}\n${handles.join('\n')}\n`)
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
