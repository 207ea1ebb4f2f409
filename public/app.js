// The jobs page: lists jobs (20 at a time, more on demand), starts new ones, follows each
// unfinished job's event stream (fetch + a small text/event-stream reader, so an API key can be
// sent as a header), and shows finished reports collapsed, one open at a time. Nothing from the
// API or the user is ever parsed as HTML: every node is built, and text goes in as text.
const FINAL = new Set(['completed', 'failed', 'cancelled'])
const PAGE_SIZE = 20
const jobsList = document.getElementById('jobs')
const keyInput = document.getElementById('api-key')
const moreButton = document.getElementById('load-more')
const watching = new Map()
let nextCursor = null

keyInput.value = localStorage.getItem('deep-research-key') ?? ''
keyInput.addEventListener('change', () => { localStorage.setItem('deep-research-key', keyInput.value); void refresh() })

function headers (extra = {}) {
  return keyInput.value === '' ? extra : { ...extra, authorization: `Bearer ${keyInput.value}` }
}

async function api (path, init = {}) {
  const response = await fetch(path, { ...init, headers: headers(init.headers) })
  const body = response.status === 204 ? {} : await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`)
  return body
}

function element (tag, props = {}, ...children) {
  const node = document.createElement(tag)
  Object.assign(node, props)
  for (const child of children) if (child !== null && child !== undefined) node.append(child)
  return node
}

/** "3 min ago", with the exact time on hover. */
function timeElement (label, iso) {
  const node = element('time', { dateTime: iso, title: new Date(iso).toLocaleString() })
  node.textContent = `${label} ${relative(iso)}`
  return node
}

function relative (iso) {
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000)
  if (seconds < 45) return 'just now'
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`
  return new Date(iso).toLocaleDateString()
}

