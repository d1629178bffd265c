/**
 * The evidence bundle's format (docs/evidence.md): one JSON document, versioned, that a regulator checks with
 * only the bundle and a chain node. Types, the schema version, the canonical encoding of contract event
 * arguments, and the strict structural reader every checker starts with. Pure and isomorphic (browser too):
 * ethers and plain code only.
 */
import { getAddress, hexlify, isAddress, type Result } from 'ethers'
import type { JournalEntry } from '../entry.js'
import type { ErasureBody } from '../erasure.js'

export const BUNDLE_FORMAT = 'flytrap-evidence'
export const BUNDLE_VERSION = 1

/** Where a log is on chain: enough to fetch its receipt and compare its block. */
export interface ChainRef {
  txHash: string
  blockNumber: number
  blockHash: string
  logIndex: number
  /** The block's timestamp, unix seconds (checked against the chain). */
  time: number
}

/** A contract event as the bundle cites it: its name, its decoded arguments (canonical, see encodeArgs) and where it is. */
export interface CitedEvent {
  event: string
  args: Record<string, EventValue>
  ref: ChainRef
}

/** Event arguments in canonical form: uints as decimal strings, addresses and bytes as lower-case hex. */
export type EventValue = string | boolean | EventValue[]

/** One anchor (an Anchored event) and the range it proves. */
export interface BundleAnchor {
  reporter: string
  fromTime: number
  toTime: number
  firstSeq: number
  count: number
  root: string
  /** The scope-index root the anchor commits to (docs/scope-index), or null when the contract's anchors carry none. */
  index: string | null
  chain: string
  ref: ChainRef
}

/** A disclosed journal entry: content and salt, so anyone recomputes its leaf; its path to the period's root. */
export interface DisclosedEntry {
  seq: number
  entry: JournalEntry
  salt: string
  siblings: string[]
}

/** A redacted entry (audit forget): its leaf and times only, covered by the erasure record it names. */
export interface DisclosedRedaction {
  seq: number
  redacted: true
  t: number
  leaf: string
  redactedAt: number | null
  erasure: number | null
  siblings: string[]
}

export type BundleEntry = DisclosedEntry | DisclosedRedaction

/** Membership of a scope key in a period's index: the exact seqs listed under it. */
export interface IndexMembership {
  key: string
  seqs: number[]
  index: number
  count: number
  siblings: string[]
}

/** One neighbouring index leaf of an absent key: its hashes only (the key stays hidden). */
export interface IndexNeighbour {
  keyHash: string
  seqsDigest: string
  index: number
  count: number
  siblings: string[]
}

/**
 * Absence of a scope key: the adjacent leaves around keyHash(key); `right` alone at position 0 (it sorts
 * first), `left` alone at the last position (it sorts last), neither when the index is empty.
 */
export interface IndexAbsence {
  key: string
  absent: true
  left: IndexNeighbour | null
  right: IndexNeighbour | null
}

export type IndexOpening = IndexMembership | IndexAbsence

export interface BundlePeriod {
  anchor: BundleAnchor
  /** Disclosed entries of this anchor's range, in seq order. */
  entries: BundleEntry[]
  /** Filtered bundles: the index openings of every key the scope must open (empty for a whole-journal bundle). */
  openings: IndexOpening[]
}

/** An erasure record a redaction names, disclosed in full (it may lie outside the bundle's time range). */
export interface BundleErasure {
  seq: number
  entry: JournalEntry & { erasure: ErasureBody }
  salt: string
  /** Its proof against the anchor of its own range; null when that range is not anchored yet. */
  anchor: BundleAnchor | null
  siblings: string[]
}

/** A disclosed member record of a committed SensitiveReport (sensitive-members.ts), with its proof against membersRoot. */
export interface BundleMember {
  /** Index into `summaries` of the SensitiveReport. */
  summary: number
  record: { address: string; role: 'publisher' | 'receiver'; count: number }
  salt: string
  proof: { index: number; count: number; siblings: string[] }
}

