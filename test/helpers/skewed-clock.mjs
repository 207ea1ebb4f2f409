// Preload (`node --import`): this process's wall clock (Date) runs CLOCK_SKEW_MS ahead, as on a
// host whose clock is off, while its monotonic clock (performance.now, timers) is untouched.
const skew = Number(process.env.CLOCK_SKEW_MS ?? 0)
const RealDate = Date
class SkewedDate extends RealDate {
  constructor (...args) {
    if (args.length === 0) super(RealDate.now() + skew)
    else super(...args)
  }

  static now () {
    return RealDate.now() + skew
  }
}
globalThis.Date = SkewedDate
