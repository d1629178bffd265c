/**
 * The WASM keccak (src/lib/crypto/keccak.ts) against ethers' keccak256, the reference every stored leaf,
 * chain value and root was made with: byte-identical over every length 0..600 (the rate is 136 bytes, so
 * 135/136/137, 271/272/273 … cross the padding boundary), over split inputs, and for the hex decoder.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { getAddress, getBytes, hexlify, keccak256 as ethersKeccak, randomBytes, ZeroHash } from 'ethers'
import { checksumLowerAddress, hexBytes, keccak256, keccak256Hex } from '../../../src/lib/crypto/keccak.js'
import { parseAddress } from '../../../src/lib/auth/binding.js'
import { chainNext, entryLeaf, makeEntry } from '../../../src/lib/audit/entry.js'
import { nodeHash } from '../../../src/lib/audit/merkle.js'

describe('keccak256 (hash-wasm) equals ethers keccak256', () => {
  test('random inputs of every length 0..600, twice each', () => {
    for (let n = 0; n <= 600; n++) {
      for (let k = 0; k < 2; k++) {
        const b = randomBytes(n)
        const want = ethersKeccak(b)
        assert.equal(keccak256Hex(b), want, `length ${n}`)
        assert.equal(hexlify(keccak256(b)), want, `length ${n} (bytes)`)
      }
    }
  })

  test('the rate boundary (135, 136, 137 bytes) and known vectors', () => {
    for (const n of [135, 136, 137, 271, 272, 273]) {
      const b = new Uint8Array(n).fill(0xa5)
      assert.equal(keccak256Hex(b), ethersKeccak(b), `length ${n}`)
    }
    // keccak256("") (not SHA3-256("")): the constant every Ethereum tool agrees on.
    assert.equal(keccak256Hex(new Uint8Array(0)), '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470')
  })

  test('parts hash as their concatenation, whatever the split', () => {
    for (let i = 0; i < 200; i++) {
      const b = randomBytes(1 + Math.floor(Math.random() * 500))
      const cut1 = Math.floor(Math.random() * b.length)
      const cut2 = cut1 + Math.floor(Math.random() * (b.length - cut1))
      assert.equal(keccak256Hex(b.subarray(0, cut1), b.subarray(cut1, cut2), b.subarray(cut2)), ethersKeccak(b))
    }
    assert.equal(keccak256Hex(), ethersKeccak(new Uint8Array(0)))
  })

  test('a result is a copy: later hashes do not change it', () => {
    const a = keccak256(Uint8Array.of(1))
    const copy = hexlify(a)
    keccak256(Uint8Array.of(2))
    assert.equal(hexlify(a), copy)
  })

  test('hexBytes decodes like ethers getBytes, and refuses what it refuses', () => {
    for (let i = 0; i < 100; i++) {
      const h = hexlify(randomBytes(32))
      assert.deepEqual(hexBytes(h), getBytes(h))
      assert.deepEqual(hexBytes(h.toUpperCase().replace('0X', '0x')), getBytes(h))
    }
    assert.deepEqual(hexBytes('0x0102'), Uint8Array.of(1, 2))
    for (const bad of ['0x' + 'g'.repeat(64), '0x' + '0'.repeat(63), 'ab'.repeat(33), '0x' + 'z1'.repeat(32)]) assert.throws(() => hexBytes(bad), bad)
  })

  test('leaf, chain and node hashes are the spec over ethers', () => {
    const salt = hexlify(randomBytes(32))
    const e = makeEntry(7, 1_700_000_000_000, { kind: 'publish', outcome: 'allow', reason: 'ok', address: '0x' + 'ab'.repeat(20), topic: 'a/ü/€' })
    const json = new TextEncoder().encode(JSON.stringify({ address: e.address, kind: e.kind, outcome: e.outcome, reason: e.reason, seq: 7, t: e.t, topic: e.topic }))
    const leaf = entryLeaf(salt, e)
    assert.equal(leaf, ethersKeccak(new Uint8Array([0, ...getBytes(salt), ...json])))
    assert.equal(chainNext(ZeroHash, leaf), ethersKeccak(new Uint8Array([...getBytes(ZeroHash), ...getBytes(leaf)])))
    assert.equal(nodeHash(leaf, salt), ethersKeccak(new Uint8Array([1, ...getBytes(leaf), ...getBytes(salt)])))
  })
})

describe('EIP-55 checksums (the credential check names addresses with them)', () => {
  test('checksumLowerAddress equals ethers getAddress on 2,000 random addresses', () => {
    for (let i = 0; i < 2_000; i++) {
      const lower = hexlify(randomBytes(20))
      assert.equal(checksumLowerAddress(lower), getAddress(lower))
    }
  })

  test('parseAddress accepts lower, upper and the exact checksum, and refuses any other mixed case', () => {
    for (let i = 0; i < 500; i++) {
      const lower = hexlify(randomBytes(20))
      const good = getAddress(lower)
      assert.equal(parseAddress(lower), good)
      assert.equal(parseAddress('0x' + lower.slice(2).toUpperCase()), good)
      assert.equal(parseAddress(good), good)
      // Flip the case of one letter of the checksummed form: ethers refuses it, and so must we.
      const letters = [...good.slice(2)].flatMap((c, j) => (/[a-fA-F]/.test(c) ? [j] : []))
      if (letters.length < 2) continue
      const j = letters[i % letters.length]! + 2
      const c = good[j]!
      const bad = good.slice(0, j) + (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) + good.slice(j + 1)
      if (bad === lower || bad === '0x' + lower.slice(2).toUpperCase()) continue
      assert.throws(() => getAddress(bad))
      assert.equal(parseAddress(bad), null, bad)
    }
  })
})
