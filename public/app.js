// The jobs page: lists jobs, starts new ones, follows each unfinished job's event stream
// (fetch + a small text/event-stream reader, so an API key can be sent as a header) and renders
// finished reports from their structured parts. Everything user-supplied goes in as text.
const FINAL = new Set(['completed', 'failed', 'cancelled'])
const jobsList = document.getElementById('jobs')
const keyInput = document.getElementById('api-key')
const watching = new Map()

keyInput.value = localStorage.getItem('deep-research-key') ?? ''
keyInput.addEventListener('change', () => { localStorage.setItem('deep-research-key', keyInput.value); void refresh() })

function headers (extra = {}) {
  return keyInput.value === '' ? extra : { ...extra, authorization: `Bearer ${keyInput.value}` }
}

async function api (path, init = {}) {
  const response = await fetch(path, { ...init, headers: headers(init.headers) })
  const body = await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`)
  return body
}

function element (tag, props = {}, ...children) {
  const node = document.createElement(tag)
  Object.assign(node, props)
  for (const child of children) if (child !== null && child !== undefined) node.append(child)
  return node
}

function rowFor (job) {
  let row = document.getElementById(`job-${job.job_id}`)
  if (row === null) {
    const fill = element('div')
    row = element('li', { id: `job-${job.job_id}`, className: 'job' },
      element('div', { className: 'meta' }, element('span', { className: 'status' }), element('span', { className: 'id', textContent: job.job_id })),
      element('p', { className: 'query', textContent: job.query }),
      element('div', { className: 'bar', role: 'progressbar' }, fill),
      element('p', { className: 'step' }),
      element('div', { className: 'report' }))
    row.querySelector('.bar').setAttribute('aria-valuemin', '0')
    row.querySelector('.bar').setAttribute('aria-valuemax', '100')
    jobsList.prepend(row)
  }
  return row
}

function show (job) {
  const row = rowFor(job)
  row.dataset.status = job.status
  row.querySelector('.status').textContent = `${job.status} · ${job.progress}%`
  row.querySelector('.bar').setAttribute('aria-valuenow', String(job.progress))
  row.querySelector('.bar > div').style.width = `${job.progress}%`
  row.querySelector('.step').textContent = job.error ? `${job.current_step}: ${job.error}` : job.current_step
  document.getElementById('no-jobs').hidden = true
  if (FINAL.has(job.status)) watching.delete(job.job_id)
  else if (!watching.has(job.job_id)) void watch(job.job_id)
}

function renderReport (job) {
  const target = rowFor(job).querySelector('.report')
  if (job.status !== 'completed' || job.result === null || target.childElementCount > 0) return
  const report = job.result
  target.append(element('h3', { className: 'report-title', textContent: report.title }), element('p', { className: 'summary', textContent: report.summary }))
  for (const section of report.sections) target.append(element('h4', { textContent: section.heading }), element('p', { textContent: section.body }))
  const sources = element('ol', { className: 'sources' })
  for (const source of report.sources) sources.append(element('li', { id: `source-${job.job_id}-${source.id}` }, element('strong', { textContent: source.title }), ` (${source.path_or_url})`))
  if (report.sources.length > 0) target.append(element('h4', { textContent: 'Sources' }), sources)
}

async function watch (jobId) {
  const controller = new AbortController()
  watching.set(jobId, controller)
  let lastEventId = null
  for (let tries = 0; tries < 5 && watching.has(jobId); tries++) {
    try {
      const response = await fetch(`/v1/jobs/${jobId}/events`, { headers: headers(lastEventId === null ? {} : { 'last-event-id': lastEventId }), signal: controller.signal })
      // 204: the stream is over (resumed after its final event): show the final record.
      if (response.status === 204) {
        renderReport(await api(`/v1/jobs/${jobId}`))
        return
      }
      if (!response.ok) break
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const fields = {}
          for (const line of block.split('\n')) {
            const colon = line.indexOf(':')
            if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart()
          }
          if (fields.data === undefined) continue
          if (fields.id !== undefined) lastEventId = fields.id
          const state = JSON.parse(fields.data)
          const row = rowFor({ job_id: jobId, query: '' })
          show({ ...state, query: row.querySelector('.query').textContent })
          if (FINAL.has(state.status)) {
            renderReport(await api(`/v1/jobs/${jobId}`))
            return
          }
        }
      }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500 * (tries + 1)))
    }
  }
}

async function refresh () {
  try {
    const page = await api('/v1/jobs?limit=20')
    document.getElementById('form-error').hidden = true
    document.getElementById('no-jobs').hidden = page.jobs.length > 0
    for (const job of [...page.jobs].reverse()) {
      show(job)
      if (job.status === 'completed') renderReport(await api(`/v1/jobs/${job.job_id}`))
    }
  } catch (err) {
    document.getElementById('form-error').hidden = false
    document.getElementById('form-error').textContent = `Could not list jobs: ${err.message}`
  }
}

document.getElementById('submit-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const error = document.getElementById('form-error')
  error.hidden = true
  try {
    const job = await api('/v1/research', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: document.getElementById('query').value, depth: document.getElementById('depth').value })
    })
    show(job)
  } catch (err) {
    error.hidden = false
    error.textContent = err.message
  }
})

void refresh()
