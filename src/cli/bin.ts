#!/usr/bin/env node
// The `deep-research` command: process concerns only (arguments, Ctrl-C, exit code).
import { main } from './main.js'

const interrupt = new AbortController()
let interrupted = 0
process.on('SIGINT', () => {
  // The first Ctrl-C cancels the job being waited for; a second one leaves at once.
  if (++interrupted > 1) process.exit(130)
  interrupt.abort()
})
const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, interrupt: interrupt.signal })
process.exitCode = code
