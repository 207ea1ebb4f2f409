import { Type, type Static, type TSchema } from 'typebox'

/**
 * `schema` or null, as one type list (`type: ['string', 'null']`, valid JSON Schema and OpenAPI
 * 3.1) rather than an `anyOf`. fast-json-stringify picks a type list's branch with a `typeof`
 * check; for an `anyOf` it builds an Ajv validator per branch, compiled on the route's first
 * answer (about 150 ms of CPU for a job record), and runs it on every answer.
 */
export function Nullable<T extends TSchema & { type: string }> (schema: T, options: { description?: string } = {}): ReturnType<typeof Type.Unsafe<Static<T> | null>> {
  return Type.Unsafe<Static<T> | null>({ ...schema, ...options, type: [schema.type, 'null'] })
}