/** The opening of a committed reason (`commit:0x…`, chain/reasons.ts) of a cited policy event. */
export interface BundleReason {
  /** The on-chain string: "commit:0x" + 64 hex. */
  commitment: string
  salt: string
  text: string
}

/** Which cited policy event allowed a disclosed access (index into `policy`), or null when none did. */
export interface BundleGrant {
  seq: number
  policy: number | null
}

export interface BundleScope {
  /** What was asked (unix ms, half-open), and what the bundle covers: rounded out to whole anchored ranges. */
  requested: { fromMs: number; toMs: number }
  fromMs: number
  toMs: number
  topic: string | null
  /** Lower-case 0x address. */
  client: string | null
}

export interface EvidenceBundle {
  format: typeof BUNDLE_FORMAT
  version: typeof BUNDLE_VERSION
  /** Unix ms, when it was exported (informational). */
  createdAt: number
  deployment: {
    chainId: number
    contract: string
    deploymentBlock: number
    /** The chain as the exporter read it: policy events and summaries are cited up to this block. */
    asOf: { blockNumber: number; blockHash: string }
    /** ReporterAdded / ReporterRemoved from the deployment to asOf, in chain order. */
    reporters: CitedEvent[]
  }
  scope: BundleScope
  periods: BundlePeriod[]
  erasures: BundleErasure[]
  /** Policy events of the scope's topics / client, from the deployment to the end of the scope, in chain order. */
  policy: CitedEvent[]
  /** SensitiveReport / DeniedSummary events whose interval lies in the scope, in chain order. */
  summaries: CitedEvent[]
  /** Member records of the cited committed SensitiveReports that the scope discloses. */
  members: BundleMember[]
  /** Openings of committed reasons of cited policy events. */
  reasons: BundleReason[]
  /** One per disclosed allowed publish/subscribe/deliver/will with an address and topic, in seq order. */
  grants: BundleGrant[]
  /** The reporter address that signed (checksummed), and its EIP-191 signature of bundleDigest(bundle). */
  signer: string
  signature: string
}

export type UnsignedBundle = Omit<EvidenceBundle, 'signature'>

// ------------------------------------------------------------------ event arguments

/** One ABI value in canonical form (what the bundle stores and what a checker compares). */
export function encodeValue(type: string, v: unknown): EventValue {
  if (type.endsWith(']')) {
    const inner = type.slice(0, type.lastIndexOf('['))
    return (v as unknown[]).map((x) => encodeValue(inner, x))
  }
  if (type === 'bool') return Boolean(v)
  if (type === 'string') return String(v)
  if (type === 'address') return String(v).toLowerCase()
  if (type.startsWith('uint') || type.startsWith('int')) return BigInt(v as bigint).toString(10)
  if (type.startsWith('bytes')) return hexlify(v as string).toLowerCase()
  throw new TypeError(`encodeValue: unsupported ABI type ${type}`)
}

/** Decoded event arguments by name, canonical. */
export function encodeArgs(inputs: readonly { name: string; type: string }[], args: Result | readonly unknown[]): Record<string, EventValue> {
  const out: Record<string, EventValue> = {}
  inputs.forEach((input, i) => (out[input.name] = encodeValue(input.type, args[i])))
  return out
}

// ------------------------------------------------------------------ structural reading

const HASH = /^0x[0-9a-f]{64}$/
const SIG = /^0x[0-9a-fA-F]{130}$/

export class BundleFormatError extends Error {
  constructor(
    readonly record: string,
    message: string,
  ) {
    super(message)
    this.name = 'BundleFormatError'
  }
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)
const int = (v: unknown, min = 0) => Number.isSafeInteger(v) && (v as number) >= min

function keysExactly(o: Obj, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new BundleFormatError(where, `${where}: unexpected field "${k}"`)
  for (const k of allowed) if (!(k in o)) throw new BundleFormatError(where, `${where}: missing field "${k}"`)
}

