/**
 * The scope index of one period (docs/audit.md, "Scope index"): for every scope key (a client, a topic, a
 * topic subtree, a wildcard prefix) the exact ascending list of seqs under it, committed as a Merkle root
 * anchored with the period. It lets a filtered evidence bundle prove it is complete: "these are all the seqs
 * under key K" (membership) or "key K has no entries" (absence, by the two neighbours in keyHash order).
 *
 *   keyHash(K)     = keccak256(0x03 || utf8(K))
 *   seqsDigest(S)  = keccak256(uint64be(s1) || uint64be(s2) || …)     S ascending, non-empty
 *   indexLeaf(K,S) = keccak256(0x02 || keyHash(K) || seqsDigest(S))
 *   indexRoot      = merkleRoot(leaves sorted ascending by keyHash)    (merkle.ts; empty index: 0x00…00)
 *
 * Pure: no file or node: access, so a bundle checker can run it in a browser.
 */
import { toUtf8Bytes } from 'ethers'
import type { JournalRecord } from './entry.js'
import { hexBytes, keccak256Hex } from '../crypto/keccak.js'
import { EMPTY_ROOT, MerkleAccumulator, merkleProof, merkleRoot, verifyProof, type MerkleProof } from './merkle.js'

const KEY_TAG = 0x03
const KEY_TAG_BYTE = new Uint8Array([KEY_TAG])
const INDEX_LEAF_TAG = 0x02
const HASH = /^0x[0-9a-f]{64}$/

/** What an entry contributes to the index: only these two fields name a scope. */
export interface ScopedFields {
  address?: string
  topic?: string
}

/** A filter for a bundle: one client, one topic (a name or a filter), or both (that client on that topic). */
export interface Scope {
  topic?: string
  client?: string
}

/** One row of a period's index. `key` and `seqs` are absent on a row scrubbed by `audit forget`. */
export interface IndexRow {
  keyHash: string
  seqsDigest: string
  key?: string
  seqs?: number[]
}

export interface ScopeIndex {
  /** Ascending by keyHash (as 256-bit numbers, i.e. as lower-case hex strings of equal length). */
  rows: IndexRow[]
  root: string
}

export interface MembershipProof extends MerkleProof {
  key: string
  seqs: number[]
}

/** A leaf of the index given without its key or seqs (absence proofs' neighbours). */
export interface IndexNeighbour extends MerkleProof {
  keyHash: string
  seqsDigest: string
}

/**
 * Absence of `key`: `left` and `right` are adjacent leaves around keyHash(key); `right` alone at position 0
 * (the key sorts first), `left` alone at position count-1 (it sorts last); neither when the index is empty.
 */
export interface AbsenceProof {
  key: string
  left?: IndexNeighbour
  right?: IndexNeighbour
}

/** The levels of a topic string before its first wildcard level (`+` or `#`). */
function literalLevels(levels: readonly string[]): string[] {
  const out: string[] = []
  for (const l of levels) {
    if (l === '+' || l === '#') break
    out.push(l)
  }
  return out
}

function prefixOf(levels: readonly string[], k: number): string {
  let s = ''
  for (let i = 0; i < k; i++) s += `${levels[i]}/`
  return s
}

/** The scope keys of an entry, de-duplicated, in a fixed order (client, topic, under…, wild). */
export function scopeKeys(entry: ScopedFields): string[] {
  const keys: string[] = []
  if (entry.address !== undefined) keys.push(`client:${entry.address.toLowerCase()}`)
  const topic = entry.topic
  if (topic !== undefined) {
    keys.push(`topic:${topic}`)
    const levels = topic.split('/')
    const literal = literalLevels(levels)
    const wild = literal.length < levels.length
    // Proper prefixes of the literal levels: every literal level of a filter, all but the last of a name.
    const k = Math.min(literal.length, levels.length - 1)
    for (let i = 1; i <= k; i++) keys.push(`under:${prefixOf(literal, i)}`)
    if (wild) keys.push(`wild:${prefixOf(literal, literal.length)}`)
  }
  return [...new Set(keys)]
}

export function keyHash(key: string): string {
  return keccak256Hex(KEY_TAG_BYTE, toUtf8Bytes(key))
}

