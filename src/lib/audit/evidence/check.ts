/**
 * `audit check`: verifies an evidence bundle with only the bundle and a chain node (docs/evidence.md has the
 * recipe this follows step by step). Offline: structure, every leaf from content + salt, every Merkle path to
 * its anchored root, the scope index openings and completeness, the erasure records of redactions, the
 * member records of committed sensitive reports (proofs, and counts and salts against the disclosed entries),
 * the reason openings, the grant of every allowed access (rules (a)/(b) and the replay of the cited policy),
 * and the signature. With a provider: every anchor, policy event, summary and reporter event against the chain
 * (receipt, log index, emitting contract, decoded arguments, block hash and time), the deployment block, the reporter
 * registered at each anchor (replayed from the chain's own ReporterAdded/ReporterRemoved, never the bundle's),
 * and that no policy event or summary the scope calls for was left out. Isomorphic: ethers and pure code
 * only, the provider is passed in (the auditor UI runs the same check in the browser).
 */
import { getAddress, Interface, ZeroHash, type Log, type Provider, type TransactionReceipt } from 'ethers'
import { abi } from '../../chain/artifacts/FlyTrap.js'
import { ReporterHistory } from '../../chain/reporters.js'
import { canonicalJson, entryLeaf } from '../entry.js'
import { readErasure } from '../erasure.js'
import { verifyProof } from '../merkle.js'
import { memberSalt, verifyRecord } from '../sensitive-members.js'
import { checkReason, parseReason } from '../../chain/reasons.js'
import { BundleFormatError, encodeArgs, readBundle, type BundleAnchor, type BundleGrant, type BundleMember, type BundlePeriod, type ChainRef, type CitedEvent, type DisclosedEntry, type EvidenceBundle, type IndexAbsence, type IndexMembership } from './format.js'
import { ACCESS, grantedEntries, grantExplains, replayGrants } from './grant-rules.js'
import { bundleKeys, inScope, scopeKeys, verifyAbsence, verifyMembership } from './scope-rules.js'
import { POLICY_EVENTS, REPORTER_EVENT_NAMES, refKey, selectPolicy, selectSummaries, SUMMARY_EVENTS, topicIdOf } from './select.js'
import { recoverBundleSigner } from './signature.js'

/** One record that does not hold: what it is (`entry seq 12`, `anchor of 2026-…`, `policy event Granted …`) and why. */
export interface CheckFailure {
  record: string
  message: string
}

export type StepStatus = 'ok' | 'failed' | 'not-checked'

export interface CheckStep {
  status: StepStatus
  /** How many records this step checked. */
  checked: number
  detail: string
}

export const STEPS = ['structure', 'entries', 'completeness', 'redactions', 'members', 'reasons', 'grants', 'signature', 'deployment', 'anchors', 'policy', 'summaries'] as const
export type StepName = (typeof STEPS)[number]
const CHAIN_STEPS: readonly StepName[] = ['deployment', 'anchors', 'policy', 'summaries']

export interface CheckResult {
  ok: boolean
  /** True when no chain was consulted: the chain steps are then `not-checked` and ok never claims them. */
  offline: boolean
  format: string | null
  version: number | null
  chainId: number | null
  contract: string | null
  signer: string | null
  scope: { fromMs: number; toMs: number; from: string; to: string; topic: string | null; client: string | null; periods: number } | null
  steps: Record<StepName, CheckStep>
  /** Seqs of the disclosed entries that are in scope (full content), and of in-scope redactions. */
  inScope: number[]
  redacted: number[]
  disclosed: number
  failures: CheckFailure[]
  firstFailure: CheckFailure | null
  warnings: string[]
}

export interface CheckOptions {
  /** A chain node; without it only the offline steps run. */
  provider?: Provider
  /** The contract the regulator trusts (from a deployment record, not from the bundle): the bundle must be for it. */
  contract?: string
  /** The chain id the regulator expects. */
  chainId?: number
  /** Blocks per eth_getLogs request. */
  chunk?: number
}

const iface = new Interface(abi)
const iso = (ms: number) => new Date(ms).toISOString()
const isoSec = (s: number) => iso(s * 1000).replace('.000Z', 'Z')
const periodName = (a: BundleAnchor) => `${isoSec(a.fromTime)}..${isoSec(a.toTime)}`
const anchorRecord = (a: BundleAnchor) => `anchor of ${periodName(a)} (tx ${a.ref.txHash}, log ${a.ref.logIndex})`
const eventRecord = (kind: string, e: CitedEvent) => `${kind} ${e.event} (tx ${e.ref.txHash}, log ${e.ref.logIndex})`

