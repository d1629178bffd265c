/**
 * Erasure records: a redaction is evidence, not a hole. `audit forget` appends one journal entry of kind
 * `erasure` that says when, on whose request and on what legal basis which entries were redacted, with a
 * salted commitment to the subject (never the subject itself), signed by the reporter key (EIP-191
 * personal_sign over a canonical digest, so anyone recovers the signer's address). Each redacted line names
 * that entry by seq. This module holds the body's format, its signing, and the one rule that decides whether
 * a redacted line is validly covered (`ErasureCheck`, called by `audit verify`).
 *
 *   digest    = keccak256(utf8("FlyTrap erasure record v1\n" || canonicalJSON(body without signature)))
 *   signature = personal_sign(digest)            (the 32 digest bytes are the message)
 *   subject   = keccak256(0x03 || salt || utf8(lower-case subject))     salt: 32 random bytes, not kept
 */
import { getAddress, getBytes, hexlify, isAddress, keccak256, randomBytes, toUtf8Bytes, verifyMessage } from 'ethers'
import { canonicalJson, entryLeaf, type JournalRecord } from './entry.js'

/** One redacted entry as the erasure record lists it: [seq, t, leaf]. */
export type RedactedRef = [seq: number, t: number, leaf: string]

export interface ErasureBody {
  v: 1
  /** Unix ms: when the entries were redacted (the `redactedAt` of every line listed). */
  at: number
  /** On whose request (free text: a ticket, the data subject, a DPO). */
  requestedBy: string
  /** The legal basis given (`--reason`). */
  basis: string
  /** Salted commitment to the subject: keccak256(0x03 || salt || utf8(subject lower-cased)). */
  subject: string
  /** Every entry redacted, in seq order. */
  redacts: RedactedRef[]
  /** The reporter address that signed (checksummed). */
  signer: string
  /** EIP-191 personal_sign of erasureDigest(body). */
  signature: string
}

/** What signs: an ethers Wallet (or any signer with the same two members). */
export interface ErasureSigner {
  readonly address: string
  signMessage(message: Uint8Array): Promise<string>
}

const DOMAIN = 'FlyTrap erasure record v1\n'
const HASH = /^0x[0-9a-f]{64}$/
const SIG = /^0x[0-9a-fA-F]{130}$/
const BODY_KEYS = ['v', 'at', 'requestedBy', 'basis', 'subject', 'redacts', 'signer', 'signature']

/** The digest the reporter signs: every field of the body except the signature, canonically encoded. */
export function erasureDigest(body: Omit<ErasureBody, 'signature'> & { signature?: string }): string {
  const { signature: _sig, ...signed } = body
  return keccak256(toUtf8Bytes(DOMAIN + canonicalJson(signed)))
}

/** A fresh commitment to a subject; the salt is for the operator to keep (or hand over), never stored. */
export function commitSubject(subject: string, salt = hexlify(randomBytes(32))): { commitment: string; salt: string } {
  const bytes = new Uint8Array([0x03, ...getBytes(salt), ...toUtf8Bytes(subject.trim().toLowerCase())])
  return { commitment: keccak256(bytes), salt }
}

/** Builds and signs the body of an erasure record. */
export async function signErasure(
  signer: ErasureSigner,
  o: { at: number; requestedBy: string; basis: string; subjectCommitment: string; redacts: RedactedRef[] },
): Promise<ErasureBody> {
  const unsigned = { v: 1 as const, at: o.at, requestedBy: o.requestedBy, basis: o.basis, subject: o.subjectCommitment, redacts: [...o.redacts].sort((a, b) => a[0] - b[0]), signer: getAddress(signer.address) }
  const signature = await signer.signMessage(getBytes(erasureDigest(unsigned)))
  return { ...unsigned, signature }
}

/** The body of an erasure entry, strictly checked, with its recovered signer; or why it is not one. */
export function readErasure(raw: unknown): { ok: true; body: ErasureBody; recovered: string } | { ok: false; why: string } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, why: 'no erasure body' }
  const b = raw as Record<string, unknown>
  for (const k of Object.keys(b)) if (!BODY_KEYS.includes(k)) return { ok: false, why: `unexpected field "${k}"` }
  if (b.v !== 1) return { ok: false, why: 'unknown version' }
  if (!Number.isSafeInteger(b.at)) return { ok: false, why: 'bad at' }
  if (typeof b.requestedBy !== 'string' || typeof b.basis !== 'string' || b.basis.trim() === '') return { ok: false, why: 'bad requestedBy or basis' }
  if (typeof b.subject !== 'string' || !HASH.test(b.subject)) return { ok: false, why: 'bad subject commitment' }
  if (!Array.isArray(b.redacts)) return { ok: false, why: 'bad redacts' }
  let last = 0
  for (const x of b.redacts as unknown[]) {
    if (!Array.isArray(x) || x.length !== 3 || !Number.isSafeInteger(x[0]) || x[0] <= last || !Number.isSafeInteger(x[1]) || typeof x[2] !== 'string' || !HASH.test(x[2])) {
      return { ok: false, why: 'bad redacts list' }
    }
    last = x[0] as number
  }
  if (typeof b.signer !== 'string' || !isAddress(b.signer)) return { ok: false, why: 'bad signer' }
  if (typeof b.signature !== 'string' || !SIG.test(b.signature)) return { ok: false, why: 'bad signature' }
  const body = b as unknown as ErasureBody
  let recovered: string
  try {
    recovered = verifyMessage(getBytes(erasureDigest(body)), body.signature)
  } catch {
    return { ok: false, why: 'the signature does not verify' }
  }
  if (recovered.toLowerCase() !== body.signer.toLowerCase()) return { ok: false, why: `the signature is not by the signer it names (it recovers to ${recovered})` }
  return { ok: true, body, recovered }
}

