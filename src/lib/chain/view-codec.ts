/**
 * Fixed-layout ABI coding of the views a cold start calls in bulk (`grantsOf`, `topicsPage`), by hand: ethers'
 * generic coder builds a Result, a Reader and a checksummed address per value, which dominated a cold start
 * (100,000 grants). Same values as ethers' decoding (test/lib/chain/view-codec.test.ts checks it on real
 * anvil answers), except that addresses are lower case (every reader lower-cases them). Malformed answers
 * throw, as ethers' would. Pure and isomorphic (no Buffer).
 */
import { Interface } from 'ethers'
import { abi } from './artifacts/FlyTrap.js'
import type { RawTopic } from './client.js'

const IFACE = new Interface(abi)
const selector = (name: string) => IFACE.getFunction(name)!.selector
const GRANTS_OF = selector('grantsOf')
const TOPICS_PAGE = selector('topicsPage')

const word = (n: number | bigint) => n.toString(16).padStart(64, '0')
const ADDRESS = /^0x[0-9a-fA-F]{40}$/
const BYTES32 = /^0x[0-9a-fA-F]{64}$/

/** Calldata of grantsOf(bytes32[] topicIds, address[] clients). */
export function encodeGrantsOf(topicIds: readonly string[], clients: readonly string[]): string {
  const n = topicIds.length
  if (clients.length !== n) throw new RangeError('grantsOf: topicIds and clients differ in length')
  const parts: string[] = [GRANTS_OF, word(0x40), word(0x60 + 32 * n), word(n)]
  for (const id of topicIds) {
    if (!BYTES32.test(id)) throw new TypeError(`not a bytes32: ${id}`)
    parts.push(id.slice(2).toLowerCase())
  }
  parts.push(word(n))
  for (const c of clients) {
    if (!ADDRESS.test(c)) throw new TypeError(`not an address: ${c}`)
    parts.push('000000000000000000000000', c.slice(2).toLowerCase())
  }
  return parts.join('')
}

/** A reader of 32-byte words of a 0x-hex answer, with bounds checks (a short answer throws). */
class Words {
  private readonly hex: string
  readonly bytes: number
  constructor(data: string) {
    if (!/^0x(?:[0-9a-fA-F]{2})*$/.test(data)) throw new Error('malformed ABI data: not even-length 0x-hex')
    this.hex = data
    this.bytes = (data.length - 2) / 2
  }
  /** The word at byte offset `at`, as 64 hex chars. */
  raw(at: number): string {
    if (!Number.isSafeInteger(at) || at < 0 || at + 32 > this.bytes) throw new Error(`malformed ABI data: read past the end (${at} of ${this.bytes} bytes)`)
    return this.hex.slice(2 + at * 2, 2 + at * 2 + 64)
  }
  /** A word as an offset/length: it must fit the data (ethers refuses larger). */
  size(at: number): number {
    const w = this.raw(at)
    if (!/^0{50}/.test(w)) throw new Error('malformed ABI data: offset or length out of range')
    const n = parseInt(w.slice(50), 16)
    if (n > this.bytes) throw new Error('malformed ABI data: offset or length out of range')
    return n
  }
  /** The low `bits` (≤ 48) of a word, as ethers masks uintN. */
  low(at: number, bits: number): number {
    const w = this.raw(at)
    return parseInt(w.slice(64 - bits / 4), 16)
  }
  big(at: number): bigint {
    return BigInt(`0x${this.raw(at)}`)
  }
  address(at: number): string {
    const w = this.raw(at)
    if (!w.startsWith('000000000000000000000000')) throw new Error('malformed ABI data: address with high bytes set')
    return `0x${w.slice(24).toLowerCase()}`
  }
  bool(at: number): boolean {
    return !/^0+$/.test(this.raw(at))
  }
  /** Dynamic bytes at byte offset `at` (length word, then the bytes), as lower-case 0x-hex. */
  bytesAt(at: number): string {
    const len = this.size(at)
    if (at + 32 + len > this.bytes) throw new Error('malformed ABI data: bytes past the end')
    return `0x${this.hex.slice(2 + (at + 32) * 2, 2 + (at + 32 + len) * 2).toLowerCase()}`
  }
}

/** grantsOf's answer: the two uint40[] arrays as numbers (uint40 is exact in a double). */
export function decodeGrantsOf(data: string): { pub: number[]; sub: number[] } {
  const w = new Words(data)
  const arr = (head: number): number[] => {
    const at = w.size(head)
    const n = w.size(at)
    const out = new Array<number>(n)
    for (let i = 0; i < n; i++) out[i] = w.low(at + 32 + 32 * i, 40)
    return out
  }
  return { pub: arr(0), sub: arr(32) }
}

/** Calldata of topicsPage(uint256 offset, uint256 limit). */
export function encodeTopicsPage(offset: number, limit: number): string {
  return TOPICS_PAGE + word(offset) + word(limit)
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** topicsPage's answer: TopicInfo[] (bytes32 id, string name, address owner, uint256 pubFee, subFee, bool sensitive, open, uint32 period, bytes countries, uint8 gen). */
export function decodeTopicsPage(data: string): RawTopic[] {
  const w = new Words(data)
  const base = w.size(0)
  const n = w.size(base)
  const heads = base + 32
  const out: RawTopic[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const t = heads + w.size(heads + 32 * i)
    const nameHex = w.bytesAt(t + w.size(t + 32))
    const bytes = new Uint8Array((nameHex.length - 2) / 2)
    for (let j = 0; j < bytes.length; j++) bytes[j] = parseInt(nameHex.slice(2 + 2 * j, 4 + 2 * j), 16)
    out[i] = {
      id: `0x${w.raw(t)}`.toLowerCase(),
      name: UTF8.decode(bytes),
      owner: w.address(t + 64),
      pubFee: w.big(t + 96),
      subFee: w.big(t + 128),
      sensitive: w.bool(t + 160),
      open: w.bool(t + 192),
      period: BigInt(w.low(t + 224, 32)),
      countries: w.bytesAt(t + w.size(t + 256)),
      gen: BigInt(w.low(t + 288, 8)),
    }
  }
  return out
}