class Steps {
  readonly steps = Object.fromEntries(STEPS.map((s) => [s, { status: 'ok', checked: 0, detail: '' }])) as Record<StepName, CheckStep>
  readonly failures: CheckFailure[] = []

  count(step: StepName, n = 1): void {
    this.steps[step].checked += n
  }

  fail(step: StepName, record: string, message: string): void {
    this.steps[step].status = 'failed'
    this.failures.push({ record, message: `${record}: ${message}` })
  }

  skip(step: StepName, detail: string): void {
    this.steps[step] = { status: 'not-checked', checked: 0, detail }
  }
}

/** Checks a parsed bundle (the JSON value). Never throws for a bad bundle: failures are in the result. */
export async function checkBundle(raw: unknown, opts: CheckOptions = {}): Promise<CheckResult> {
  const s = new Steps()
  const warnings: string[] = []
  const offline = !opts.provider
  const result = (b: EvidenceBundle | null, inScopeSeqs: number[] = [], redacted: number[] = [], disclosed = 0): CheckResult => {
    for (const k of STEPS) if (s.steps[k].status === 'ok' && s.steps[k].detail === '') s.steps[k].detail = `${s.steps[k].checked} checked`
    const ok = s.failures.length === 0 && STEPS.every((k) => s.steps[k].status === 'ok' || (offline && CHAIN_STEPS.includes(k) && s.steps[k].status === 'not-checked'))
    return {
      ok,
      offline,
      format: b?.format ?? null,
      version: b?.version ?? null,
      chainId: b?.deployment.chainId ?? null,
      contract: b ? getAddress(b.deployment.contract) : null,
      signer: b?.signer ?? null,
      scope: b ? { fromMs: b.scope.fromMs, toMs: b.scope.toMs, from: iso(b.scope.fromMs), to: iso(b.scope.toMs), topic: b.scope.topic, client: b.scope.client, periods: b.periods.length } : null,
      steps: s.steps,
      inScope: inScopeSeqs,
      redacted,
      disclosed,
      failures: s.failures,
      firstFailure: s.failures[0] ?? null,
      warnings,
    }
  }

  // ---- 1. structure
  let b: EvidenceBundle
  try {
    b = readBundle(raw)
  } catch (err) {
    if (!(err instanceof BundleFormatError)) throw err
    s.steps.structure.status = 'failed'
    s.failures.push({ record: err.record, message: err.message })
    for (const k of STEPS.slice(1)) s.skip(k, 'the bundle is malformed')
    return result(null)
  }
  s.count('structure')
  if (opts.contract !== undefined && opts.contract.toLowerCase() !== b.deployment.contract.toLowerCase()) {
    s.fail('structure', 'deployment', `is for contract ${b.deployment.contract}, not the ${getAddress(opts.contract)} this check trusts: its anchors prove nothing about that one`)
  }
  if (opts.chainId !== undefined && opts.chainId !== b.deployment.chainId) s.fail('structure', 'deployment', `is for chain ${b.deployment.chainId}, not chain ${opts.chainId}`)
  const scope = { topic: b.scope.topic, client: b.scope.client }
  const periods = b.periods

  // Periods: one reporter's gap-free anchor sequence, covering the scope exactly.
  const reporter = periods[0]!.anchor.reporter.toLowerCase()
  periods.forEach((p, i) => {
    const a = p.anchor
    if (a.reporter.toLowerCase() !== reporter) s.fail('structure', anchorRecord(a), `is by ${a.reporter}, the bundle's other anchors by ${periods[0]!.anchor.reporter}: one journal has one reporter`)
    const prev = periods[i - 1]?.anchor
    if (prev && (a.fromTime !== prev.toTime || a.firstSeq !== prev.firstSeq + prev.count)) s.fail('structure', anchorRecord(a), `does not continue the anchor before it (${periodName(prev)}, seq ${prev.firstSeq}+${prev.count}): the periods must be one gap-free run`)
  })
  if (b.scope.fromMs !== periods[0]!.anchor.fromTime * 1000 || b.scope.toMs !== periods.at(-1)!.anchor.toTime * 1000) {
    s.fail('structure', 'scope', `covers ${iso(b.scope.fromMs)}..${iso(b.scope.toMs)}, but its anchors cover ${periodName(periods[0]!.anchor)} to ${periodName(periods.at(-1)!.anchor)}`)
  }
  if (b.scope.requested.fromMs < b.scope.fromMs) warnings.push(`the bundle starts at ${iso(b.scope.fromMs)}, after the ${iso(b.scope.requested.fromMs)} asked for: the reporter's anchors start there`)
  if (b.scope.requested.toMs > b.scope.toMs) warnings.push(`the bundle ends at ${iso(b.scope.toMs)}, before the ${iso(b.scope.requested.toMs)} asked for: later periods were not anchored yet at export`)

  // ---- 2. entries: leaf from content + salt, path to the anchored root, at its position
  const inScopeSeqs: number[] = []
  const redactedSeqs: number[] = []
  let disclosed = 0
  for (const p of periods) {
    const a = p.anchor
    let last = 0
    for (const e of p.entries) {
      const record = `entry seq ${e.seq} (period ${periodName(a)})`
      disclosed++
      s.count('entries')
      if (e.seq <= last) s.fail('entries', record, 'entries must be in strictly increasing seq order')
      last = e.seq
      if (e.seq < a.firstSeq || e.seq >= a.firstSeq + a.count) {
        s.fail('entries', record, `is outside the anchored seq range ${a.firstSeq}..${a.firstSeq + a.count - 1}`)
        continue
      }
      const t = 'redacted' in e ? e.t : e.entry.t
      if (t < a.fromTime * 1000 || t >= a.toTime * 1000) s.fail('entries', record, `its time ${iso(t)} is outside the anchored period`)
      const leaf = 'redacted' in e ? e.leaf : entryLeaf(e.salt, e.entry)
      if (!verifyProof(leaf, { index: e.seq - a.firstSeq, count: a.count, siblings: e.siblings }, a.root)) {
        s.fail('entries', record, `${'redacted' in e ? 'its leaf' : 'the leaf recomputed from its content and salt'} and its Merkle path do not lead to the root ${a.root} anchored for this period: the entry, its salt or its proof was altered`)
        continue
      }
      if ('redacted' in e) redactedSeqs.push(e.seq)
      else if (inScope(e.entry, scope)) inScopeSeqs.push(e.seq)
    }
  }

  // ---- 3. completeness
  const { keys, wholePeriod: whole } = bundleKeys(scope)
  for (const p of periods) checkCompleteness(p, whole, keys, s)

  // ---- 4. redactions: each covered by a valid, signed erasure record in the bundle
  const erasures = new Map(b.erasures.map((x) => [x.seq, x]))
  const erasureSigners = new Set<string>()
  for (const x of b.erasures) {
    const record = `erasure record seq ${x.seq}`
    s.count('redactions')
    const got = readErasure(x.entry.erasure)
    if (!got.ok) s.fail('redactions', record, `is not valid: ${got.why}`)
    else erasureSigners.add(got.recovered.toLowerCase())
    if (x.anchor) {
      const a = x.anchor
      if (x.seq < a.firstSeq || x.seq >= a.firstSeq + a.count || !verifyProof(entryLeaf(x.salt, x.entry), { index: x.seq - a.firstSeq, count: a.count, siblings: x.siblings }, a.root)) {
        s.fail('redactions', record, `its content, salt and path do not lead to the root anchored for ${periodName(a)}`)
      }
    } else warnings.push(`${record} is not anchored yet: its signature is checked, its place in the journal is not`)
  }
  for (const p of periods) {
    for (const e of p.entries) {
      if (!('redacted' in e)) continue
      const record = `entry seq ${e.seq} (period ${periodName(p.anchor)})`
      const x = e.erasure === null ? undefined : erasures.get(e.erasure)
      if (!x) {
        s.fail('redactions', record, e.erasure === null ? 'is redacted but names no erasure record' : `is redacted by erasure record seq ${e.erasure}, which the bundle does not carry`)
        continue
      }
      const got = readErasure(x.entry.erasure)
      if (!got.ok) continue // reported above
      const ref = got.body.redacts.find((r) => r[0] === e.seq)
      if (x.seq <= e.seq) s.fail('redactions', record, `names erasure record seq ${x.seq}, which precedes it`)
      else if (!ref) s.fail('redactions', record, `is not listed by erasure record seq ${x.seq}`)
      else if (ref[1] !== e.t || ref[2] !== e.leaf) s.fail('redactions', record, `its t or leaf differ from what erasure record seq ${x.seq} signed`)
      else if (e.redactedAt !== got.body.at) s.fail('redactions', record, `its redactedAt differs from erasure record seq ${x.seq}'s at`)
    }
  }

  // ---- 4b..4d. member records, reason openings, grants
  const disclosedFull = periods.flatMap((p) => p.entries.filter((e): e is DisclosedEntry => !('redacted' in e)))
  checkMembers(b, disclosedFull, s)
  checkReasons(b, s, warnings)
  checkGrants(b, disclosedFull, s)

  // ---- 5..8. the chain
  if (!opts.provider) {
    for (const k of CHAIN_STEPS) s.skip(k, 'offline: no chain node was consulted')
    warnings.push('offline check: anchors, policy events, summaries, the deployment and the reporter registration were NOT checked against the chain')
    for (const signer of erasureSigners) warnings.push(`redactions are signed by ${getAddress(signer)}; not checked against the contract's reporters (offline)`)
  } else {
    await checkChain(b, opts.provider, s, erasureSigners, opts.chunk ?? 50_000)
  }
  // ---- last: the signature (after every specific record, so a changed record is named rather than "the signature")
  s.count('signature')
  const recovered = recoverBundleSigner(b)
  if (recovered === null || recovered !== b.signer) s.fail('signature', 'signature', `does not verify for signer ${b.signer}${recovered ? ` (it recovers to ${recovered}): the bundle was changed after it was signed, or signed by another key` : ''}`)
  else if (b.signer.toLowerCase() !== reporter) s.fail('signature', 'signature', `is by ${b.signer}, but the bundle's anchors are by ${periods[0]!.anchor.reporter}: a bundle is signed by the reporter that anchored it`)

  return result(b, inScopeSeqs, redactedSeqs, disclosed)
}