function isSeqList(seqs: readonly number[]): boolean {
  if (!Array.isArray(seqs) || seqs.length === 0) return false
  for (let i = 0; i < seqs.length; i++) {
    const s = seqs[i]
    if (!Number.isSafeInteger(s) || (s as number) < 0) return false
    if (i > 0 && (s as number) <= (seqs[i - 1] as number)) return false
  }
  return true
}

/** keccak256 of the seqs as 8-byte big-endian integers. Throws unless strictly ascending and non-empty. */
export function seqsDigest(seqs: readonly number[]): string {
  if (!isSeqList(seqs)) throw new RangeError('seqsDigest: seqs must be a non-empty, strictly ascending list of non-negative integers')
  const b = new Uint8Array(8 * seqs.length)
  const view = new DataView(b.buffer)
  seqs.forEach((s, i) => {
    view.setUint32(8 * i, Math.floor(s / 2 ** 32))
    view.setUint32(8 * i + 4, s % 2 ** 32)
  })
  return keccak256Hex(b)
}

/** The leaf from the two hashes (what a scrubbed row or an absence neighbour still allows computing). */
export function indexLeafOf(keyHashHex: string, seqsDigestHex: string): string {
  const b = new Uint8Array(65)
  b[0] = INDEX_LEAF_TAG
  b.set(hexBytes(keyHashHex), 1)
  b.set(hexBytes(seqsDigestHex), 33)
  return keccak256Hex(b)
}

export function indexLeaf(key: string, seqs: readonly number[]): string {
  return indexLeafOf(keyHash(key), seqsDigest(seqs))
}

/** The root over rows already sorted by keyHash. */
export function indexRootOfRows(rows: readonly IndexRow[]): string {
  return merkleRoot(rows.map((r) => indexLeafOf(r.keyHash, r.seqsDigest)))
}

/** Builds one period's index record by record (for a single pass over a journal); also notes redacted seqs. */
export class ScopeIndexBuilder {
  private readonly byKey = new Map<string, number[]>()
  readonly redacted = new Set<number>()

  add(r: JournalRecord): void {
    if (r.redacted) {
      this.redacted.add(r.seq)
      return
    }
    for (const key of scopeKeys(r.entry)) {
      const list = this.byKey.get(key)
      if (list === undefined) this.byKey.set(key, [r.seq])
      else list.push(r.seq)
    }
  }

  build(): ScopeIndex {
    const rows: IndexRow[] = []
    for (const [key, list] of this.byKey) rows.push(rowOf(key, list))
    rows.sort(byKeyHash)
    return { rows, root: indexRootOfRows(rows) }
  }

  /**
   * build(), pausing (`await pause()`) every `every` hashes: about four keccak256 per key, so a busy
   * period's index is seconds of CPU that must not hold up a process serving traffic.
   */
  async buildYielding(pause: () => Promise<void>, every = 500): Promise<ScopeIndex> {
    const rows: IndexRow[] = []
    for (const [key, list] of this.byKey) {
      rows.push(rowOf(key, list))
      if (rows.length % every === 0) await pause()
    }
    rows.sort(byKeyHash)
    const acc = new MerkleAccumulator() // the same root as merkleRoot, leaf by leaf
    for (let i = 0; i < rows.length; i++) {
      acc.push(indexLeafOf(rows[i]!.keyHash, rows[i]!.seqsDigest))
      if ((i + 1) % every === 0) await pause()
    }
    return { rows, root: acc.root() }
  }
}

function rowOf(key: string, list: readonly number[]): IndexRow {
  const seqs = [...new Set(list)].sort((a, b) => a - b)
  return { keyHash: keyHash(key), seqsDigest: seqsDigest(seqs), key, seqs }
}

const byKeyHash = (a: IndexRow, b: IndexRow): number => (a.keyHash < b.keyHash ? -1 : a.keyHash > b.keyHash ? 1 : 0)

/** The index of one period from its records (redacted records have no keys of their own). */
export function buildScopeIndex(records: Iterable<JournalRecord>): ScopeIndex {
  const b = new ScopeIndexBuilder()
  for (const r of records) b.add(r)
  return b.build()
}

