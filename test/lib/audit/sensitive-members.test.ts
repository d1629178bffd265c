/**
 * The member records behind a committed sensitive report (src/lib/audit/sensitive-members.ts): the leaf and
 * salt encodings recomputed here byte by byte, the (role, address) order, the root by the journal's tree rule,
 * salts taken from the first journal entry of each record, and disclosure of one address's records with a
 * proof that a tampered record, salt, position or root fails.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { keccak256, ZeroHash } from 'ethers'
import { merkleRoot } from '../../../src/lib/audit/merkle.js'
import { emptyTally, tallyEntry } from '../../../src/lib/audit/tally.js'
import { commitRecords, memberLeaf, memberSalt, membersRecords, recordProof, verifyRecord, type MemberRecord } from '../../../src/lib/audit/sensitive-members.js'

const h = (s: string) => keccak256(Buffer.from(s, 'utf8'))
const A = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'
const B = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc'
const C = '0x90f79bf6eb2c4f870365e785982e1f101e93b906'
const bytes = (hex: string) => Buffer.from(hex.slice(2), 'hex')

describe('sensitive members: encodings', () => {
  test('salt = keccak256(0x06 || entry salt || utf8(role)); leaf = keccak256(0x05 || salt || canonicalJSON(record))', () => {
    const entrySalt = h('entry salt')
    const salt = memberSalt(entrySalt, 'receiver')
    assert.equal(salt, keccak256(Buffer.concat([Buffer.from([6]), bytes(entrySalt), Buffer.from('receiver')])))
    assert.notEqual(salt, memberSalt(entrySalt, 'publisher'), 'the role is part of the salt')
    const r: MemberRecord = { address: A.toUpperCase().replace('0X', '0x'), role: 'receiver', count: 7, salt }
    const body = `{"address":"${A}","count":7,"role":"receiver"}`
    assert.equal(memberLeaf(r), keccak256(Buffer.concat([Buffer.from([5]), bytes(salt), Buffer.from(body)])), 'address lower-case, keys sorted')
    assert.throws(() => memberSalt('0x12', 'publisher'), TypeError)
  })

  test('records are ordered by (role, address) whatever the input order; counts per role; root by the tree rule', () => {
    const s = (i: number) => h(`s${i}`)
    const c = commitRecords([
      { address: C, role: 'receiver', count: 2, salt: s(1) },
      { address: B, role: 'publisher', count: 5, salt: s(2) },
      { address: A, role: 'receiver', count: 3, salt: s(3) },
      { address: A, role: 'publisher', count: 1, salt: s(4) },
    ])
    assert.deepEqual(c.records.map((r) => [r.role, r.address]), [['publisher', B], ['publisher', A], ['receiver', C], ['receiver', A]].sort((x, y) => (x[0]! + x[1]! < y[0]! + y[1]! ? -1 : 1)))
    assert.deepEqual([c.publishers, c.published, c.receivers, c.received], [2, 6, 2, 5])
    assert.equal(c.membersRoot, merkleRoot(c.records.map(memberLeaf)))
    assert.equal(commitRecords([]).membersRoot, ZeroHash)
    assert.throws(() => commitRecords([c.records[0]!, { ...c.records[0]!, count: 9 }]), /two records/)
  })

  test('from the journal: one record per (role, address) with the salt of its first entry, coalesced counts included', () => {
    const t = emptyTally()
    const e = (kind: 'publish' | 'deliver', address: string, count?: number) => ({ kind, outcome: 'allow' as const, topic: 'ward/vitals', address, sensitive: true as const, count })
    tallyEntry(t, e('deliver', B), h('first B'))
    tallyEntry(t, e('deliver', B, 4), h('second B'))
    tallyEntry(t, e('publish', A.toUpperCase().replace('0X', '0x')), h('first A'))
    tallyEntry(t, { ...e('publish', C), sensitive: undefined } as never, h('not sensitive'))
    const c = membersRecords(t.sensitive.get('ward/vitals')!)
    assert.deepEqual(
      c.records.map((r) => [r.role, r.address, r.count, r.salt]),
      [
        ['publisher', A, 1, memberSalt(h('first A'), 'publisher')],
        ['receiver', B, 5, memberSalt(h('first B'), 'receiver')],
      ],
    )
    const unsalted = emptyTally()
    tallyEntry(unsalted, e('deliver', B))
    assert.throws(() => membersRecords(unsalted.sensitive.get('ward/vitals')!), /without salts/)
  })
})

describe('sensitive members: disclosing one address', () => {
  const list: MemberRecord[] = [A, B, C].flatMap((a, i) => [
    { address: a, role: 'publisher' as const, count: i + 1, salt: h(`p${i}`) },
    { address: a, role: 'receiver' as const, count: 10 + i, salt: h(`r${i}`) },
  ])
  const c = commitRecords(list.filter((_, i) => i !== 3)) // 5 records: an odd tree
  const root = c.membersRoot

  test("an address's records and proofs verify against the root; an address without records has none", () => {
    const d = recordProof(c, A.toUpperCase().replace('0X', '0x'))
    assert.deepEqual(d.map((x) => x.record.role), ['publisher', 'receiver'])
    for (const x of d) assert.equal(verifyRecord(x, root), true)
    assert.equal(recordProof(c, B).length, 1, 'B published only')
    assert.deepEqual(recordProof(c, '0x' + '11'.repeat(20)), [])
  })

  test('a tampered count, address, role or salt, a moved position or another root fails', () => {
    const [d] = recordProof(c, C)
    assert.ok(d && verifyRecord(d, root))
    const bad = [
      { ...d, record: { ...d.record, count: d.record.count + 1 } },
      { ...d, record: { ...d.record, address: A } },
      { ...d, record: { ...d.record, role: 'receiver' as const } },
      { ...d, record: { ...d.record, salt: h('guess') } },
      { ...d, proof: { ...d.proof, index: (d.proof.index + 1) % d.proof.count } },
      { ...d, proof: { ...d.proof, siblings: d.proof.siblings.slice(1) } },
    ]
    for (const [i, x] of bad.entries()) assert.equal(verifyRecord(x, root), false, `case ${i}`)
    assert.equal(verifyRecord(d, h('another root')), false)
    assert.equal(verifyRecord(d, ZeroHash), false)
  })
})
