/**
 * The scope index's rules as an evidence bundle needs them (/work/notes/scope-index-spec.md, docs/evidence.md):
 * an entry's scope keys, the keys a scope must open, whether an entry is in scope, and the index hashes.
 * Pure and isomorphic.
 */
import { keccak256, toUtf8Bytes, toBeHex, getBytes } from 'ethers'
import { concatBytes, type JournalEntry } from '../entry.js'
import { topicsOverlap } from './select.js'

export interface Scope {
  topic: string | null
  client: string | null
}

const levelsBeforeWildcard = (topic: string): { literal: string[]; wild: boolean } => {
  const levels = topic.split('/')
  const i = levels.findIndex((l) => l === '+' || l === '#')
  return i < 0 ? { literal: levels, wild: false } : { literal: levels.slice(0, i), wild: true }
}
const prefixes = (levels: string[], upTo: number) => Array.from({ length: upTo }, (_, k) => levels.slice(0, k + 1).join('/') + '/')

/** The index keys of one entry (de-duplicated, in a fixed order). */
export function scopeKeys(entry: Pick<JournalEntry, 'address' | 'topic'>): string[] {
  const keys: string[] = []
  if (entry.address) keys.push(`client:${entry.address.toLowerCase()}`)
  if (entry.topic !== undefined) {
    keys.push(`topic:${entry.topic}`)
    const { literal, wild } = levelsBeforeWildcard(entry.topic)
    // proper prefixes of the literal levels (for a name: all but the full name)
    const proper = wild ? literal.length : literal.length - 1
    for (const p of prefixes(literal, proper)) keys.push(`under:${p}`)
    if (wild) keys.push(`wild:${literal.length ? literal.join('/') + '/' : ''}`)
  }
  return [...new Set(keys)]
}

/** Whether the scope's own literal prefix is empty (X = `#`, `+/…`): the whole period's topic entries. */
export function wholeTopicScope(topic: string): boolean {
  return levelsBeforeWildcard(topic).literal.length === 0 && levelsBeforeWildcard(topic).wild
}

/** The keys a bundle for `scope` opens in every period (empty for a whole-journal scope). */
export function keysToOpen(scope: Scope): string[] {
  if (scope.client !== null) return [`client:${scope.client.toLowerCase()}`]
  if (scope.topic === null) return []
  const x = scope.topic
  const { literal, wild } = levelsBeforeWildcard(x)
  const keys = [`topic:${x}`]
  if (wild && literal.length > 0) keys.push(`under:${literal.join('/')}/`)
  keys.push('wild:')
  for (const p of prefixes(literal, literal.length)) keys.push(`wild:${p}`)
  return [...new Set(keys)]
}

/** Whether an entry is in scope: a client scope by address, a topic scope by topic overlap; a whole-journal scope takes everything. */
export function inScope(entry: Pick<JournalEntry, 'address' | 'topic'>, scope: Scope): boolean {
  if (scope.client !== null) return entry.address?.toLowerCase() === scope.client.toLowerCase()
  if (scope.topic !== null) return entry.topic !== undefined && topicsOverlap(entry.topic, scope.topic)
  return true
}

/** keyHash(K) = keccak256(0x03 || utf8(K)). */
export function keyHash(key: string): string {
  return keccak256(concatBytes(new Uint8Array([0x03]), toUtf8Bytes(key)))
}

/** seqsDigest(S) = keccak256(uint64be(s1) || …), S ascending, non-empty. */
export function seqsDigest(seqs: readonly number[]): string {
  return keccak256(concatBytes(...seqs.map((s) => getBytes(toBeHex(s, 8)))))
}

/** indexLeaf = keccak256(0x02 || keyHash || seqsDigest). */
export function indexLeafOf(keyHashHex: string, digest: string): string {
  return keccak256(concatBytes(new Uint8Array([0x02]), getBytes(keyHashHex), getBytes(digest)))
}

/** One row of a period's index: a key (when known) and the seqs under it, with their hashes. */
export interface IndexRow {
  keyHash: string
  seqsDigest: string
  key?: string
  seqs?: number[]
}

/** A period's index from its entries (full ones; a redacted line adds nothing of its own), sorted by keyHash. */
export function buildIndexRows(entries: readonly Pick<JournalEntry, 'seq' | 'address' | 'topic'>[]): IndexRow[] {
  const byKey = new Map<string, number[]>()
  for (const e of entries) for (const k of scopeKeys(e)) byKey.set(k, [...(byKey.get(k) ?? []), e.seq])
  return sortRows([...byKey].map(([key, seqs]) => ({ key, seqs: [...seqs].sort((a, b) => a - b), keyHash: keyHash(key), seqsDigest: seqsDigest([...seqs].sort((a, b) => a - b)) })))
}

export function sortRows(rows: IndexRow[]): IndexRow[] {
  return rows.sort((a, b) => (BigInt(a.keyHash) < BigInt(b.keyHash) ? -1 : BigInt(a.keyHash) > BigInt(b.keyHash) ? 1 : 0))
}

export const rowLeaf = (r: IndexRow): string => indexLeafOf(r.keyHash, r.seqsDigest)
