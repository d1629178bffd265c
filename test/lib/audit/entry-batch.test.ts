/**
 * The journal's batch helpers (entry.ts) against their one-entry definitions: saltedLeaves gives what
 * newSalt + entryLeaf would (fresh 32-byte salts, leaf over exactly that salt), and encodeRecord's line is
 * byte for byte the JSON of { ...entry, salt, leaf, prev } every stored segment was written as.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { hexlify, randomBytes } from 'ethers'
import { encodeRecord, entryLeaf, makeEntry, parseRecord, saltedLeaves, type EntryInput } from '../../../src/lib/audit/entry.js'

const inputs: EntryInput[] = [
  { kind: 'publish', outcome: 'allow', reason: 'ok', address: '0x' + '12'.repeat(20), clientId: 'c"1\\', ip: '10.0.0.1', topic: 'a/ü/€/\u2028', sensitive: true, count: 3 },
  { kind: 'connect', outcome: 'deny', reason: 'country', ip: '::1', country: 'DE', unverified: true },
  { kind: 'ban', outcome: 'deny', reason: 'ban-local', subject: '0x' + 'ab'.repeat(32), until: 1_800_000_000_000 },
  { kind: 'erasure', outcome: 'allow', reason: 'request', erasure: { at: 1, seqs: [1, 2], note: 'x\ny', nested: { b: 1, a: [true, null] } } },
  { kind: 'deliver', outcome: 'allow', reason: 'ok', topic: 't', since: 1_700_000_000_000, count: 9 },
]

describe('journal batch helpers', () => {
  test('saltedLeaves: one fresh salt per entry, and the leaf entryLeaf gives for it', () => {
    const entries = inputs.map((x, i) => makeEntry(i + 1, 1_700_000_000_000 + i, x))
    const out = saltedLeaves(entries)
    assert.equal(out.length, entries.length)
    for (const [i, { salt, leaf }] of out.entries()) {
      assert.match(salt, /^0x[0-9a-f]{64}$/)
      assert.equal(leaf, entryLeaf(salt, entries[i]!))
    }
    assert.equal(new Set(out.map((o) => o.salt)).size, out.length)
    assert.deepEqual(saltedLeaves([]), [])
  })

  test('encodeRecord writes the same line as JSON.stringify({ ...entry, salt, leaf, prev }), and it parses back', () => {
    for (const [i, x] of inputs.entries()) {
      const entry = makeEntry(i + 1, 1_700_000_000_000 + i, x)
      const [salt, leaf, prev] = [hexlify(randomBytes(32)), hexlify(randomBytes(32)), hexlify(randomBytes(32))]
      const line = encodeRecord({ redacted: false, seq: entry.seq, t: entry.t, entry, salt, leaf, prev })
      assert.equal(line, JSON.stringify({ ...entry, salt, leaf, prev }))
      const back = parseRecord(line)
      assert.ok(!back.redacted)
      assert.deepEqual(back.entry, entry)
      assert.equal(entryLeaf(back.salt, back.entry), entryLeaf(salt, entry))
    }
  })
})
