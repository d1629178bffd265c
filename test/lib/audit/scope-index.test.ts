import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { concat, keccak256, toBeHex, toUtf8Bytes, ZeroHash } from 'ethers'
import type { JournalEntry, JournalRecord } from '../../../src/lib/audit/entry.js'
import { merkleRoot, nodeHash } from '../../../src/lib/audit/merkle.js'
import { topicMatches, validateTopicFilter } from '../../../src/lib/policy/filter.js'
import {
  absenceProof,
  buildScopeIndex,
  checkIndex,
  indexLeaf,
  inScope,
  keyHash,
  keysToOpen,
  membershipProof,
  scopeKeys,
  scrubRows,
  seqsDigest,
  topicsOverlap,
  verifyAbsence,
  verifyMembership,
  type IndexRow,
} from '../../../src/lib/audit/scope-index.js'

const A = '0x00000000000000000000000000000000000000AA'
const a = A.toLowerCase()
const B = '0x00000000000000000000000000000000000000bb'

function rec(seq: number, fields: Partial<JournalEntry>): JournalRecord {
  const entry = { seq, t: seq, kind: 'publish', outcome: 'allow', reason: 'ok', ...fields } as JournalEntry
  return { redacted: false, seq, t: seq, entry, salt: ZeroHash, leaf: ZeroHash, prev: ZeroHash }
}
function redactedRec(seq: number): JournalRecord {
  return { redacted: true, seq, t: seq, leaf: ZeroHash, prev: ZeroHash, redactedAt: 1, erasure: 99 }
}

/** The spec's hashes written independently with ethers' concat. */
const specKeyHash = (k: string) => keccak256(concat(['0x03', toUtf8Bytes(k)]))
const specDigest = (s: number[]) => keccak256(concat(s.map((x) => toBeHex(x, 8))))
const specLeaf = (k: string, s: number[]) => keccak256(concat(['0x02', specKeyHash(k), specDigest(s)]))

const sample = [rec(1, { kind: 'connect', address: A }), rec(2, { address: a, topic: 'a/b' }), rec(3, { kind: 'subscribe', outcome: 'deny', address: B, topic: 'a/+' })]

describe('scope keys', () => {
  test('the spec examples', () => {
    assert.deepEqual(scopeKeys({ address: A }), [`client:${a}`])
    assert.deepEqual(scopeKeys({ topic: 'a/b/c' }), ['topic:a/b/c', 'under:a/', 'under:a/b/'])
    assert.deepEqual(scopeKeys({ topic: 'a/+/c' }), ['topic:a/+/c', 'under:a/', 'wild:a/'])
    assert.deepEqual(scopeKeys({ topic: 'a/b/#' }), ['topic:a/b/#', 'under:a/', 'under:a/b/', 'wild:a/b/'])
    assert.deepEqual(scopeKeys({ topic: '#' }), ['topic:#', 'wild:'])
    assert.deepEqual(scopeKeys({ topic: '+/x' }), ['topic:+/x', 'wild:'])
    assert.deepEqual(scopeKeys({ topic: 'a' }), ['topic:a'])
    assert.deepEqual(scopeKeys({ address: B, topic: 'x/y' }), [`client:${B}`, 'topic:x/y', 'under:x/'])
    assert.deepEqual(scopeKeys({}), [])
  })
})

