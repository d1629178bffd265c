/**
 * The README's exit-code table is the code's: every ExitCode name with its number appears in it, and it lists
 * no code or name that src/lib/errors.ts does not have. Renumbering a code, or adding one without documenting
 * it, fails here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ExitCode, FlytrapError } from '../../src/lib/errors.js'

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

function documented(): Map<string, number> {
  const section = README.slice(README.indexOf('## Exit codes'))
  const body = section.slice(0, section.indexOf('\n## ', 5))
  const rows = new Map<string, number>()
  for (const m of body.matchAll(/^\| (\d+) \| `(\w+)` \|/gm)) rows.set(m[2]!, Number(m[1]))
  return rows
}

test('the README exit-code table matches ExitCode exactly', () => {
  const rows = documented()
  assert.ok(rows.size > 0, 'no exit-code table found in README.md')
  assert.deepEqual(Object.fromEntries([...rows].sort()), Object.fromEntries(Object.entries(ExitCode).sort()))
})

test('a FlytrapError carries the documented number and its FLYTRAP_<NAME> code', () => {
  for (const [name, exit] of documented()) {
    const err = new FlytrapError('x', { exit: name as keyof typeof ExitCode })
    assert.equal(err.exit, exit, name)
    assert.equal(err.code, `FLYTRAP_${name.toUpperCase()}`)
  }
})
