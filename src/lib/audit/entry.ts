/**
 * One journal entry: a decision the proxy made, as stored on one line of a journal segment, and the hashes
 * that make the journal tamper-evident (see docs/audit.md):
 *
 *   leaf_i  = keccak256(0x00 || salt_i || canonicalJSON(entry_i))     salt_i: 32 fresh random bytes
 *   chain_i = keccak256(chain_{i-1} || leaf_i)                        chain_0 = 32 zero bytes
 *
 * Each line stores its salt, its leaf and `prev` = chain_{i-1}. No payloads are ever recorded; IP addresses
 * stay in the local journal and never go on chain. A redacted line (`audit forget`) keeps only seq, t, leaf
 * and prev and names the erasure record (an `erasure` entry, see erasure.ts) that removed it: every root and
 * proof still verifies, the content is gone, and without the salt the leaf cannot be used to guess it.
 */
import { hexlify, randomBytes, ZeroHash } from 'ethers'
import { canonicalJson } from './canonical-json.js'
import { hexBytes, keccak256Hex, toHex } from '../crypto/keccak.js'

export { canonicalJson }

export const ENTRY_KINDS = ['connect', 'publish', 'subscribe', 'deliver', 'will', 'disconnect', 'ban', 'erasure'] as const
export type EntryKind = (typeof ENTRY_KINDS)[number]
export type Outcome = 'allow' | 'deny'

export interface JournalEntry {
  /** Position in the journal: 1, 2, 3 … with no gaps, across segments and restarts. */
  seq: number
  /** Unix milliseconds; never decreases along the journal (so every period is one contiguous run of seqs). */
  t: number
  kind: EntryKind
  outcome: Outcome
  /** Short machine reason, e.g. "not-member", "country", "signature", "client-closed". */
  reason: string
  /** The authenticated (or, for a refused CONNECT, claimed) client address. */
  address?: string
  clientId?: string
  /** ISO 3166-1 alpha-2 country of the IP, for connects. */
  country?: string
  /** Kept locally for operators; never put on chain. */
  ip?: string
  /** Topic name or subscription filter. */
  topic?: string
  /** Bans: the on-chain subject (left-padded address or keyed IP hash) when no clear address/IP is known. */
  subject?: string
  /** Bans: end of the ban, unix milliseconds. */
  until?: number
  /**
   * Identical decisions (same kind, client, topic, outcome and reason) of one group-commit batch and one
   * period, coalesced into this one entry: how many. `t` is the first one's decision time; the others were
   * made within the same batch (milliseconds later), never in another period. Absent = one decision.
   */
  count?: number
  /**
   * When the first coalesced decision was made (unix ms), when it is not `t`: allowed deliveries journaled per
   * receiver/topic/second (`--journal-deliveries all`) are written once their second is over, so `t` is the
   * write time and [since, t) the second they were made in (always the same period); also journals written
   * before decision-time dating.
   */
  since?: number
  /** Erasure records only (kind `erasure`, written by `audit forget`): what was redacted, why, signed (erasure.ts). */
  erasure?: Record<string, unknown>
  /** The topic was sensitive when decided (publishes and deliveries on it are reported on chain per period). */
  sensitive?: true
  /**
   * A refused CONNECT whose credential did not verify: `address` is only what the credential claimed (an
   * impersonation attempt, or a broken device), not an authenticated identity.
   */
  unverified?: true
}

/** What a caller appends: the journal assigns seq and t. */
export type EntryInput = Omit<JournalEntry, 'seq' | 't'>

/** Optional fields, in the order they are written. All but `until` can identify a person. */
export const OPTIONAL_FIELDS = ['address', 'clientId', 'country', 'ip', 'topic', 'subject', 'until', 'count', 'since', 'erasure', 'sensitive', 'unverified'] as const
export const PERSONAL_FIELDS = ['address', 'clientId', 'country', 'ip', 'topic', 'subject'] as const

/** chain_0: the `prev` of the very first entry. */
export const GENESIS = ZeroHash

