import { DEPTHS, type DepthName, type ResearchOptionsData, type StoredJob } from './job.js'
import type { CreateResearchInput } from './requests.js'

/** Pages fetched and sources cited when the client does not say, by depth. */
export const MAX_SOURCES_BY_DEPTH: Record<DepthName, number> = { quick: 4, standard: 8, deep: 12 }

/**
 * The options of a job that asked for nothing special, one frozen instance per depth: most jobs
 * share it instead of carrying their own copy (the in-memory store holds thousands of records).
 */
const DEFAULT_OPTIONS: Record<DepthName, ResearchOptionsData> = Object.fromEntries(DEPTHS.map((depth) => [
  depth,
  Object.freeze({ sources: Object.freeze(['corpus']), urls: Object.freeze([]), max_sources: MAX_SOURCES_BY_DEPTH[depth], max_duration_s: null, report_format: 'markdown' }) as unknown as ResearchOptionsData
])) as Record<DepthName, ResearchOptionsData>

/** The job with the shared default options when its options are the default ones (the same values). */
export function withSharedOptions (job: StoredJob): StoredJob {
  const shared = DEFAULT_OPTIONS[job.depth]
  const { options } = job
  if (options === shared) return job
  const same = options.max_sources === shared.max_sources && options.max_duration_s === shared.max_duration_s &&
    options.report_format === shared.report_format && options.cache !== false && options.urls.length === shared.urls.length &&
    options.sources.length === shared.sources.length && options.sources.every((source, i) => source === shared.sources[i])
  return same ? { ...job, options: shared } : job
}

/** A client's request options, out of the create body, with every default filled in. */
export function resolveOptions (body: Omit<CreateResearchInput, 'query' | 'webhook_url'>): ResearchOptionsData {
  const depth = body.depth ?? 'standard'
  if (body.sources === undefined && body.urls === undefined && body.max_sources === undefined && body.max_duration_s === undefined && body.report_format === undefined && body.cache !== false) {
    return DEFAULT_OPTIONS[depth]
  }
  const urls = body.urls ?? []
  return {
    sources: body.sources ?? (urls.length > 0 ? ['corpus', 'urls'] : ['corpus']),
    urls,
    max_sources: body.max_sources ?? MAX_SOURCES_BY_DEPTH[depth],
    max_duration_s: body.max_duration_s ?? null,
    report_format: body.report_format ?? 'markdown',
    // Only a job that opts out carries it: most records keep the shared default options.
    ...(body.cache === false ? { cache: false } : {})
  }
}

/** Why a set of options cannot run, or null when it can. */
export function optionsProblem (options: ResearchOptionsData): string | null {
  const wantsUrls = options.sources.includes('urls')
  if (wantsUrls && options.urls.length === 0) return 'sources includes "urls" but no urls were given'
  if (!wantsUrls && options.urls.length > 0) return 'urls were given but sources does not include "urls"'
  return null
}