function need(cond: boolean, where: string, what: string): void {
  if (!cond) throw new BundleFormatError(where, `${where}: ${what}`)
}

function readRef(v: unknown, where: string): void {
  need(isObj(v), where, 'no chain reference')
  const r = v as Obj
  keysExactly(r, ['txHash', 'blockNumber', 'blockHash', 'logIndex', 'time'], `${where} (ref)`)
  need(typeof r.txHash === 'string' && HASH.test(r.txHash), where, 'bad txHash')
  need(typeof r.blockHash === 'string' && HASH.test(r.blockHash), where, 'bad blockHash')
  need(int(r.blockNumber) && int(r.logIndex) && int(r.time), where, 'bad blockNumber, logIndex or time')
}

function readEvent(v: unknown, where: string): void {
  need(isObj(v), where, 'not an object')
  const e = v as Obj
  keysExactly(e, ['event', 'args', 'ref'], where)
  need(typeof e.event === 'string' && /^[A-Za-z]+$/.test(e.event), where, 'bad event name')
  need(isObj(e.args), where, 'bad args')
  readRef(e.ref, where)
}

function readSiblings(v: unknown, where: string): void {
  need(Array.isArray(v) && v.every((s) => typeof s === 'string' && HASH.test(s)), where, 'bad siblings')
}

export function readAnchor(v: unknown, where: string): void {
  need(isObj(v), where, 'no anchor')
  const a = v as Obj
  keysExactly(a, ['reporter', 'fromTime', 'toTime', 'firstSeq', 'count', 'root', 'index', 'chain', 'ref'], where)
  need(typeof a.reporter === 'string' && isAddress(a.reporter), where, 'bad reporter')
  need(int(a.fromTime) && int(a.toTime) && (a.toTime as number) > (a.fromTime as number), where, 'bad time range')
  need(int(a.firstSeq, 1) && int(a.count), where, 'bad firstSeq or count')
  for (const k of ['root', 'chain'] as const) need(typeof a[k] === 'string' && HASH.test(a[k]), where, `bad ${k}`)
  need(a.index === null || (typeof a.index === 'string' && HASH.test(a.index)), where, 'bad index')
  readRef(a.ref, where)
}

function readEntry(v: unknown, where: string): void {
  need(isObj(v), where, 'not an object')
  const e = v as Obj
  need(int(e.seq, 1), where, 'bad seq')
  if (e.redacted === true) {
    keysExactly(e, ['seq', 'redacted', 't', 'leaf', 'redactedAt', 'erasure', 'siblings'], where)
    need(int(e.t) && typeof e.leaf === 'string' && HASH.test(e.leaf), where, 'bad t or leaf')
    need(e.redactedAt === null || int(e.redactedAt), where, 'bad redactedAt')
    need(e.erasure === null || int(e.erasure, 1), where, 'bad erasure')
  } else {
    keysExactly(e, ['seq', 'entry', 'salt', 'siblings'], where)
    need(isObj(e.entry) && (e.entry as Obj).seq === e.seq && int((e.entry as Obj).t), where, 'bad entry (its seq must be the entry seq)')
    need(typeof e.salt === 'string' && HASH.test(e.salt), where, 'bad salt')
  }
  readSiblings(e.siblings, where)
}

