/**
 * Tables fitted to the terminal: narrowed columns wrap without losing a character, a table with too many
 * columns for the width becomes one field per line, and a table that fits is left as cli-table3 draws it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fitColumns, table, wrapText } from '../../../src/lib/cli/output.js'

// eslint-disable-next-line no-control-regex -- ANSI colour codes
const plain = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '')
const widest = (s: string) => Math.max(...plain(s).split('\n').map((l) => [...l].length))
const letters = (s: string) => plain(s).replace(/[\s│┌┐└┘├┤┬┴┼─]/g, '')

const HEAD = ['time', 'topic', 'detail']
const ROWS = [['2027-01-31T12:00:05Z', 'plant/valve', 'published on plant/valve (3 messages) from client valve-ctl at 203.0.113.9 under the grant of the owner']]

test('a table that fits is drawn at its natural width', () => {
  assert.equal(fitColumns(HEAD, ROWS, 500), null)
  assert.ok(widest(table(HEAD, ROWS, { width: 500 })) > 120)
})

test('at 80 columns the widest column wraps; times and names stay whole; no character is lost', () => {
  const out = table(HEAD, ROWS, { width: 80 })
  assert.ok(widest(out) <= 80, out)
  assert.match(out, /2027-01-31T12:00:05Z/)
  assert.match(out, /plant\/valve/)
  assert.equal(letters(out).length, letters(HEAD.join('') + ROWS[0]!.join('')).length, out)
  const widths = fitColumns(HEAD, ROWS, 80) as number[]
  assert.deepEqual(widths.slice(0, 2), [22, 13], 'the short columns keep their width')
})

test('more columns than the width can hold: one field per line, every value kept, nothing wider than the terminal', () => {
  const head = ['a-long-header-1', 'a-long-header-2', 'a-long-header-3', 'a-long-header-4', 'a-long-header-5', 'a-long-header-6']
  const rows = [head.map((_, i) => `value-${i}-${'x'.repeat(30)}`)]
  assert.equal(fitColumns(head, rows, 60), 'stack')
  const out = table(head, rows, { width: 60 })
  assert.ok(widest(out) <= 60, out)
  for (const h of head) assert.match(out, new RegExp(`^${h}`, 'm'))
  assert.equal(letters(out).replace(/^1\/1/, '').length, letters(head.join('') + rows[0]!.join('')).length)
})

test('wrapText cuts words longer than the line and keeps every character', () => {
  assert.deepEqual(wrapText('0x1234567890abcdef end', 8), ['0x123456', '7890abcd', 'ef end'])
  assert.deepEqual(wrapText('a b c', 3), ['a b', 'c'])
})