function leaves(index: ScopeIndex): string[] {
  return index.rows.map((r) => indexLeafOf(r.keyHash, r.seqsDigest))
}

/** First position whose keyHash is ≥ h (binary search over the sorted rows). */
function lowerBound(rows: readonly IndexRow[], h: string): number {
  let lo = 0
  let hi = rows.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((rows[mid] as IndexRow).keyHash < h) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The membership proof of `key`, or null if the index has no row for it (or only a scrubbed one). */
export function membershipProof(index: ScopeIndex, key: string): MembershipProof | null {
  const h = keyHash(key)
  const i = lowerBound(index.rows, h)
  const row = index.rows[i]
  if (row === undefined || row.keyHash !== h || row.seqs === undefined) return null
  return { key, seqs: row.seqs.slice(), ...merkleProof(leaves(index), i) }
}

/** The absence proof of `key`, or null if the index has a row for it. */
export function absenceProof(index: ScopeIndex, key: string): AbsenceProof | null {
  const h = keyHash(key)
  const i = lowerBound(index.rows, h)
  if (index.rows[i]?.keyHash === h) return null
  const all = leaves(index)
  const neighbour = (p: number): IndexNeighbour => {
    const r = index.rows[p] as IndexRow
    return { keyHash: r.keyHash, seqsDigest: r.seqsDigest, ...merkleProof(all, p) }
  }
  const proof: AbsenceProof = { key }
  if (i > 0) proof.left = neighbour(i - 1)
  if (i < index.rows.length) proof.right = neighbour(i)
  return proof
}

/** True iff `proof` shows exactly `proof.seqs` under `proof.key` in the index with this root. */
export function verifyMembership(proof: MembershipProof, root: string): boolean {
  if (typeof proof?.key !== 'string' || !isSeqList(proof.seqs)) return false
  if (root.toLowerCase() === EMPTY_ROOT) return false
  return verifyProof(indexLeaf(proof.key, proof.seqs), proof, root)
}

function neighbourOk(n: IndexNeighbour, root: string): boolean {
  if (typeof n.keyHash !== 'string' || typeof n.seqsDigest !== 'string') return false
  if (!HASH.test(n.keyHash) || !HASH.test(n.seqsDigest)) return false
  return verifyProof(indexLeafOf(n.keyHash, n.seqsDigest), n, root)
}

/** True iff `proof` shows that the index with this root has no row for `proof.key`. */
export function verifyAbsence(proof: AbsenceProof, root: string): boolean {
  if (typeof proof?.key !== 'string') return false
  const r = root.toLowerCase()
  const { left, right } = proof
  if (r === EMPTY_ROOT) return left === undefined && right === undefined
  const h = keyHash(proof.key)
  if (left !== undefined && !neighbourOk(left, r)) return false
  if (right !== undefined && !neighbourOk(right, r)) return false
  if (left !== undefined && right !== undefined) {
    return left.count === right.count && left.index + 1 === right.index && left.keyHash < h && h < right.keyHash
  }
  if (right !== undefined) return right.index === 0 && h < right.keyHash
  if (left !== undefined) return left.index === left.count - 1 && left.keyHash < h
  return false
}

/** What a bundle for `scope` must open in each period. */
export interface KeysToOpen {
  /** Keys whose membership or absence the bundle proves, every seq under them disclosed. */
  keys: string[]
  /**
   * The topic scope has no literal prefix (`#`, `+/…`): it can overlap any topic, so the bundle must
   * disclose every entry with a topic (the whole index) instead of a few keys.
   */
  wholePeriod: boolean
}

/**
 * The keys to open for a scope. A client scope (alone or with a topic) opens `client:<address>`: every entry
 * of that client is disclosed and the topic, if any, is filtered from those. A topic scope X opens `topic:X`,
 * `under:P` if X has a wildcard (P its literal prefix), `topic:P'` if X is `P'/#` (which also matches the
 * name P'), and `wild:Q` for every level-boundary prefix Q of X's literal levels, from the empty one to the
 * full one (the filters that can overlap X without sharing its literal prefix).
 */
export function keysToOpen(scope: Scope): KeysToOpen {
  if (scope.client !== undefined) return { keys: [`client:${scope.client.toLowerCase()}`], wholePeriod: false }
  const x = scope.topic
  if (x === undefined) throw new RangeError('keysToOpen: a scope needs a client or a topic')
  const levels = x.split('/')
  const literal = literalLevels(levels)
  const wild = literal.length < levels.length
  const keys = [`topic:${x}`]
  if (wild) {
    if (literal.length === 0) return { keys, wholePeriod: true }
    keys.push(`under:${prefixOf(literal, literal.length)}`)
    if (levels[literal.length] === '#') keys.push(`topic:${literal.join('/')}`)
  }
  for (let k = 0; k <= literal.length; k++) keys.push(`wild:${prefixOf(literal, k)}`)
  return { keys: [...new Set(keys)], wholePeriod: false }
}

/**
 * True iff two topic strings (names or filters, `+`/`#` read as wildcards in either) have a topic name in
 * common. MQTT rules: `+` is one level (maybe empty), `#` any number of levels including none (`a/#`
 * matches `a`), and a wildcard in the first level never matches a name starting with `$`.
 */
export function topicsOverlap(a: string, b: string): boolean {
  const x = a.split('/')
  const y = b.split('/')
  for (let i = 0; ; i++) {
    const p = x[i]
    const q = y[i]
    if (p === undefined && q === undefined) return true
    if (p === '#' || q === '#') {
      const other = p === '#' ? q : p
      // `#` at level 0 matches no `$` name.
      if (i === 0 && other !== undefined && other !== '+' && other !== '#' && other.startsWith('$')) return false
      // `#` where the other ended matches the other's parent name, unless that is the empty (invalid) name.
      return !(other === undefined && i === 1 && (x[0] === '' || y[0] === ''))
    }
    if (p === undefined || q === undefined) return false
    if (p === '+' || q === '+') {
      const other = p === '+' ? q : p
      if (i === 0 && other !== '+' && other.startsWith('$')) return false
      continue
    }
    if (p !== q) return false
  }
}

/** Whether an entry belongs to a scope (both parts must hold when both are given). */
export function inScope(entry: ScopedFields, scope: Scope): boolean {
  if (scope.client === undefined && scope.topic === undefined) return false
  if (scope.client !== undefined && entry.address?.toLowerCase() !== scope.client.toLowerCase()) return false
  if (scope.topic !== undefined && (entry.topic === undefined || !topicsOverlap(entry.topic, scope.topic))) return false
  return true
}

/**
 * The rows with every row whose key `mentions` (the erased subject) cut down to keyHash and seqsDigest:
 * the leaves, and so the root, are unchanged.
 */
export function scrubRows(rows: readonly IndexRow[], mentions: (key: string) => boolean): IndexRow[] {
  return rows.map((r) => (r.key !== undefined && mentions(r.key) ? { keyHash: r.keyHash, seqsDigest: r.seqsDigest } : r))
}

/** A stored row, checked for shape and self-consistency (its key and seqs hash to its keyHash and digest). */
export function rowError(row: unknown): string | null {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) return 'not an object'
  const r = row as Record<string, unknown>
  for (const k of Object.keys(r)) if (!['keyHash', 'seqsDigest', 'key', 'seqs'].includes(k)) return `unexpected field "${k}"`
  if (typeof r.keyHash !== 'string' || !HASH.test(r.keyHash)) return 'bad keyHash'
  if (typeof r.seqsDigest !== 'string' || !HASH.test(r.seqsDigest)) return 'bad seqsDigest'
  if ((r.key === undefined) !== (r.seqs === undefined)) return 'key and seqs go together'
  if (r.key !== undefined) {
    if (typeof r.key !== 'string') return 'bad key'
    if (!Array.isArray(r.seqs) || !isSeqList(r.seqs as number[])) return 'bad seqs'
    if (keyHash(r.key) !== r.keyHash) return 'keyHash is not the hash of key'
    if (seqsDigest(r.seqs as number[]) !== r.seqsDigest) return 'seqsDigest is not the digest of seqs'
  }
  return null
}

