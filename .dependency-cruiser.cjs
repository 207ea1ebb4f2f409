// Layer rules, checked by `npm run lint` (depcruise). Imports run downward only:
//   server -> app -> plugins, routes -> jobs -> runner, webhooks, research, store -> lifecycle -> schemas, config
// The core (store, runner, research, webhooks, jobs) never sees Fastify, so it can be tested, reused and
// replaced without the web layer. Type-only imports count: a type cycle is still a cycle to read.
const CORE = '^src/(store|runner|research|webhooks|jobs|metrics|net|auth)/'

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A cycle means two modules cannot be understood (or changed) one at a time.',
      from: {},
      to: { circular: true }
    },
    {
      name: 'core-without-web',
      severity: 'error',
      comment: 'The core is plain classes behind small interfaces: no Fastify, no plugins, no routes.',
      from: { path: CORE },
      to: { path: ['^src/(plugins|routes|app\\.ts|server\\.ts)', '^node_modules/(fastify|@fastify/|fastify-plugin)'] }
    },
    {
      name: 'research-stands-alone',
      severity: 'error',
      comment: 'An engine turns a question into a report; it knows nothing of jobs, stores, runners or webhooks.',
      from: { path: '^src/research/' },
      to: { path: '^src/(store|runner|jobs|webhooks)/' }
    },
    {
      name: 'store-below-jobs',
      severity: 'error',
      comment: 'Stores keep records; the rules for making and changing a job live above them.',
      from: { path: '^src/store/' },
      to: { path: '^src/(jobs|runner|webhooks|research)/' }
    },
    {
      name: 'runner-knows-no-webhooks',
      severity: 'error',
      comment: 'The runner and the webhook dispatcher are siblings: each sees the store, neither the other.',
      from: { path: '^src/(runner|webhooks)/' },
      // ...but a folder may import its own files ($1 is the importing folder).
      to: { path: '^src/(jobs|webhooks|runner)/', pathNot: '^src/$1/' }
    },
    {
      name: 'jobs-never-wake-the-runner',
      severity: 'error',
      comment: 'The job service writes; the store\'s notices of its writes wake the runner (one path for every replica\'s writes).',
      from: { path: '^src/jobs/' },
      to: { path: '^src/runner/' }
    },
    {
      name: 'lifecycle-is-pure',
      severity: 'error',
      comment: 'The job lifecycle is pure functions on records: runner, store and job service all use it, so it sees only the schemas.',
      from: { path: '^src/lifecycle\\.ts$' },
      to: { path: '^src/(?!schemas/)' }
    },
    {
      name: 'routes-do-not-reach-into-plugins',
      severity: 'error',
      comment: 'Routes use what plugins decorate the app with, not the plugins\' modules.',
      from: { path: '^src/routes/' },
      to: { path: '^src/plugins/' }
    },
    {
      name: 'routes-go-through-the-job-service',
      severity: 'error',
      comment: 'Routes speak HTTP; what they do with jobs (reads, watches, events) goes through the job service, never the store.',
      from: { path: '^src/routes/' },
      to: { path: '^src/store/' }
    },
    {
      name: 'client-stands-alone',
      severity: 'error',
      comment: 'The generated client and the CLI are published for other packages: they import nothing of the server.',
      from: { path: '^src/(client|cli)/' },
      to: { path: '^src/(?!client/|cli/)' }
    },
    {
      name: 'no-orphans',
      severity: 'error',
      comment: 'A module nothing imports is dead code (entry points excepted).',
      from: { orphan: true, pathNot: ['\\.d\\.ts$', '^src/(server|openapi|app)\\.ts$', '^src/cli/bin\\.ts$', '^src/client/index\\.ts$'] },
      to: {}
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: ['^src/', '^node_modules/'],
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] }
  }
}