describe('hashes', () => {
  test('fixed vectors', () => {
    assert.equal(keyHash('topic:a/b'), '0x72def78639c9a1fba7019283adbd37abfda78c44fd8ecf6a792c57d27db3cd7f')
    assert.equal(seqsDigest([1, 2, 2 ** 40 + 3]), '0xb4239ad71a89c1010ce321548a376a9834f1005b4460ab58c07cca7479f9d34a')
    assert.equal(indexLeaf(`client:${a}`, [7]), '0x1652082697cae6dd21010d07fd8df7b56ed9899f9a77fb155bf216a4fc98ce93')
    assert.equal(buildScopeIndex(sample).root, '0x8832cd0d6bb52b4e7a89145124039d7ecb9a276dc7f372b7bc30b29f142ef24e')
  })
  test('match the spec written with concat', () => {
    fc.assert(
      fc.property(fc.string(), fc.uniqueArray(fc.nat({ max: 2 ** 48 }), { minLength: 1, maxLength: 20 }), (k, s) => {
        const seqs = s.sort((x, y) => x - y)
        assert.equal(keyHash(k), specKeyHash(k))
        assert.equal(seqsDigest(seqs), specDigest(seqs))
        assert.equal(indexLeaf(k, seqs), specLeaf(k, seqs))
      }),
    )
  })
  test('seqs must be non-empty and strictly ascending', () => {
    assert.throws(() => seqsDigest([]), RangeError)
    assert.throws(() => seqsDigest([2, 1]), RangeError)
    assert.throws(() => seqsDigest([1, 1]), RangeError)
    assert.throws(() => seqsDigest([1.5]), RangeError)
  })
  test('the root: leaves sorted by keyHash, the merkle.ts tree; empty = zero', () => {
    const ix = buildScopeIndex(sample)
    const keys = [`client:${a}`, `client:${B}`, 'topic:a/b', 'topic:a/+', 'under:a/', 'wild:a/']
    const seqs: Record<string, number[]> = { [`client:${a}`]: [1, 2], [`client:${B}`]: [3], 'topic:a/b': [2], 'topic:a/+': [3], 'under:a/': [2, 3], 'wild:a/': [3] }
    const sorted = keys.sort((x, y) => (BigInt(specKeyHash(x)) < BigInt(specKeyHash(y)) ? -1 : 1))
    assert.deepEqual(
      ix.rows.map((r) => r.key),
      sorted,
    )
    assert.equal(ix.root, merkleRoot(sorted.map((k) => specLeaf(k, seqs[k]!))))
    assert.equal(buildScopeIndex([]).root, ZeroHash)
    assert.equal(buildScopeIndex([rec(1, { kind: 'ban' })]).root, ZeroHash)
    // 6 leaves: ((l0 l1)(l2 l3))(l4 l5)
    const l = sorted.map((k) => specLeaf(k, seqs[k]!))
    assert.equal(ix.root, nodeHash(nodeHash(nodeHash(l[0]!, l[1]!), nodeHash(l[2]!, l[3]!)), nodeHash(l[4]!, l[5]!)))
  })
  test('redacted records have no keys; an address is lower-cased', () => {
    const ix = buildScopeIndex([rec(1, { address: A }), redactedRec(2), rec(3, { address: a })])
    assert.deepEqual(ix.rows, [{ keyHash: specKeyHash(`client:${a}`), seqsDigest: specDigest([1, 3]), key: `client:${a}`, seqs: [1, 3] }])
  })
})

const arbTopic = fc.array(fc.constantFrom('a', 'b', 'c', '+', '#', '$s', ''), { minLength: 1, maxLength: 4 }).map((l) => l.join('/'))
const arbEntry = fc.record({ address: fc.option(fc.constantFrom(A, B, '0x00000000000000000000000000000000000000cc'), { nil: undefined }), topic: fc.option(arbTopic, { nil: undefined }) })
const arbRecords = fc.array(arbEntry, { maxLength: 30 }).map((es) => es.map((e, i) => rec(i + 1, e)))