// ------------------------------------------------------------------ completeness

function checkCompleteness(p: BundlePeriod, whole: boolean, keys: string[], s: Steps): void {
  const a = p.anchor
  const period = periodName(a)
  const bySeq = new Map(p.entries.map((e) => [e.seq, e]))
  s.count('completeness')
  if (whole) {
    if (p.openings.length > 0) s.fail('completeness', `period ${period}`, 'a whole-journal bundle carries no index openings')
    for (let seq = a.firstSeq; seq < a.firstSeq + a.count; seq++) {
      if (!bySeq.has(seq)) {
        s.fail('completeness', `entry seq ${seq} (period ${period})`, `is anchored for this period (seq ${a.firstSeq}..${a.firstSeq + a.count - 1}) but not in the bundle: an entry was left out`)
        return
      }
    }
    return
  }
  if (a.index === null) {
    s.fail('completeness', anchorRecord(a), 'commits to no scope index: the completeness of a filtered bundle cannot be proven for this period')
    return
  }
  const listed = new Map<string, Set<number>>()
  for (const key of keys) {
    const record = `index key "${key}" (period ${period})`
    const found = p.openings.filter((o) => o.key === key)
    if (found.length !== 1) {
      s.fail('completeness', record, found.length === 0 ? 'is not opened: the bundle does not show which entries it lists' : 'is opened more than once')
      return
    }
    const o = found[0]!
    const why = 'absent' in o ? checkAbsence(o, a.index) : checkMembership(o, a)
    if (why) {
      s.fail('completeness', record, why)
      return
    }
    if (!('absent' in o)) {
      listed.set(key, new Set(o.seqs))
      for (const seq of o.seqs) {
        const e = bySeq.get(seq)
        if (!e) {
          s.fail('completeness', `entry seq ${seq} (period ${period})`, `is listed under "${key}" in the period's anchored scope index but not in the bundle: an in-scope entry was left out`)
          return
        }
        if (!('redacted' in e) && !scopeKeys(e.entry).includes(key)) {
          s.fail('completeness', `entry seq ${seq} (period ${period})`, `is listed under "${key}" in the scope index, but its content has no such key: the entry was altered`)
          return
        }
      }
    } else listed.set(key, new Set())
  }
  // A disclosed entry whose own keys include an opened key must be listed under it (else the index lied).
  for (const e of p.entries) {
    if ('redacted' in e) continue
    for (const key of scopeKeys(e.entry)) {
      const l = listed.get(key)
      if (l && !l.has(e.seq)) {
        s.fail('completeness', `entry seq ${e.seq} (period ${period})`, `has the key "${key}", which the anchored scope index does not list it under`)
        return
      }
    }
  }
}