export type JournalRecord =
  | { redacted: false; seq: number; t: number; entry: JournalEntry; salt: string; leaf: string; prev: string }
  | { redacted: true; seq: number; t: number; leaf: string; prev: string; redactedAt?: number; erasure?: number }

/** Concatenates byte strings (plain Uint8Array: this module also runs in the browser, see evidence/check.ts). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

const LEAF_TAG = new Uint8Array([0x00])
const UTF8 = new TextEncoder()

/** leaf = keccak256(0x00 || salt || canonicalJSON(entry)). */
export function entryLeaf(salt: string, entry: JournalEntry): string {
  return keccak256Hex(LEAF_TAG, hexBytes(salt), UTF8.encode(canonicalJson(entry)))
}

/** chain_i = keccak256(chain_{i-1} || leaf_i). */
export function chainNext(prev: string, leaf: string): string {
  return keccak256Hex(hexBytes(prev), hexBytes(leaf))
}

export function newSalt(): string {
  return hexlify(randomBytes(32))
}

/**
 * A batch's worth of salts and leaves at once: one CSPRNG call for all the salts (a call per entry was a
 * measurable share of the strict path), each salt hashed from its bytes rather than re-decoded from hex.
 */
export function saltedLeaves(entries: readonly JournalEntry[]): { salt: string; leaf: string }[] {
  const random = randomBytes(32 * entries.length)
  return entries.map((entry, i) => {
    const salt = random.subarray(32 * i, 32 * i + 32)
    return { salt: toHex(salt), leaf: keccak256Hex(LEAF_TAG, salt, UTF8.encode(canonicalJson(entry))) }
  })
}

/** A complete entry from an input: only known fields, undefined ones dropped (they are not hashed either). */
export function makeEntry(seq: number, t: number, input: EntryInput): JournalEntry {
  const e: JournalEntry = { seq, t, kind: input.kind, outcome: input.outcome, reason: input.reason }
  for (const k of OPTIONAL_FIELDS) {
    const v = input[k]
    if (v !== undefined && v !== null && (v as unknown) !== false) (e as unknown as Record<string, unknown>)[k] = v
  }
  return e
}

/** The stored line (without the newline). Field order is fixed so lines are easy to read and grep. */
export function encodeRecord(r: JournalRecord): string {
  if (r.redacted) {
    const out: Record<string, unknown> = { seq: r.seq, t: r.t, redacted: true }
    if (r.redactedAt !== undefined) out.redactedAt = r.redactedAt
    if (r.erasure !== undefined) out.erasure = r.erasure
    out.leaf = r.leaf
    out.prev = r.prev
    return JSON.stringify(out)
  }
  // = JSON.stringify({ ...entry, salt, leaf, prev }) without copying the entry: the three are plain hex (no
  // escaping) and an entry is never empty and has none of their names.
  return `${JSON.stringify(r.entry).slice(0, -1)},"salt":${JSON.stringify(r.salt)},"leaf":${JSON.stringify(r.leaf)},"prev":${JSON.stringify(r.prev)}}`
}

export class RecordError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RecordError'
  }
}

const HASH = /^0x[0-9a-f]{64}$/
const ENTRY_KEYS = new Set<string>(['seq', 't', 'kind', 'outcome', 'reason', ...OPTIONAL_FIELDS])
const LINE_KEYS = new Set<string>([...ENTRY_KEYS, 'salt', 'leaf', 'prev'])
const REDACTED_KEYS = new Set<string>(['seq', 't', 'redacted', 'redactedAt', 'erasure', 'leaf', 'prev'])

/**
 * Parses one stored line. Strict: a field the leaf does not cover (an unknown key) would be content nobody
 * could verify, so it makes the line invalid.
 */
