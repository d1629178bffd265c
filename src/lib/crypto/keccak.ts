/**
 * keccak-256 for the hashes on the proxy's hot paths: the audit trail's per-entry hashing (leaves, chain
 * links, Merkle nodes, scope-index rows) and every CONNECT's credential check (the EIP-191 digest, the
 * address of the recovered key, its EIP-55 checksum). Synchronous, in WebAssembly (hash-wasm), ~5–8× faster
 * than ethers' pure-JS keccak, which cost the strict journal ~60 µs a hash (150+ under load) two to three
 * times per entry on the proxy's thread.
 * Byte-identical to ethers' keccak256 (test/lib/audit/keccak.test.ts checks it).
 *
 * The WASM instance is made once, with a top-level await (Node ESM and the es2022 web build both allow it),
 * and reused: init → update → digest never yields, so no two hashes can interleave. No `node:` module and
 * no Buffer: evidence/check.ts uses this in the browser too.
 */
import { createKeccak } from 'hash-wasm'

const hasher = await createKeccak(256)

/** keccak256 of the parts concatenated, as 32 bytes (no concatenation copy is made). */
export function keccak256(...parts: Uint8Array[]): Uint8Array {
  hasher.init()
  for (const p of parts) hasher.update(p)
  return hasher.digest('binary')
}

/** keccak256 of the parts concatenated, as ethers writes it: 0x-prefixed, lower-case hex. */
export function keccak256Hex(...parts: Uint8Array[]): string {
  hasher.init()
  for (const p of parts) hasher.update(p)
  return '0x' + hasher.digest('hex')
}

/**
 * The EIP-55 mixed-case form of a 0x-prefixed address given in lower case (what ethers' getAddress returns
 * for it): a letter is upper case where the keccak of the lower-case hex has a nibble ≥ 8.
 */
export function checksumLowerAddress(lower: string): string {
  const hex = lower.slice(2)
  const hash = keccak256Hex(TEXT.encode(hex))
  let out = '0x'
  for (let i = 0; i < 40; i++) {
    const c = hex[i]!
    out += c >= 'a' && parseInt(hash[2 + i]!, 16) >= 8 ? c.toUpperCase() : c
  }
  return out
}

const TEXT = new TextEncoder()

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** 0x-prefixed lower-case hex of bytes (what ethers' hexlify writes). */
export function toHex(bytes: Uint8Array): string {
  let s = '0x'
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!]
  return s
}

/** Nibble value per char code (-1: not hex). */
const NIBBLE = new Int8Array(128).fill(-1)
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i
for (let i = 0; i < 6; i++) NIBBLE[65 + i] = NIBBLE[97 + i] = 10 + i

/**
 * The bytes of a 0x-prefixed hex string of whole bytes (salts, leaves, chain values, Merkle nodes); throws a
 * TypeError on anything else, as ethers' getBytes does. Decoded here so that what imports this (the verify
 * worker threads among them) does not load ethers for it.
 */
export function hexBytes(hex: string): Uint8Array {
  const n = (hex.length - 2) / 2
  if (typeof hex === 'string' && hex.charCodeAt(0) === 48 && (hex.charCodeAt(1) | 32) === 120 && Number.isInteger(n) && n >= 0) {
    const out = new Uint8Array(n)
    let ok = true
    for (let i = 0; i < n; i++) {
      const hi = NIBBLE[hex.charCodeAt(2 + 2 * i)] ?? -1
      const lo = NIBBLE[hex.charCodeAt(3 + 2 * i)] ?? -1
      if (hi < 0 || lo < 0) {
        ok = false
        break
      }
      out[i] = (hi << 4) | lo
    }
    if (ok) return out
  }
  throw new TypeError(`invalid hex bytes: ${JSON.stringify(String(hex).slice(0, 80))}`)
}
