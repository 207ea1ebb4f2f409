// ESLint with neostandard (the style fastify/demo uses), TypeScript included.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'src/client/generated/api-types.ts', 'node_modules/**', 'test-output/**'] }),
  {
    rules: {
      // `void promise` marks a promise left to run on purpose (a reply header, a background hand-over).
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