function readOpening(v: unknown, where: string): void {
  need(isObj(v) && typeof (v as Obj).key === 'string', where, 'bad index opening')
  const o = v as Obj
  if (o.absent === true) {
    keysExactly(o, ['key', 'absent', 'left', 'right'], where)
    for (const n of [o.left, o.right]) {
      if (n === null) continue
      need(isObj(n), where, 'bad neighbour')
      keysExactly(n as Obj, ['keyHash', 'seqsDigest', 'index', 'count', 'siblings'], where)
      const m = n as Obj
      need(typeof m.keyHash === 'string' && HASH.test(m.keyHash) && typeof m.seqsDigest === 'string' && HASH.test(m.seqsDigest), where, 'bad neighbour hashes')
      need(int(m.index) && int(m.count, 1), where, 'bad neighbour position')
      readSiblings(m.siblings, where)
    }
  } else {
    keysExactly(o, ['key', 'seqs', 'index', 'count', 'siblings'], where)
    need(Array.isArray(o.seqs) && (o.seqs as unknown[]).length > 0 && (o.seqs as unknown[]).every((s) => int(s, 1)), where, 'bad seqs')
    need(int(o.index) && int(o.count, 1), where, 'bad position')
    readSiblings(o.siblings, where)
  }
}

/**
 * Checks the bundle's structure (every field present, no unknown field, every hash well-formed) and returns
 * it typed; throws BundleFormatError naming the record. Semantics (hashes, proofs, chain) are check.ts's.
 */
