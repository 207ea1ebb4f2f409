import { Type, type Static } from 'typebox'
import { JobStatus } from './job.js'

export const CreateResearchBody = Type.Object({
  query: Type.String({
    minLength: 1,
    maxLength: 2000,
    pattern: '\\S',
    description: 'The research question: 1-2000 characters, not blank. Surrounding whitespace is trimmed.'
  }),
  depth: Type.Optional(Type.Enum(['quick', 'standard', 'deep'], {
    default: 'standard',
    description: 'quick = 1 retrieval pass, standard = 3, deep = 5.'
  }))
}, { additionalProperties: false, title: 'CreateResearchBody' })
export type CreateResearchInput = Static<typeof CreateResearchBody>

export const JobIdParams = Type.Object({
  job_id: Type.String({ format: 'uuid', description: 'The job id returned on creation' })
})

export const ListJobsQuery = Type.Object({
  status: Type.Optional(JobStatus),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Jobs per page, 1-100' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' }))
}, { additionalProperties: false })