describe('proofs', () => {
  test('every key of the index has a verifying membership proof, and no absence proof', () => {
    fc.assert(
      fc.property(arbRecords, (records) => {
        const ix = buildScopeIndex(records)
        for (const row of ix.rows) {
          const p = membershipProof(ix, row.key!)
          assert.ok(p !== null)
          assert.ok(verifyMembership(p, ix.root))
          assert.equal(absenceProof(ix, row.key!), null)
          // the listed seqs are exactly the records with that key
          assert.deepEqual(p.seqs, records.filter((r) => !r.redacted && scopeKeys(r.entry).includes(row.key!)).map((r) => r.seq))
        }
      }),
    )
  })
  test('a random absent key has a verifying absence proof', () => {
    fc.assert(
      fc.property(arbRecords, fc.string(), (records, k) => {
        const ix = buildScopeIndex(records)
        const key = `topic:${k}#absent`
        const p = absenceProof(ix, key)
        assert.ok(p !== null)
        assert.ok(verifyAbsence(p, ix.root))
        assert.equal(membershipProof(ix, key), null)
      }),
    )
  })
  test('a forged absence next to a present key fails', () => {
    fc.assert(
      fc.property(arbRecords.filter((r) => buildScopeIndex(r).rows.length > 0), fc.nat(), (records, pick) => {
        const ix = buildScopeIndex(records)
        const i = pick % ix.rows.length
        const present = ix.rows[i]!.key!
        // Forge: claim absence of a present key with its real neighbours (skipping itself) or the row itself.
        const forged = { ...absenceProof(buildScopeIndex(records.filter((r) => r.redacted || !scopeKeys(r.entry).includes(present))), present), key: present }
        assert.equal(verifyAbsence(forged, ix.root), false)
        const other = absenceProof(ix, `topic:${present}!`)!
        assert.equal(verifyAbsence({ ...other, key: present }, ix.root), false)
        const all = ix.rows.map((_, p) => p)
        for (const [l, r] of [[i - 1, i + 1], [i - 1, i], [i, i + 1]] as const) {
          const mk = (p: number) => {
            if (p < 0 || p >= ix.rows.length) return undefined
            const m = membershipProof(ix, ix.rows[p]!.key!)!
            return { keyHash: ix.rows[p]!.keyHash, seqsDigest: ix.rows[p]!.seqsDigest, index: m.index, count: m.count, siblings: m.siblings }
          }
          assert.equal(verifyAbsence({ key: present, left: mk(l), right: mk(r) }, ix.root), false)
        }
        assert.ok(all.length > 0)
        // An empty-index absence claim against a non-empty root fails too.
        assert.equal(verifyAbsence({ key: present }, ix.root), false)
      }),
    )
  })
  test('a seqs list with one seq dropped (or added) fails', () => {
    fc.assert(
      fc.property(arbRecords, fc.nat(), (records, pick) => {
        const ix = buildScopeIndex(records)
        for (const row of ix.rows) {
          const p = membershipProof(ix, row.key!)!
          if (p.seqs.length > 1) {
            const dropped = p.seqs.filter((_, j) => j !== pick % p.seqs.length)
            assert.equal(verifyMembership({ ...p, seqs: dropped }, ix.root), false)
          } else {
            assert.equal(verifyMembership({ ...p, seqs: [] }, ix.root), false)
          }
          assert.equal(verifyMembership({ ...p, seqs: [...p.seqs, p.seqs[p.seqs.length - 1]! + 1] }, ix.root), false)
        }
      }),
    )
  })
  test('the empty index proves every key absent and none present', () => {
    const ix = buildScopeIndex([])
    const p = absenceProof(ix, 'topic:x')!
    assert.deepEqual(p, { key: 'topic:x' })
    assert.ok(verifyAbsence(p, ZeroHash))
    assert.equal(verifyMembership({ key: 'topic:x', seqs: [1], index: 0, count: 1, siblings: [] }, ZeroHash), false)
  })
})

describe('which keys a bundle opens', () => {
  test('examples', () => {
    assert.deepEqual(keysToOpen({ client: A }), { keys: [`client:${a}`], wholePeriod: false })
    assert.deepEqual(keysToOpen({ topic: 'a/b' }), { keys: ['topic:a/b', 'wild:', 'wild:a/', 'wild:a/b/'], wholePeriod: false })
    assert.deepEqual(keysToOpen({ topic: 'a/+/c' }), { keys: ['topic:a/+/c', 'under:a/', 'wild:', 'wild:a/'], wholePeriod: false })
    assert.deepEqual(keysToOpen({ topic: 'a/#' }), { keys: ['topic:a/#', 'under:a/', 'topic:a', 'wild:', 'wild:a/'], wholePeriod: false })
    assert.equal(keysToOpen({ topic: '#' }).wholePeriod, true)
    assert.equal(keysToOpen({ topic: '+/x' }).wholePeriod, true)
    assert.throws(() => keysToOpen({}), RangeError)
  })
  test('every in-scope entry is listed under an opened key (completeness)', () => {
    fc.assert(
      fc.property(arbEntry, fc.record({ topic: fc.option(arbTopic, { nil: undefined }), client: fc.option(fc.constantFrom(A, B), { nil: undefined }) }), (entry, scope) => {
        fc.pre(scope.topic !== undefined || scope.client !== undefined)
        const open = keysToOpen(scope)
        if (inScope(entry, scope) && !open.wholePeriod) {
          const keys = scopeKeys(entry)
          assert.ok(open.keys.some((k) => keys.includes(k)), `${JSON.stringify(entry)} in ${JSON.stringify(scope)} but under none of ${open.keys}`)
        }
        if (open.wholePeriod && inScope(entry, scope)) assert.ok(entry.topic !== undefined)
      }),
      { numRuns: 3000 },
    )
  })
  test('topicsOverlap agrees with a brute force over topic names', () => {
    const names: string[] = []
    const lv = ['a', 'b', 'z', '$s', '']
    const grow = (prefix: string[]) => {
      if (prefix.length > 0) names.push(prefix.join('/'))
      if (prefix.length < 4) for (const l of lv) grow([...prefix, l])
    }
    grow([])
    const filters = fc.array(fc.constantFrom('a', 'b', '$s', '', '+', '#'), { minLength: 1, maxLength: 3 }).map((l) => l.join('/')).filter((f) => validateTopicFilter(f) === null)
    fc.assert(
      fc.property(filters, filters, (f, g) => {
        const brute = names.some((n) => topicMatches(f, n) && topicMatches(g, n))
        assert.equal(topicsOverlap(f, g), brute, `${f} vs ${g}`)
      }),
      { numRuns: 2000 },
    )
  })
  test('inScope: client and topic both hold when both are given', () => {
    assert.ok(inScope({ address: A, topic: 'a/b' }, { client: a }))
    assert.ok(inScope({ address: A, topic: 'a/b' }, { client: a, topic: 'a/+' }))
    assert.ok(!inScope({ address: A, topic: 'x/b' }, { client: a, topic: 'a/+' }))
    assert.ok(!inScope({ address: B, topic: 'a/b' }, { client: a, topic: 'a/+' }))
    assert.ok(inScope({ topic: 'a' }, { topic: 'a/#' }))
    assert.ok(!inScope({ topic: '$SYS/x' }, { topic: '#' }))
    assert.ok(!inScope({}, {}))
  })
})