export type IndexCheck = { ok: true; root: string } | { ok: false; keyHash: string | null; reason: string }

/**
 * Checks a period's index against its records and, when given, its stored rows; returns the root the
 * records commit to (compare it with the anchored one). Without redacted lines the index is recomputed and
 * the stored rows (if any) must equal it (a scrubbed row: its keyHash and seqsDigest). With redacted lines the stored rows are needed: every row must be
 * well-formed and sorted; a row in clear must list exactly the recomputed seqs for its key plus only seqs of
 * redacted lines; a scrubbed row's key must have no unredacted entry; every recomputed key must have a row.
 * The first differing key hash is reported.
 */
export function checkIndex(records: readonly JournalRecord[], stored?: readonly unknown[]): IndexCheck {
  const b = new ScopeIndexBuilder()
  for (const r of records) b.add(r)
  return checkBuiltIndex(b.build(), b.redacted, stored)
}

/** checkIndex over an index already built from the records, and the seqs of their redacted lines. */
export function checkBuiltIndex(fresh: ScopeIndex, redacted: ReadonlySet<number>, stored?: readonly unknown[] | null): IndexCheck {
  if (stored === undefined || stored === null) {
    if (redacted.size > 0) return { ok: false, keyHash: null, reason: 'the period has redacted lines and no stored index rows' }
    return { ok: true, root: fresh.root }
  }
  for (let i = 0; i < stored.length; i++) {
    const err = rowError(stored[i])
    if (err !== null) return { ok: false, keyHash: (stored[i] as IndexRow | null)?.keyHash ?? null, reason: `stored row ${i}: ${err}` }
    if (i > 0 && (stored[i - 1] as IndexRow).keyHash >= (stored[i] as IndexRow).keyHash) {
      return { ok: false, keyHash: (stored[i] as IndexRow).keyHash, reason: `stored rows are not strictly sorted by keyHash at row ${i}` }
    }
  }
  const rows = stored as readonly IndexRow[]
  if (redacted.size === 0) {
    const n = Math.max(rows.length, fresh.rows.length)
    for (let i = 0; i < n; i++) {
      const a = fresh.rows[i]
      const b = rows[i]
      // A scrubbed row (audit forget stopped before redacting the lines) still commits to the same leaf.
      if (a === undefined || b === undefined || a.keyHash !== b.keyHash || a.seqsDigest !== b.seqsDigest) {
        const h = a === undefined ? (b as IndexRow).keyHash : b === undefined ? a.keyHash : a.keyHash < b.keyHash ? a.keyHash : b.keyHash
        return { ok: false, keyHash: h, reason: 'stored row differs from the index recomputed from the entries' }
      }
    }
    return { ok: true, root: fresh.root }
  }
  const freshBy = new Map(fresh.rows.map((r) => [r.keyHash, r]))
  const storedHashes = new Set(rows.map((r) => r.keyHash))
  for (const r of rows) {
    const f = freshBy.get(r.keyHash)
    if (r.seqs === undefined) {
      if (f !== undefined) return { ok: false, keyHash: r.keyHash, reason: 'a scrubbed row whose key still has unredacted entries' }
      continue
    }
    const visible = r.seqs.filter((s) => !redacted.has(s))
    const expected = f?.seqs ?? []
    if (visible.length !== expected.length || visible.some((s, i) => s !== expected[i])) {
      return { ok: false, keyHash: r.keyHash, reason: 'stored row differs from the index recomputed from the entries' }
    }
  }
  for (const f of fresh.rows) {
    if (!storedHashes.has(f.keyHash)) return { ok: false, keyHash: f.keyHash, reason: 'a key of the entries has no stored row' }
  }
  return { ok: true, root: indexRootOfRows(rows) }
}

/** The rows as stored on disk (one JSON array), in order. */
export function encodeRows(rows: readonly IndexRow[]): string {
  return `${JSON.stringify(rows.map((r) => (r.key === undefined ? { keyHash: r.keyHash, seqsDigest: r.seqsDigest } : { keyHash: r.keyHash, seqsDigest: r.seqsDigest, key: r.key, seqs: r.seqs })))}\n`
}