/** A redacted line that is not validly covered, or an erasure record that is not valid. */
export interface ErasureProblem {
  kind: 'redaction'
  file: string
  line: number
  seq: number
  message: string
}

type Located = { file: string; line: number }
type Redacted = Extract<JournalRecord, { redacted: true }>
type Full = Extract<JournalRecord, { redacted: false }>

interface ErasureSeen extends Located {
  seq: number
  /** The body when valid, else why not. */
  state: { ok: true; body: ErasureBody; bySeq: Map<number, RedactedRef> } | { ok: false; why: string }
}

/**
 * The rule verify applies to redactions. Feed it every redacted line and every erasure entry in journal
 * order, then `finish()`: a redacted line counts only when the erasure record it names is in the journal
 * after it, unaltered (content matches its leaf), validly signed by a trusted reporter, and lists the
 * line's seq with its t and leaf, its `at` being the line's redactedAt. `trusted`: the reporter addresses
 * verification trusts (from the chain); null when no chain was checked (signatures are then still checked,
 * and a warning says who signed). `lookup` finds an erasure record outside the lines fed (a --from/--to scan).
 */
export class ErasureCheck {
  private readonly trusted: Set<string> | null
  private readonly redactions: (Redacted & Located)[] = []
  private readonly erasures = new Map<number, ErasureSeen>()

  constructor(private readonly opts: { trusted: readonly string[] | null; lookup?: (seq: number) => Promise<(Located & { record: JournalRecord }) | null> }) {
    this.trusted = opts.trusted ? new Set(opts.trusted.map((a) => a.toLowerCase())) : null
  }

  /** A redacted line. */
  redaction(r: Redacted, file: string, line: number): void {
    this.redactions.push({ ...r, file, line })
  }

  /** A full entry: remembered when it is an erasure record. */
  entry(r: Full, file: string, line: number): void {
    if (r.entry.kind === 'erasure') this.erasures.set(r.seq, this.judge(r, file, line))
  }

  private judge(r: Full, file: string, line: number): ErasureSeen {
    const seen = { seq: r.seq, file, line }
    if (entryLeaf(r.salt, r.entry) !== r.leaf) return { ...seen, state: { ok: false, why: 'it was changed after it was written (its content no longer matches its leaf)' } }
    const got = readErasure(r.entry.erasure)
    if (!got.ok) return { ...seen, state: got }
    if (this.trusted && !this.trusted.has(got.recovered.toLowerCase())) {
      return { ...seen, state: { ok: false, why: `it is signed by ${got.recovered}, which is not a reporter this verification trusts` } }
    }
    return { ...seen, state: { ok: true, body: got.body, bySeq: new Map(got.body.redacts.map((x) => [x[0], x])) } }
  }

  async finish(): Promise<{ problems: ErasureProblem[]; warnings: string[]; erasures: number }> {
    const problems: ErasureProblem[] = []
    const warnings: string[] = []
    for (const e of this.erasures.values()) {
      if (!e.state.ok) problems.push({ kind: 'redaction', file: e.file, line: e.line, seq: e.seq, message: `${e.file}:${e.line}: erasure record seq ${e.seq} is not valid: ${e.state.why}` })
    }
    const signers = new Set<string>()
    for (const r of this.redactions) {
      const at = `${r.file}:${r.line}`
      const fail = (why: string) => problems.push({ kind: 'redaction', file: r.file, line: r.line, seq: r.seq, message: `${at}: redacted entry seq ${r.seq} ${why}` })
      if (r.erasure === undefined) {
        fail('names no erasure record: a redaction no signed erasure record covers (made by hand?)')
        continue
      }
      const e = await this.erasure(r.erasure)
      if (!e) {
        fail(`names erasure record seq ${r.erasure}, which is not in the journal as a full erasure entry`)
        continue
      }
      if (!e.state.ok) {
        fail(`is covered by erasure record seq ${r.erasure} (${e.file}:${e.line}), which is not valid: ${e.state.why}`)
        continue
      }
      if (r.erasure <= r.seq) {
        fail(`names erasure record seq ${r.erasure}, which precedes it`)
        continue
      }
      const ref = e.state.bySeq.get(r.seq)
      if (!ref) {
        fail(`is not listed by erasure record seq ${r.erasure}`)
        continue
      }
      const body = e.state.body
      if (ref[1] !== r.t) fail(`has t ${r.t}, but erasure record seq ${r.erasure} signed t ${ref[1]}: its time was edited`)
      else if (ref[2] !== r.leaf) fail(`has leaf ${r.leaf}, but erasure record seq ${r.erasure} signed ${ref[2]}`)
      else if (r.redactedAt !== body.at) fail(`has redactedAt ${r.redactedAt ?? '(none)'}, but erasure record seq ${r.erasure} signed ${body.at}: it was edited`)
      else signers.add(body.signer)
    }
    if (!this.trusted && signers.size > 0) warnings.push(`redactions are signed by ${[...signers].join(', ')}; not checked against the contract's reporters (no chain)`)
    return { problems, warnings, erasures: this.erasures.size }
  }

  private async erasure(seq: number): Promise<ErasureSeen | null> {
    const known = this.erasures.get(seq)
    if (known) return known
    const found = await this.opts.lookup?.(seq)
    if (!found || found.record.redacted || found.record.entry.kind !== 'erasure') return null
    const e = this.judge(found.record, found.file, found.line)
    this.erasures.set(seq, e)
    return e
  }
}
