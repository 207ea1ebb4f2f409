// Tests run their TypeScript through Node's own type stripping (.taprc `type-strip-only`): no
// compiler to load in each of the ~75 test processes. The sources import each other as `./x.js`,
// the name the built file has under dist/; here, before any build, the file is `./x.ts`.
import { existsSync } from 'node:fs'
import { registerHooks } from 'node:module'

// The parent's path, not its URL: tap's mockImport loads a module with a query string after `.ts`.
const fromTypeScript = (parentURL) => parentURL !== undefined && new URL(parentURL).pathname.endsWith('.ts')

registerHooks({
  resolve (specifier, context, nextResolve) {
    if (specifier.startsWith('.') && specifier.endsWith('.js') && fromTypeScript(context.parentURL)) {
      const source = new URL(specifier.slice(0, -3) + '.ts', context.parentURL)
      if (existsSync(source)) return nextResolve(source.href, context)
    }
    return nextResolve(specifier, context)
  }
})
