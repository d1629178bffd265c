import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { concat, hexlify, keccak256, randomBytes, ZeroHash } from 'ethers'
import { EMPTY_ROOT, MerkleAccumulator, merkleProof, merkleRoot, nodeHash, verifyProof } from '../../../src/lib/audit/merkle.js'

const leaf = (i: number) => keccak256(Uint8Array.of(0, i & 0xff, i >> 8))
const leaves = (n: number) => Array.from({ length: n }, (_, i) => leaf(i))
/** The spec, written independently of merkle.ts: inner node = keccak256(0x01 || left || right). */
const H = (l: string, r: string) => keccak256(concat(['0x01', l, r]))

function flip(hex: string, bit = 0): string {
  const b = Buffer.from(hex.slice(2), 'hex')
  b[b.length - 1 - Math.floor(bit / 8)]! ^= 1 << bit % 8
  return '0x' + b.toString('hex')
}

describe('merkle tree shape', () => {
  test('inner nodes are domain-separated with 0x01', () => {
    const [a, b] = leaves(2) as [string, string]
    assert.equal(nodeHash(a, b), H(a, b))
    assert.notEqual(nodeHash(a, b), keccak256(concat([a, b])))
  })

  test('empty, one, two, three, five and seven leaves (odd nodes promoted, in seq order)', () => {
    const [a, b, c, d, e, f, g] = leaves(7) as [string, string, string, string, string, string, string]
    assert.equal(merkleRoot([]), ZeroHash)
    assert.equal(EMPTY_ROOT, ZeroHash)
    assert.equal(merkleRoot([a]), a)
    assert.equal(merkleRoot([a, b]), H(a, b))
    assert.equal(merkleRoot([a, b, c]), H(H(a, b), c))
    assert.equal(merkleRoot([a, b, c, d, e]), H(H(H(a, b), H(c, d)), e))
    assert.equal(merkleRoot([a, b, c, d, e, f, g]), H(H(H(a, b), H(c, d)), H(H(e, f), g)))
    assert.notEqual(merkleRoot([b, a]), merkleRoot([a, b]), 'order matters: the tree is not sorted')
  })
})

describe('proofs for 1..33 leaves', () => {
  for (let n = 1; n <= 33; n++) {
    test(`${n} leaves: every proof verifies, the accumulator agrees, and wrong proofs fail`, () => {
      const ls = leaves(n)
      const root = merkleRoot(ls)
      const acc = new MerkleAccumulator()
      ls.forEach((l) => acc.push(l))
      assert.equal(acc.root(), root)
      assert.equal(acc.count, n)
      for (let i = 0; i < n; i++) {
        const p = merkleProof(ls, i)
        assert.equal(p.siblings.length <= Math.ceil(Math.log2(n)), true)
        assert.equal(verifyProof(ls[i]!, p, root), true, `leaf ${i}`)
        assert.equal(verifyProof(flip(ls[i]!), p, root), false, 'another leaf')
        assert.equal(verifyProof(ls[i]!, p, flip(root)), false, 'another root')
        if (n > 1) {
          assert.equal(verifyProof(ls[i]!, { ...p, index: (i + 1) % n }, root), false, 'another position')
          assert.equal(verifyProof(ls[i]!, { ...p, siblings: [flip(p.siblings[0]!), ...p.siblings.slice(1)] }, root), false, 'a changed sibling')
          assert.equal(verifyProof(ls[i]!, { ...p, siblings: p.siblings.slice(1) }, root), false, 'a missing sibling')
        }
        assert.equal(verifyProof(ls[i]!, { ...p, siblings: [...p.siblings, ls[0]!] }, root), false, 'an extra sibling')
      }
    })
  }

  test('out-of-range proofs are refused', () => {
    assert.throws(() => merkleProof(leaves(3), 3), RangeError)
    assert.throws(() => merkleProof([], 0), RangeError)
    assert.equal(verifyProof(leaf(0), { index: 0, count: 0, siblings: [] }, ZeroHash), false)
  })
})

describe('merkle properties (fast-check)', () => {
  const hashes = fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b)), { minLength: 1, maxLength: 33 })

  test('any tree: the proof of any leaf verifies and the accumulator equals the level-wise root', () => {
    fc.assert(
      fc.property(hashes, fc.nat(), (ls, pick) => {
        const i = pick % ls.length
        const root = merkleRoot(ls)
        const acc = new MerkleAccumulator()
        ls.forEach((l) => acc.push(l))
        return acc.root() === root && verifyProof(ls[i]!, merkleProof(ls, i), root)
      }),
      { numRuns: 300 },
    )
  })

  test('any single flipped bit in a sibling breaks the proof', () => {
    fc.assert(
      fc.property(hashes.filter((ls) => ls.length > 1), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), (ls, pick, s, bit) => {
        const i = pick % ls.length
        const p = merkleProof(ls, i)
        const j = s % p.siblings.length
        const siblings = p.siblings.map((x, k) => (k === j ? flip(x, bit) : x))
        return !verifyProof(ls[i]!, { ...p, siblings }, merkleRoot(ls))
      }),
      { numRuns: 300 },
    )
  })

  test('changing any one leaf changes the root', () => {
    fc.assert(
      fc.property(hashes, fc.nat(), (ls, pick) => {
        const i = pick % ls.length
        const changed = ls.slice()
        changed[i] = hexlify(randomBytes(32))
        return merkleRoot(changed) !== merkleRoot(ls)
      }),
      { numRuns: 200 },
    )
  })
})
