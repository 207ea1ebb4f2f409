// Loaded into every test process (.taprc node-arg), and through NODE_OPTIONS into every Node
// process a test starts: Maglev off. Node can deadlock at exit while V8 compiles with Maglev on
// its worker threads (nodejs/node#54918, open): the exiting main thread joins a worker that
// waits for a garbage collection only the main thread could run. Seen here as a spawned server
// that never exited, and a test file held to tap's timeout. Tests are about this service, not
// V8's tiers; the service itself runs with Node's defaults.
import v8 from 'node:v8'

v8.setFlagsFromString('--no-maglev')

const self = `--import=${import.meta.url}`
const options = process.env.NODE_OPTIONS ?? ''
if (!options.includes(self)) process.env.NODE_OPTIONS = `${options} ${self}`.trim()