export function readBundle(raw: unknown): EvidenceBundle {
  need(isObj(raw), 'bundle', 'not a JSON object')
  const b = raw as Obj
  need(b.format === BUNDLE_FORMAT, 'bundle', `not a FlyTrap evidence bundle (format ${JSON.stringify(b.format)})`)
  need(b.version === BUNDLE_VERSION, 'bundle', `unsupported version ${JSON.stringify(b.version)} (this checker reads version ${BUNDLE_VERSION})`)
  keysExactly(b, ['format', 'version', 'createdAt', 'deployment', 'scope', 'periods', 'erasures', 'policy', 'summaries', 'members', 'reasons', 'grants', 'signer', 'signature'], 'bundle')
  need(int(b.createdAt), 'bundle', 'bad createdAt')
  need(isObj(b.deployment), 'deployment', 'missing')
  const d = b.deployment as Obj
  keysExactly(d, ['chainId', 'contract', 'deploymentBlock', 'asOf', 'reporters'], 'deployment')
  need(isObj(d.asOf) && int((d.asOf as Obj).blockNumber) && typeof (d.asOf as Obj).blockHash === 'string' && HASH.test((d.asOf as Obj).blockHash as string), 'deployment', 'bad asOf')
  keysExactly(d.asOf as Obj, ['blockNumber', 'blockHash'], 'deployment.asOf')
  need(int(d.chainId, 1) && typeof d.contract === 'string' && isAddress(d.contract) && int(d.deploymentBlock), 'deployment', 'bad chainId, contract or deploymentBlock')
  need(Array.isArray(d.reporters), 'deployment', 'bad reporters')
  ;(d.reporters as unknown[]).forEach((e, i) => readEvent(e, `reporter event ${i}`))
  need(isObj(b.scope), 'scope', 'missing')
  const s = b.scope as Obj
  keysExactly(s, ['requested', 'fromMs', 'toMs', 'topic', 'client'], 'scope')
  need(isObj(s.requested) && int((s.requested as Obj).fromMs) && int((s.requested as Obj).toMs), 'scope', 'bad requested range')
  need(int(s.fromMs) && int(s.toMs) && (s.toMs as number) > (s.fromMs as number), 'scope', 'bad range')
  need(s.topic === null || (typeof s.topic === 'string' && s.topic.length > 0), 'scope', 'bad topic')
  need(s.client === null || (typeof s.client === 'string' && isAddress(s.client) && s.client === s.client.toLowerCase()), 'scope', 'bad client (a lower-case address)')
  need(s.topic === null || s.client === null, 'scope', 'a bundle is for one topic or one client, not both')
  need(Array.isArray(b.periods) && (b.periods as unknown[]).length > 0, 'bundle', 'no periods')
  ;(b.periods as unknown[]).forEach((p, i) => {
    const where = `period ${i}`
    need(isObj(p), where, 'not an object')
    keysExactly(p as Obj, ['anchor', 'entries', 'openings'], where)
    readAnchor((p as Obj).anchor, `anchor of ${where}`)
    need(Array.isArray((p as Obj).entries) && Array.isArray((p as Obj).openings), where, 'bad entries or openings')
    ;((p as Obj).entries as unknown[]).forEach((e, j) => readEntry(e, `${where} entry ${j}`))
    ;((p as Obj).openings as unknown[]).forEach((o, j) => readOpening(o, `${where} opening ${j}`))
  })
  need(Array.isArray(b.erasures), 'bundle', 'bad erasures')
  ;(b.erasures as unknown[]).forEach((e, i) => {
    const where = `erasure record ${i}`
    need(isObj(e), where, 'not an object')
    keysExactly(e as Obj, ['seq', 'entry', 'salt', 'anchor', 'siblings'], where)
    const x = e as Obj
    need(int(x.seq, 1) && isObj(x.entry) && (x.entry as Obj).seq === x.seq && (x.entry as Obj).kind === 'erasure', where, 'bad erasure entry')
    need(typeof x.salt === 'string' && HASH.test(x.salt), where, 'bad salt')
    if (x.anchor !== null) readAnchor(x.anchor, where)
    readSiblings(x.siblings, where)
  })
  for (const k of ['policy', 'summaries'] as const) {
    need(Array.isArray(b[k]), 'bundle', `bad ${k}`)
    ;(b[k] as unknown[]).forEach((e, i) => readEvent(e, `${k === 'policy' ? 'policy event' : 'summary'} ${i}`))
  }
  need(Array.isArray(b.members) && Array.isArray(b.reasons) && Array.isArray(b.grants), 'bundle', 'bad members, reasons or grants')
  ;(b.members as unknown[]).forEach((m, i) => {
    const where = `member ${i}`
    need(isObj(m), where, 'not an object')
    const x = m as Obj
    keysExactly(x, ['summary', 'record', 'salt', 'proof'], where)
    need(int(x.summary), where, 'bad summary index')
    need(isObj(x.record), where, 'bad record')
    keysExactly(x.record as Obj, ['address', 'role', 'count'], `${where} (record)`)
    const r = x.record as Obj
    // Their values (a lower-case address, a known role, a positive count) are the members step's (check.ts).
    need(typeof r.address === 'string' && typeof r.role === 'string' && Number.isSafeInteger(r.count), where, 'bad record (address and role strings, count an integer)')
    need(typeof x.salt === 'string' && HASH.test(x.salt), where, 'bad salt')
    need(isObj(x.proof), where, 'bad proof')
    keysExactly(x.proof as Obj, ['index', 'count', 'siblings'], `${where} (proof)`)
    need(int((x.proof as Obj).index) && int((x.proof as Obj).count, 1), where, 'bad proof position')
    readSiblings((x.proof as Obj).siblings, where)
  })
  ;(b.reasons as unknown[]).forEach((r, i) => {
    const where = `reason ${i}`
    need(isObj(r), where, 'not an object')
    keysExactly(r as Obj, ['commitment', 'salt', 'text'], where)
    const x = r as Obj
    need(typeof x.commitment === 'string', where, 'bad commitment')
    need(typeof x.salt === 'string' && HASH.test(x.salt), where, 'bad salt')
    need(typeof x.text === 'string', where, 'bad text')
  })
  ;(b.grants as unknown[]).forEach((g, i) => {
    const where = `grant ${i}`
    need(isObj(g), where, 'not an object')
    keysExactly(g as Obj, ['seq', 'policy'], where)
    need(int((g as Obj).seq, 1), where, 'bad seq')
    need((g as Obj).policy === null || int((g as Obj).policy), where, 'bad policy index')
  })
  need(typeof b.signer === 'string' && isAddress(b.signer) && b.signer === getAddress(b.signer), 'signature', 'bad signer (a checksummed address)')
  need(typeof b.signature === 'string' && SIG.test(b.signature), 'signature', 'bad signature')
  return b as unknown as EvidenceBundle
}