/** Report text with `code` spans and [n] citations as elements: links to the numbered source, which lists the passage quoted. */
function richText (text, jobId) {
  const fragment = document.createDocumentFragment()
  for (const part of text.split(/(`[^`\n]+`|\[\d+\])/)) {
    if (part === '') continue
    const citation = /^\[(\d+)\]$/.exec(part)
    if (citation !== null) fragment.append(element('a', { href: `#source-${jobId}-${citation[1]}`, className: 'cite', textContent: part }))
    else if (/^`[^`]+`$/.test(part)) fragment.append(element('code', { textContent: part.slice(1, -1) }))
    else fragment.append(document.createTextNode(part))
  }
  return fragment
}

function rowFor (job) {
  let row = document.getElementById(`job-${job.job_id}`)
  if (row === null) {
    const fill = element('div')
    row = element('li', { id: `job-${job.job_id}`, className: 'job' },
      element('div', { className: 'meta' }, element('span', { className: 'status' }), element('span', { className: 'times' }), element('span', { className: 'id', textContent: job.job_id })),
      element('p', { className: 'query', textContent: job.query }),
      element('div', { className: 'bar', role: 'progressbar', ariaLabel: `Progress of "${job.query}"` }, fill),
      element('p', { className: 'step' }),
      element('div', { className: 'actions' },
        element('button', { type: 'button', className: 'cancel', textContent: 'Cancel', onclick: () => act(job, 'cancel') }),
        element('button', { type: 'button', className: 'delete', textContent: 'Delete', onclick: () => act(job, 'delete') })),
      element('div', { className: 'report' }))
    row.querySelector('.bar').setAttribute('aria-valuemin', '0')
    row.querySelector('.bar').setAttribute('aria-valuemax', '100')
  }
  return row
}

/** Cancel or delete, after the user confirms. */
async function act (job, action) {
  const question = action === 'cancel' ? `Cancel the job "${job.query}"?` : `Delete the job "${job.query}"? Its report is gone for good.`
  if (!window.confirm(question)) return
  try {
    if (action === 'cancel') show(await api(`/v1/jobs/${job.job_id}/cancel`, { method: 'POST' }))
    else {
      await api(`/v1/jobs/${job.job_id}`, { method: 'DELETE' })
      watching.get(job.job_id)?.abort()
      watching.delete(job.job_id)
      document.getElementById(`job-${job.job_id}`)?.remove()
      document.getElementById('no-jobs').hidden = jobsList.childElementCount > 0
    }
  } catch (err) {
    showError(`Could not ${action} the job: ${err.message}`)
  }
}

/** Shows a job's state; `place` puts a new row first (a new job) or last (an older page). */
function show (job, place = 'first') {
  const row = rowFor(job)
  if (row.parentElement === null) {
    if (place === 'first') jobsList.prepend(row)
    else jobsList.append(row)
  }
  row.dataset.status = job.status
  row.querySelector('.status').textContent = `${job.status} · ${job.progress}%`
  row.querySelector('.bar').setAttribute('aria-valuenow', String(job.progress))
  row.querySelector('.bar > div').style.width = `${job.progress}%`
  row.querySelector('.step').textContent = job.status === 'failed' && job.error ? `${job.current_step}. Reason: ${job.error}` : job.current_step
  row.querySelector('.cancel').hidden = FINAL.has(job.status)
  if (job.created_at !== undefined) {
    const times = row.querySelector('.times')
    times.replaceChildren(timeElement('created', job.created_at))
    if (job.completed_at) times.append(' · ', timeElement('finished', job.completed_at))
  }
  document.getElementById('no-jobs').hidden = true
  if (FINAL.has(job.status)) watching.delete(job.job_id)
  else if (!watching.has(job.job_id)) void watch(job.job_id)
}

const ANSWER_LABELS = {
  answered: 'Answered from the sources',
  partial: 'Partly answered: the sources do not cover every part',
  not_found: 'Not found in the sources searched'
}

/** The report, collapsed: its title opens it, and opening one closes the others. */
function renderReport (job) {
  const target = rowFor(job).querySelector('.report')
  if (job.status !== 'completed' || job.result === null || target.childElementCount > 0) return
  const report = job.result
  const details = element('details', { className: 'report-details' }, element('summary', { className: 'report-title', textContent: report.title }))
  details.addEventListener('toggle', () => {
    if (!details.open) return
    for (const other of document.querySelectorAll('details.report-details[open]')) if (other !== details) other.open = false
  })
  if (report.answer) details.append(element('p', { className: `answer answer-${report.answer.status}`, textContent: ANSWER_LABELS[report.answer.status] ?? report.answer.status }))
  details.append(element('p', { className: 'summary' }, richText(report.summary, job.job_id)))
  for (const section of report.sections) details.append(element('h4', { textContent: section.heading }), element('p', {}, richText(section.body, job.job_id)))
  const sources = element('ol', { className: 'sources' })
  for (const source of report.sources) sources.append(sourceItem(job.job_id, source))
  if (report.sources.length > 0) details.append(element('h4', { textContent: 'Sources' }), sources)
  if (report.unsupported_claims > 0) {
    const dropped = element('ul', {}, ...(report.dropped_claims ?? []).map((claim) => element('li', { textContent: `${claim.sentence} (${claim.reason})` })))
    details.append(element('details', { className: 'dropped' }, element('summary', { textContent: `${report.unsupported_claims} sentence(s) the model wrote were dropped: their sources did not support them` }), dropped))
  }
  if (report.searched) {
    const rounds = `${report.searched.rounds} ${report.searched.rounds === 1 ? 'round' : 'rounds'}`
    details.append(element('p', { className: 'searched', textContent: `Searched ${report.searched.documents} documents in ${rounds}: ${report.searched.queries.map((q) => `"${q}"`).join(', ')}` }))
  }
  target.append(details)
}

/** A numbered source: its title, a way to open it, and the passages the report quotes from it. */
function sourceItem (jobId, source) {
  const link = source.link ?? source.path_or_url
  // A page opens where it is; a document of this service's (a path on this origin) opens in the page,
  // fetched with the API key; a report from before sources had links shows where its source was.
  const open = /^https?:\/\//.test(link)
    ? element('a', { href: link, rel: 'noopener noreferrer', target: '_blank', textContent: source.path_or_url })
    : /^\/(?!\/)/.test(link)
      ? element('a', { href: link, className: 'open-source', textContent: source.path_or_url, onclick: (event) => { event.preventDefault(); void openDocument(source) } })
      : element('code', { textContent: source.path_or_url })
  const quotes = element('ul', { className: 'quotes' })
  for (const quote of source.quotes ?? []) quotes.append(element('li', {}, element('blockquote', {}, richText(quote.text, jobId)), element('span', { className: 'heading', textContent: quote.heading })))
  return element('li', { id: `source-${jobId}-${source.id}` }, element('strong', { textContent: source.title }), ' ', open, (source.quotes ?? []).length > 0 ? quotes : null)
}

/** Opens a corpus document in a dialog (fetched with the API key), the passages the report quotes marked. */
async function openDocument (source) {
  const dialog = document.getElementById('document-dialog')
  const body = dialog.querySelector('.document-text')
  dialog.querySelector('.document-title').textContent = source.title
  body.replaceChildren()
  try {
    const response = await fetch(source.link, { headers: headers({ accept: 'text/plain' }) })
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).message ?? `HTTP ${response.status}`)
    body.append(...marked(await response.text(), (source.quotes ?? []).map((q) => q.text)))
  } catch (err) {
    body.append(element('p', { className: 'error', textContent: `Could not open ${source.path_or_url}: ${err.message}` }))
  }
  dialog.showModal()
  body.querySelector('mark')?.scrollIntoView({ block: 'center' })
}

/** A text as nodes, the quoted sentences as <mark> (found in the text with its line breaks folded). */
function marked (text, quotes) {
  const spans = []
  for (const quote of quotes) {
    const pattern = new RegExp(quote.split(/\s+/).map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\s+'))
    const found = pattern.exec(text)
    if (found !== null) spans.push([found.index, found.index + found[0].length])
  }
  spans.sort((a, b) => a[0] - b[0])
  const nodes = []
  let at = 0
  for (const [start, end] of spans) {
    if (start < at) continue
    nodes.push(document.createTextNode(text.slice(at, start)), element('mark', { textContent: text.slice(start, end) }))
    at = end
  }
  nodes.push(document.createTextNode(text.slice(at)))
  return nodes
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
        finish(await api(`/v1/jobs/${jobId}`))
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
          const row = document.getElementById(`job-${jobId}`)
          if (row === null) return
          show({ ...state, query: row.querySelector('.query').textContent })
          if (FINAL.has(state.status)) {
            finish(await api(`/v1/jobs/${jobId}`))
            return
          }
        }
      }
    } catch {
      if (controller.signal.aborted) return
      await new Promise((resolve) => setTimeout(resolve, 500 * (tries + 1)))
    }
  }
}

function finish (job) {
  show(job)
  renderReport(job)
}

function showError (text) {
  const error = document.getElementById('form-error')
  error.hidden = false
  error.textContent = text
}

/** One page of jobs, newest first; `cursor` null: the first page (the list starts over). */
async function loadPage (cursor) {
  try {
    const page = await api(`/v1/jobs?limit=${PAGE_SIZE}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
    document.getElementById('form-error').hidden = true
    if (cursor === null) document.getElementById('no-jobs').hidden = page.jobs.length > 0
    for (const job of page.jobs) show(job, 'last')
    nextCursor = page.next_cursor
    moreButton.hidden = nextCursor === null
    // Lists carry no reports: fetch those of the finished jobs, side by side.
    await Promise.all(page.jobs.filter((job) => job.status === 'completed').map(async (job) => renderReport(await api(`/v1/jobs/${job.job_id}`))))
  } catch (err) {
    showError(`Could not list jobs: ${err.message}`)
  }
}

async function refresh () {
  for (const controller of watching.values()) controller.abort()
  watching.clear()
  jobsList.replaceChildren()
  await loadPage(null)
}

moreButton.addEventListener('click', () => { void loadPage(nextCursor) })
document.getElementById('close-document').addEventListener('click', () => document.getElementById('document-dialog').close())

document.getElementById('submit-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  document.getElementById('form-error').hidden = true
  const query = document.getElementById('query')
  try {
    const job = await api('/v1/research', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: query.value, depth: document.getElementById('depth').value })
    })
    query.value = ''
    show(job)
  } catch (err) {
    showError(err.message)
  }
})

void refresh()
