import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { buildApp } from './app.js'
import { defaultConfig } from './config.js'

export const OPENAPI_FILE = fileURLToPath(new URL('../openapi/openapi.json', import.meta.url))

/** The OpenAPI document as the routes' schemas describe it, serialized as it is committed. */
export async function generateOpenApi (): Promise<string> {
  const app = await buildApp(defaultConfig({ REDIS_URL: '', LOG_LEVEL: 'silent' }))
  try {
    await app.ready()
    return `${JSON.stringify(app.swagger(), null, 2)}\n`
  } finally {
    await app.close()
  }
}

/* c8 ignore start -- command-line entry (npm run openapi); the drift test calls generateOpenApi */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(OPENAPI_FILE, await generateOpenApi())
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`)
}
/* c8 ignore stop */