export function parseRecord(line: string): JournalRecord {
  let raw: unknown
  try {
    raw = JSON.parse(line)
  } catch {
    throw new RecordError('not JSON')
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new RecordError('not a JSON object')
  const o = raw as Record<string, unknown>
  const seq = o.seq
  const t = o.t
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) throw new RecordError('bad seq')
  if (!Number.isSafeInteger(t) || (t as number) < 0) throw new RecordError('bad t')
  for (const k of ['leaf', 'prev'] as const) if (typeof o[k] !== 'string' || !HASH.test(o[k])) throw new RecordError(`bad ${k}`)
  if (o.redacted === true) {
    for (const k of Object.keys(o)) if (!REDACTED_KEYS.has(k)) throw new RecordError(`unexpected field "${k}" in a redacted line`)
    if (o.redactedAt !== undefined && !Number.isSafeInteger(o.redactedAt)) throw new RecordError('bad redactedAt')
    if (o.erasure !== undefined && (!Number.isSafeInteger(o.erasure) || (o.erasure as number) < 1)) throw new RecordError('bad erasure')
    const r: JournalRecord = { redacted: true, seq: seq as number, t: t as number, leaf: o.leaf as string, prev: o.prev as string, redactedAt: o.redactedAt as number | undefined }
    if (o.erasure !== undefined) r.erasure = o.erasure as number
    return r
  }
  for (const k of Object.keys(o)) if (!LINE_KEYS.has(k)) throw new RecordError(`unexpected field "${k}"`)
  if (typeof o.salt !== 'string' || !HASH.test(o.salt)) throw new RecordError('bad salt')
  if (!ENTRY_KINDS.includes(o.kind as EntryKind)) throw new RecordError('bad kind')
  if (o.outcome !== 'allow' && o.outcome !== 'deny') throw new RecordError('bad outcome')
  if (typeof o.reason !== 'string') throw new RecordError('bad reason')
  for (const k of PERSONAL_FIELDS) if (o[k] !== undefined && typeof o[k] !== 'string') throw new RecordError(`bad ${k}`)
  if (o.until !== undefined && !Number.isSafeInteger(o.until)) throw new RecordError('bad until')
  // An erasure record carries its signed body (checked by erasure.ts); no other kind may carry one.
  if ((o.kind === 'erasure') !== (o.erasure !== undefined)) throw new RecordError(o.kind === 'erasure' ? 'an erasure record without its body' : 'unexpected field "erasure"')
  if (o.erasure !== undefined && (o.erasure === null || typeof o.erasure !== 'object' || Array.isArray(o.erasure))) throw new RecordError('bad erasure')
  if (o.sensitive !== undefined && o.sensitive !== true) throw new RecordError('bad sensitive')
  if (o.unverified !== undefined && o.unverified !== true) throw new RecordError('bad unverified')
  const entry = {} as Record<string, unknown>
  for (const k of ENTRY_KEYS) if (o[k] !== undefined) entry[k] = o[k]
  return { redacted: false, seq: seq as number, t: t as number, entry: entry as unknown as JournalEntry, salt: o.salt, leaf: o.leaf as string, prev: o.prev as string }
}

/** The leaf the content proves: recomputed for a full line, the stored one for a redacted line. */
export function provenLeaf(r: JournalRecord): string {
  return r.redacted ? r.leaf : entryLeaf(r.salt, r.entry)
}

/**
 * The redaction record that replaces a line: same seq, t, leaf and prev; no salt, no content; `erasure` is
 * the seq of the signed erasure record that lists it (and whose `at` is `redactedAt`).
 */
export function redact(r: JournalRecord, at: number, erasure: number): JournalRecord {
  if (r.redacted) return r
  return { redacted: true, seq: r.seq, t: r.t, leaf: r.leaf, prev: r.prev, redactedAt: at, erasure }
}

/**
 * A test for whether an entry mentions the subject (a client address or an IP address) in any personal
 * field or its reason: case-insensitive, as a whole token (so 1.2.3.4 does not match 11.2.3.45).
 */
export function mentionsSubject(subject: string): (entry: JournalEntry) => boolean {
  const escaped = subject.trim().toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const re = new RegExp(`(^|[^0-9a-z])${escaped}($|[^0-9a-z])`)
  return (entry) => {
    for (const k of PERSONAL_FIELDS) {
      const v = entry[k]
      if (v !== undefined && re.test(v.toLowerCase())) return true
    }
    return re.test(entry.reason.toLowerCase())
  }
}