function checkMembership(o: IndexMembership, a: BundleAnchor): string | null {
  for (let i = 0; i < o.seqs.length; i++) {
    if (i > 0 && o.seqs[i]! <= o.seqs[i - 1]!) return 'its seqs are not strictly ascending'
    if (o.seqs[i]! < a.firstSeq || o.seqs[i]! >= a.firstSeq + a.count) return `lists seq ${o.seqs[i]}, outside the period's seqs`
  }
  return verifyMembership(o, a.index!) ? null : `its membership proof does not lead to the scope-index root ${a.index} anchored for this period: its seqs or its proof were altered`
}

function checkAbsence(o: IndexAbsence, root: string): string | null {
  const proof = { key: o.key, ...(o.left ? { left: o.left } : {}), ...(o.right ? { right: o.right } : {}) }
  return verifyAbsence(proof, root) ? null : `its absence proof does not hold against the scope-index root ${root} anchored for this period (the neighbours do not prove or do not enclose the key): the key may well have entries`
}

// ------------------------------------------------------------------ members, reasons, grants

const memberRecord = (role: string, address: string, summary: number) => `member record ${role} ${address} of summary ${summary}`

function checkMembers(b: EvidenceBundle, disclosed: DisclosedEntry[], s: Steps): void {
  const committed = (i: number) => b.summaries[i]?.event === 'SensitiveReport'
  const seen = new Map<string, BundleMember>()
  for (const m of b.members) {
    const record = memberRecord(m.record.role, m.record.address, m.summary)
    s.count('members')
    if (!/^0x[0-9a-f]{40}$/.test(m.record.address) || (m.record.role !== 'publisher' && m.record.role !== 'receiver') || !(m.record.count >= 1)) {
      s.fail('members', record, 'is not a member record: its address must be a lower-case 0x address, its role publisher or receiver, its count a positive integer')
      continue
    }
    if (!committed(m.summary)) {
      s.fail('members', record, b.summaries[m.summary] ? `belongs to summary ${m.summary}, a ${b.summaries[m.summary]!.event}, not a committed SensitiveReport` : `names summary ${m.summary}, which the bundle does not cite`)
      continue
    }
    const key = `${m.summary}:${m.record.role}:${m.record.address}`
    if (seen.has(key)) {
      s.fail('members', record, 'is disclosed twice')
      continue
    }
    seen.set(key, m)
    const root = String(b.summaries[m.summary]!.args.membersRoot)
    if (!verifyRecord({ record: { ...m.record, salt: m.salt }, proof: m.proof }, root)) {
      s.fail('members', record, `its leaf, recomputed from the record and its salt, and its proof do not lead to the membersRoot ${root} on chain: the record, its salt or its proof was altered`)
    }
  }
  // Every sensitive access the bundle discloses is counted in a disclosed record, with that count and salt.
  const need = new Map<string, { role: string; address: string; summary: number; sum: number; first: DisclosedEntry }>()
  const reports = b.summaries.map((e, i) => [e, i] as const).filter(([e]) => e.event === 'SensitiveReport')
  for (const e of disclosed) {
    const x = e.entry
    if (x.outcome !== 'allow' || x.sensitive !== true || (x.kind !== 'publish' && x.kind !== 'deliver') || !x.address || !x.topic) continue
    const address = x.address.toLowerCase()
    if (b.scope.client !== null && address !== b.scope.client) continue
    const role = x.kind === 'publish' ? 'publisher' : 'receiver'
    const id = topicIdOf(x.topic)
    for (const [r, i] of reports) {
      if (String(r.args.topic).toLowerCase() !== id || x.t < Number(r.args.fromTime) * 1000 || x.t >= Number(r.args.toTime) * 1000) continue
      const key = `${i}:${role}:${address}`
      const n = need.get(key)
      if (n) n.sum += x.count ?? 1
      else need.set(key, { role, address, summary: i, sum: x.count ?? 1, first: e })
    }
  }
  for (const [key, n] of need) {
    const record = memberRecord(n.role, n.address, n.summary)
    const m = seen.get(key)
    if (!m) s.fail('members', record, `is not disclosed, though the bundle discloses the entries it counts (entry seq ${n.first.seq} …): a member record was withheld`)
    else if (m.record.count !== n.sum) s.fail('members', record, `counts ${m.record.count}, but the bundle discloses ${n.sum} such access(es) of that address in the report's interval`)
    else if (m.salt !== memberSalt(n.first.salt, m.record.role)) s.fail('members', record, `its salt does not derive from the salt of its first entry (seq ${n.first.seq})`)
  }
}

