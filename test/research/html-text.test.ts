// A page's text blocks, as extractHtml reads them from Readability's article: each block once, in
// the page's order, a block that holds other blocks read through them, and none of the article's
// text lost between blocks.
import t from 'tap'
import { extractHtml } from '../../src/research/reader/html.js'

const PAGE_URL = 'https://example.org/notes/retries.html'

/** Long enough that Readability takes it as an article (charThreshold 100, paragraphs of 25+ characters). */
const filler = 'Retries spread over time keep a recovering service from being flooded again by its own clients.'

const nested = '<ul><li><p>First point of the list, in a paragraph of its own.</p><p>Second paragraph of the same list item.</p></li>' +
  '<li>A plain list item after it.</li></ul>' +
  '<blockquote><div><p>A quoted paragraph two levels down.</p></div></blockquote>' +
  '<h3>A heading after the quote</h3><p>The last paragraph.</p>'

const expected = [
  'First point of the list, in a paragraph of its own.',
  'Second paragraph of the same list item.',
  'A plain list item after it.',
  'A quoted paragraph two levels down.',
  '### A heading after the quote',
  'The last paragraph.'
]

/** The text blocks after the title, and after any filler paragraphs. */
function blocks (html: string): string[] {
  const { text } = extractHtml(html, PAGE_URL)
  return text.split('\n\n').slice(1).filter((block) => block !== filler)
}

t.test('an article\'s nested blocks are read once each, in order, through the blocks they hold', async (t) => {
  const html = `<html><head><title>Retry notes</title></head><body><nav><a href="/">Home</a></nav><article><h1>Retry notes</h1>
    <p>${filler}</p><p>${filler}</p>${nested}<p>${filler}</p></article><footer>Footer text</footer></body></html>`
  const read = blocks(html)
  t.same(read.filter((block) => !block.startsWith('## Retry notes')), expected)
  t.notOk(read.some((block) => block.includes('Footer text')), 'the footer is not the article\'s')
})

t.test('sibling blocks are each read; only a block holding another is passed over', async (t) => {
  const html = '<html><body><div><p>One.</p></div><div><p>Two.</p><ul><li>Three.</li></ul></div><table><tr><td>Four.</td><td><p>Five.</p></td></tr></table>' +
    '<blockquote><section><p>Six, two levels down.</p></section></blockquote><p>Seven.</p></body></html>'
  t.same(blocks(html), ['One.', 'Two.', 'Three.', 'Four.', 'Five.', 'Six, two levels down.', 'Seven.'])
})

t.test('text Readability wraps in a paragraph with the section that holds it is read (parsing the article\'s HTML again lost it)', async (t) => {
  const html = `<html><head><title>Payments</title></head><body><article><h1>Payments</h1><p>${filler}</p><p>${filler}</p>` +
    '<div><section>Retries must be idempotent, or a retried payment charges twice.</section></div>' +
    `<div><details><summary>Why?</summary> Because the first attempt may have landed.</details></div><p>${filler}</p></article></body></html>`
  t.same(blocks(html), ['Retries must be idempotent, or a retried payment charges twice.', 'Why? Because the first attempt may have landed.'])
})