describe('stored rows and erasure', () => {
  const records = [rec(1, { address: A, topic: `dev/${a}/t` }), rec(2, { address: B, topic: 'dev/x/t' }), rec(3, { address: A, topic: 'dev/x/t' }), rec(4, { address: B })]
  const ix = buildScopeIndex(records)
  const mentionsA = (k: string) => k.includes(a)
  test('scrubbing keeps the root and hides the subject', () => {
    const scrubbed = scrubRows(ix.rows, mentionsA)
    assert.ok(!JSON.stringify(scrubbed).includes(a))
    assert.equal(scrubbed.length, ix.rows.length)
    const after = records.map((r) => (r.redacted || r.entry.address !== A ? r : redactedRec(r.seq)))
    assert.deepEqual(checkIndex(after, scrubbed), { ok: true, root: ix.root })
  })
  test('without redactions the stored rows must equal the recomputed ones', () => {
    assert.deepEqual(checkIndex(records, ix.rows), { ok: true, root: ix.root })
    assert.deepEqual(checkIndex(records), { ok: true, root: ix.root })
    const edited: IndexRow[] = ix.rows.map((r) => ({ ...r }))
    const i = edited.findIndex((r) => r.key === `client:${B}`)
    edited[i] = { ...edited[i]!, seqs: [2], seqsDigest: seqsDigest([2]) }
    const bad = checkIndex(records, edited)
    assert.equal(bad.ok, false)
    assert.equal(!bad.ok && bad.keyHash, keyHash(`client:${B}`))
    assert.equal(checkIndex(records, ix.rows.slice(1)).ok, false)
    // Rows scrubbed before the lines were redacted (an interrupted forget) still commit to the same leaves.
    assert.deepEqual(checkIndex(records, scrubRows(ix.rows, mentionsA)), { ok: true, root: ix.root })
  })
  test('with redactions: a row dropping an unredacted seq, a missing row, or a scrubbed live key fails', () => {
    const after = records.map((r) => (r.redacted || r.entry.address !== A ? r : redactedRec(r.seq)))
    const scrubbed = scrubRows(ix.rows, mentionsA)
    const i = scrubbed.findIndex((r) => r.key === 'topic:dev/x/t')
    const dropped = scrubbed.map((r, j) => (j === i ? { ...r, seqs: [3], seqsDigest: seqsDigest([3]) } : r))
    assert.equal(checkIndex(after, dropped).ok, false)
    assert.equal(checkIndex(after, scrubbed.filter((_, j) => j !== i)).ok, false)
    assert.equal(checkIndex(after, scrubRows(ix.rows, (k) => k === `client:${B}`)).ok, false)
    assert.equal(checkIndex(after).ok, false)
    const unsorted = [...scrubbed].reverse()
    assert.equal(checkIndex(after, unsorted).ok, false)
    // a clear row whose key does not hash to its keyHash
    assert.equal(checkIndex(after, scrubbed.map((r, j) => (j === i ? { ...r, key: 'topic:dev/y/t' } : r))).ok, false)
  })
})