function checkReasons(b: EvidenceBundle, s: Steps, warnings: string[]): void {
  const cited = new Set(b.policy.flatMap((e) => (typeof e.args.reason === 'string' && parseReason(e.args.reason).committed ? [e.args.reason] : [])))
  const seen = new Set<string>()
  for (const r of b.reasons) {
    const record = `reason ${r.commitment}`
    s.count('reasons')
    if (!/^commit:0x[0-9a-f]{64}$/.test(r.commitment)) s.fail('reasons', record, 'is not a committed reason ("commit:0x" + 64 lower-case hex)')
    else if (seen.has(r.commitment)) s.fail('reasons', record, 'is disclosed twice')
    else if (!checkReason(r.commitment.slice('commit:'.length), r.salt, r.text)) s.fail('reasons', record, 'its text and salt do not open the commitment: the text or the salt was altered')
    else if (!cited.has(r.commitment)) s.fail('reasons', record, 'is the reason of no cited policy event')
    seen.add(r.commitment)
  }
  for (const c of cited) if (!seen.has(c)) warnings.push(`reason ${c}: committed, not disclosed`)
}

function checkGrants(b: EvidenceBundle, disclosed: DisclosedEntry[], s: Steps): void {
  const want = grantedEntries(disclosed)
  const bySeq = new Map(want.map((e) => [e.seq, e]))
  const got = new Map<number, BundleGrant>()
  for (const g of b.grants) {
    const record = `grant of entry seq ${g.seq}`
    s.count('grants')
    if (got.has(g.seq)) s.fail('grants', record, 'is given twice')
    else if (!bySeq.has(g.seq)) s.fail('grants', record, 'names no disclosed allowed publish, subscribe, deliver or will with an address and a topic')
    else if (g.policy !== null && g.policy >= b.policy.length) s.fail('grants', record, `names policy event ${g.policy}, but the bundle cites ${b.policy.length}`)
    got.set(g.seq, g)
  }
  const checked: DisclosedEntry[] = []
  for (const e of want) {
    const record = `grant of entry seq ${e.seq}`
    const g = got.get(e.seq)
    if (!g) {
      s.fail('grants', record, `is missing: the entry is an allowed ${e.entry.kind}, and the bundle must say which cited policy event allowed it (or null)`)
      continue
    }
    if (g.policy !== null) {
      const p = b.policy[g.policy]
      if (!p) continue // reported above
      const why = grantExplains(p, e, b.policy)
      if (why) {
        s.fail('grants', record, why)
        continue
      }
    }
    checked.push(e)
  }
  // The full replay of the cited policy (grants.ts) must name the same event, or nothing.
  const replayed = replayGrants(b.policy, checked)
  checked.forEach((e, i) => {
    const g = got.get(e.seq)!
    const said = g.policy === null ? null : refKey(b.policy[g.policy]!)
    if (replayed[i] !== said) {
      const name = (k: string | null) => (k === null ? 'nothing on chain allowed it' : `${b.policy.find((x) => refKey(x) === k)?.event ?? 'an event'} (${k.replace(':', ', log ')}) allowed it`)
      s.fail('grants', `grant of entry seq ${e.seq}`, `says ${name(said)}, but the cited policy replayed (grants.ts) says ${name(replayed[i]!)} (${ACCESS[e.entry.kind]} of ${e.entry.topic} at ${iso(e.entry.t)})`)
    }
  })
}

// ------------------------------------------------------------------ the chain

async function checkChain(b: EvidenceBundle, provider: Provider, s: Steps, erasureSigners: Set<string>, chunk: number): Promise<void> {
  const contract = b.deployment.contract.toLowerCase()
  const receipts = new Map<string, Promise<TransactionReceipt | null>>()
  const blocks = new Map<number, Promise<{ hash: string; time: number } | null>>()
  const receipt = (h: string) => {
    const k = h.toLowerCase()
    if (!receipts.has(k)) receipts.set(k, provider.getTransactionReceipt(k))
    return receipts.get(k)!
  }
  const block = (n: number) => {
    if (!blocks.has(n)) blocks.set(n, provider.getBlock(n).then((x) => (x?.hash ? { hash: x.hash.toLowerCase(), time: x.timestamp } : null)))
    return blocks.get(n)!
  }
  const blockHash = async (n: number) => (await block(n))?.hash ?? null

  // Deployment: the chain, the contract's first block, the bundle's view of the chain (asOf).
  s.count('deployment')
  const net = await provider.getNetwork()
  if (Number(net.chainId) !== b.deployment.chainId) {
    s.fail('deployment', 'deployment', `the bundle is for chain ${b.deployment.chainId}, the node is on chain ${net.chainId}`)
    for (const k of ['anchors', 'policy', 'summaries'] as const) s.skip(k, 'wrong chain')
    return
  }
  const d = b.deployment.deploymentBlock
  const [codeBefore, codeAt] = await Promise.all([d > 0 ? provider.getCode(contract, d - 1) : Promise.resolve('0x'), provider.getCode(contract, d)])
  if (codeAt === '0x' || codeBefore !== '0x') s.fail('deployment', 'deployment', `the contract ${b.deployment.contract} was not deployed in block ${d}`)
  const head = await provider.getBlockNumber()
  if (b.deployment.asOf.blockNumber > head || (await blockHash(b.deployment.asOf.blockNumber)) !== b.deployment.asOf.blockHash.toLowerCase()) {
    s.fail('deployment', 'deployment', `block ${b.deployment.asOf.blockNumber} (asOf) has not the hash ${b.deployment.asOf.blockHash} on this chain`)
  }

  // Every log of the contract from the deployment: the reporter history (the chain's, never the bundle's) and the selection rules.
  const logs: Log[] = []
  for (let from = d; from <= head; from += chunk) logs.push(...(await provider.getLogs({ address: contract, fromBlock: from, toBlock: Math.min(head, from + chunk - 1) })))
  const decoded: CitedEvent[] = []
  for (const log of logs) {
    if (log.address.toLowerCase() !== contract) continue
    const parsed = iface.parseLog({ topics: [...log.topics], data: log.data })
    if (!parsed) continue
    // time: not read here (the selection rules do not use it); every cited ref's time is checked in onChain.
    decoded.push({ event: parsed.name, args: encodeArgs(parsed.fragment.inputs, parsed.args), ref: { txHash: log.transactionHash.toLowerCase(), blockNumber: log.blockNumber, blockHash: (log.blockHash ?? '').toLowerCase(), logIndex: log.index, time: 0 } })
  }
  const history = new ReporterHistory()
  for (const e of decoded) if ((REPORTER_EVENT_NAMES as readonly string[]).includes(e.event)) history.add(String(e.args.reporter), [e.ref.blockNumber, e.ref.logIndex], e.event === 'ReporterAdded')

  /** The cited event really is that log of this contract, with these arguments, in that block. */
  const onChain = async (ref: ChainRef, event: string, args: Record<string, unknown>): Promise<string | null> => {
    let r: TransactionReceipt | null
    try {
      r = await receipt(ref.txHash)
    } catch {
      r = null
    }
    if (!r) return `transaction ${ref.txHash} is not on this chain`
    if (r.status !== 1) return `transaction ${ref.txHash} failed on chain`
    if (r.blockNumber !== ref.blockNumber) return `transaction ${ref.txHash} is in block ${r.blockNumber}, not ${ref.blockNumber}`
    if (r.blockHash.toLowerCase() !== ref.blockHash.toLowerCase()) return `block ${ref.blockNumber} of transaction ${ref.txHash} has hash ${r.blockHash}, not ${ref.blockHash}`
    const blk = await block(ref.blockNumber)
    if (blk?.hash !== ref.blockHash.toLowerCase()) return `block ${ref.blockNumber} has not the hash ${ref.blockHash} on this chain (reorganised?)`
    if (blk.time !== ref.time) return `its time ${ref.time} is not the timestamp ${blk.time} of block ${ref.blockNumber}`
    const log = r.logs.find((l) => l.index === ref.logIndex)
    if (!log) return `transaction ${ref.txHash} has no log at index ${ref.logIndex}`
    if (log.address.toLowerCase() !== contract) return `the log at index ${ref.logIndex} was emitted by ${log.address}, not the contract ${b.deployment.contract}`
    const parsed = iface.parseLog({ topics: [...log.topics], data: log.data })
    if (!parsed || parsed.name !== event) return `the log at index ${ref.logIndex} is ${parsed ? parsed.name : 'not an event of the contract'}, not ${event}`
    const got = encodeArgs(parsed.fragment.inputs, parsed.args)
    if (canonicalJson(got) !== canonicalJson(args)) {
      const diff = Object.keys(got).filter((k) => canonicalJson(got[k]) !== canonicalJson(args[k] ?? null))
      return `its arguments differ from the log on chain (${diff.join(', ') || 'field set'}: the bundle says ${canonicalJson(Object.fromEntries(diff.map((k) => [k, args[k] ?? null])))}, the chain ${canonicalJson(Object.fromEntries(diff.map((k) => [k, got[k]])))})`
    }
    return null
  }

  // Anchors, and the reporter registered at each (and the signer its reporter).
  const anchors = [...b.periods.map((p) => p.anchor), ...b.erasures.flatMap((x) => (x.anchor ? [x.anchor] : []))]
  for (const a of anchors) {
    s.count('anchors')
    const args: Record<string, unknown> = { reporter: a.reporter.toLowerCase(), fromTime: String(a.fromTime), toTime: String(a.toTime), firstSeq: String(a.firstSeq), count: String(a.count), root: a.root, chain: a.chain }
    if (iface.getEvent('Anchored')!.inputs.some((i) => i.name === 'index')) args.index = a.index ?? ZeroHash
    else if (a.index !== null) {
      s.fail('anchors', anchorRecord(a), 'names a scope-index root, but this contract\'s anchors carry none')
      continue
    }
    const why = await onChain(a.ref, 'Anchored', args)
    if (why) s.fail('anchors', anchorRecord(a), why)
    else if (!history.registeredAt(a.reporter, [a.ref.blockNumber, a.ref.logIndex])) s.fail('anchors', anchorRecord(a), `${a.reporter} was not a registered reporter of the contract at block ${a.ref.blockNumber}`)
  }
  for (const signer of erasureSigners) {
    if (!history.everRegistered().includes(signer)) s.fail('anchors', 'erasure records', `are signed by ${getAddress(signer)}, which was never a registered reporter of this contract`)
  }

  // Policy events: each cited one on chain, none the scope calls for left out.
  const cited = async (step: 'policy' | 'summaries', kind: string, list: CitedEvent[], names: readonly string[]) => {
    for (const e of list) {
      s.count(step)
      if (!names.includes(e.event)) {
        s.fail(step, eventRecord(kind, e), `is not a ${step === 'policy' ? 'policy event' : 'period summary'}`)
        continue
      }
      const why = await onChain(e.ref, e.event, e.args)
      if (why) s.fail(step, eventRecord(kind, e), why)
      else if (step === 'summaries' && !history.registeredAt(String(e.args.reporter), [e.ref.blockNumber, e.ref.logIndex])) s.fail(step, eventRecord(kind, e), `was filed by ${String(e.args.reporter)}, not a registered reporter then`)
    }
  }
  await cited('policy', 'policy event', b.policy, POLICY_EVENTS)
  await cited('summaries', 'summary', b.summaries, SUMMARY_EVENTS)
  for (const e of b.deployment.reporters) {
    const why = await onChain(e.ref, e.event, e.args)
    if (why) s.fail('deployment', eventRecord('reporter event', e), why)
  }
  const scope = { topic: b.scope.topic, client: b.scope.client }
  const asOf = b.deployment.asOf.blockNumber
  const have = (list: CitedEvent[]) => new Set(list.map(refKey))
  const missingPolicy = selectPolicy(decoded, scope, asOf).filter((e) => !have(b.policy).has(refKey(e)))
  if (missingPolicy[0]) s.fail('policy', eventRecord('policy event', missingPolicy[0]), `is on chain and in the bundle's scope, but the bundle leaves it out${missingPolicy.length > 1 ? ` (and ${missingPolicy.length - 1} more)` : ''}`)
  const registered = decoded.filter((e) => !(SUMMARY_EVENTS as readonly string[]).includes(e.event) || history.registeredAt(String(e.args.reporter), [e.ref.blockNumber, e.ref.logIndex]))
  const missingSummaries = selectSummaries(registered, b.scope, asOf).filter((e) => !have(b.summaries).has(refKey(e)))
  if (missingSummaries[0]) s.fail('summaries', eventRecord('summary', missingSummaries[0]), `covers a period of the bundle's scope, but the bundle leaves it out${missingSummaries.length > 1 ? ` (and ${missingSummaries.length - 1} more)` : ''}`)
}
