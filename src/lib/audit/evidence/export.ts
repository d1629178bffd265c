/**
 * `audit export`: builds an evidence bundle (format.ts) from the journal (read-only queries of
 * journal-files.ts) and the chain (the contract's own logs, read once from the deployment block): the
 * reporter's anchors covering the time range, rounded out to whole anchored ranges; every entry the scope
 * needs with content and salt (redactions with their erasure records) and its Merkle path; the scope-index
 * openings of a filtered bundle; the policy events and summaries select.ts calls for; the member records of
 * the committed sensitive reports the scope discloses (recomputed from the journal, refused when they are not
 * the root on chain), the openings of committed reasons (the owner's reasons.jsonl), and for each allowed
 * access the policy event that allowed it (grants.ts replayed over the cited events, citing more when that
 * replay would differ from the full policy's); signed by the reporter key. It refuses to export a period
 * whose journal no longer matches its anchor (`audit verify` says why).
 */
import { getAddress, Interface, type Log } from 'ethers'
import { abi } from '../../chain/artifacts/FlyTrap.js'
import { getLogsChunked, type FlyTrapClient } from '../../chain/client.js'
import { ReporterHistory } from '../../chain/reporters.js'
import { FlytrapError } from '../../errors.js'
import { provenLeaf, type JournalEntry, type JournalRecord } from '../entry.js'
import type { ErasureBody, ErasureSigner } from '../erasure.js'
import { findRecord, periodIndex, rangeTally, readRecords } from '../journal-files.js'
import { merkleProof, merkleRoot } from '../merkle.js'
import { commitRecords, memberLeaf, membersRecords, type MembersCommitment } from '../sensitive-members.js'
import type { PeriodTally } from '../tally.js'
import { parseReason, type ReasonDisclosure } from '../../chain/reasons.js'
import { BUNDLE_FORMAT, BUNDLE_VERSION, encodeArgs, type BundleAnchor, type BundleEntry, type BundleErasure, type BundleGrant, type BundleMember, type BundlePeriod, type BundleReason, type CitedEvent, type DisclosedEntry, type EvidenceBundle, type IndexOpening } from './format.js'
import { absenceProof, bundleKeys, membershipProof } from './scope-rules.js'
import type { ScopeIndex } from '../scope-index.js'
import { chainOrder, POLICY_EVENTS, refKey, REPORTER_EVENT_NAMES, selectPolicy, selectSummaries, SUMMARY_EVENTS, topicIdOf, topicsOverlap } from './select.js'
import { grantedEntries, replayGrants } from './grant-rules.js'
import { signBundle } from './signature.js'

export interface ExportOptions {
  client: FlyTrapClient
  chainId: number
  /** The contract's deployment block. */
  deployBlock: number
  dataDir: string
  /** Unix ms, half-open; rounded out to the anchored ranges that overlap it. */
  fromMs: number
  toMs: number
  topic?: string
  /** A client address. */
  clientAddress?: string
  /** The reporter key: it signs, and its anchors are the bundle's. */
  signer: ErasureSigner
  chunk?: number
  now?: number
  /** Openings of committed reasons by commitment (0x…, config/reasons.ts readReasons): disclosed when a cited event carries one. */
  reasons?: ReadonlyMap<string, ReasonDisclosure>
}

export interface ExportSummary {
  bundle: EvidenceBundle
  /** Notes for the user: rounding, clipping, missing index commitments. */
  notes: string[]
}

const iface = new Interface(abi)
const iso = (ms: number) => new Date(ms).toISOString()

/** Every log of the contract from the deployment to `toBlock`, decoded to the bundle's canonical form. */
export async function contractEvents(client: FlyTrapClient, fromBlock: number, toBlock: number, chunk?: number): Promise<CitedEvent[]> {
  const logs: Log[] = await getLogsChunked(client.provider, { address: client.address, topics: [] }, fromBlock, chunk, toBlock)
  const mine = logs.filter((l) => l.address.toLowerCase() === client.address.toLowerCase())
  // Each log's block time (ref.time): one block read per distinct block, a few at a time.
  const times = new Map<number, number>()
  const numbers = [...new Set(mine.map((l) => l.blockNumber))]
  for (let i = 0; i < numbers.length; i += 16) {
    await Promise.all(
      numbers.slice(i, i + 16).map(async (n) => {
        const b = await client.provider.getBlock(n)
        if (!b) throw new FlytrapError(`block ${n} is not available from this node`, { exit: 'unreachable' })
        times.set(n, b.timestamp)
      }),
    )
  }
  const out: CitedEvent[] = []
  for (const log of mine) {
    const parsed = iface.parseLog({ topics: [...log.topics], data: log.data })
    if (!parsed) continue
    out.push({ event: parsed.name, args: encodeArgs(parsed.fragment.inputs, parsed.args), ref: { txHash: log.transactionHash.toLowerCase(), blockNumber: log.blockNumber, blockHash: (log.blockHash ?? '').toLowerCase(), logIndex: log.index, time: times.get(log.blockNumber)! } })
  }
  return out.sort(chainOrder)
}

const str = (v: unknown) => String(v)

function toAnchor(e: CitedEvent): BundleAnchor {
  const a = e.args
  return {
    reporter: getAddress(str(a.reporter)),
    fromTime: Number(a.fromTime),
    toTime: Number(a.toTime),
    firstSeq: Number(a.firstSeq),
    count: Number(a.count),
    root: str(a.root),
    index: a.index === undefined ? null : str(a.index),
    chain: str(a.chain),
    ref: e.ref,
  }
}

/** Builds and signs the bundle. */
export async function exportBundle(o: ExportOptions): Promise<ExportSummary> {
  const notes: string[] = []
  const provider = o.client.provider
  const headNo = await provider.getBlockNumber()
  const head = await provider.getBlock(headNo)
  if (!head?.hash) throw new FlytrapError(`block ${headNo} is not available from this node`, { exit: 'unreachable' })
  const events = await contractEvents(o.client, o.deployBlock, headNo, o.chunk)
  const history = new ReporterHistory()
  for (const e of events) if ((REPORTER_EVENT_NAMES as readonly string[]).includes(e.event)) history.add(str(e.args.reporter), [e.ref.blockNumber, e.ref.logIndex], e.event === 'ReporterAdded')
  const me = o.signer.address.toLowerCase()
  const registered = (e: CitedEvent) => history.registeredAt(str(e.args.reporter), [e.ref.blockNumber, e.ref.logIndex])
  const anchors = events.filter((e) => e.event === 'Anchored' && str(e.args.reporter) === me && registered(e)).map(toAnchor)
  if (anchors.length === 0) {
    throw new FlytrapError(`no anchors by ${getAddress(me)} on this contract: a bundle is signed by the reporter key that anchored the journal`, { exit: 'config', suggestions: ['pass the proxy\'s --reporter-key as --key'] })
  }
  const chosen = anchors.filter((a) => a.toTime * 1000 > o.fromMs && a.fromTime * 1000 < o.toMs).sort((a, b) => a.fromTime - b.fromTime)
  if (chosen.length === 0) {
    throw new FlytrapError(`no anchored period overlaps ${iso(o.fromMs)}..${iso(o.toMs)} (anchors by ${getAddress(me)} cover ${iso(anchors[0]!.fromTime * 1000)}..${iso(anchors.at(-1)!.toTime * 1000)})`, { exit: 'usage' })
  }
  const scopeFrom = chosen[0]!.fromTime * 1000
  const scopeTo = chosen.at(-1)!.toTime * 1000
  notes.push(`the range is rounded out to whole anchored periods: ${iso(scopeFrom)}..${iso(scopeTo)}`)
  if (scopeTo < o.toMs) notes.push(`the periods after ${iso(scopeTo)} are not anchored yet and are not in the bundle`)
  const scope = { topic: o.topic ?? null, client: o.clientAddress ? o.clientAddress.toLowerCase() : null }
  const { keys, wholePeriod: whole } = bundleKeys(scope)

  // The journal, one anchored range at a time; each must still be what was anchored.
  const byAnchor = chosen.map(() => [] as JournalRecord[])
  for await (const { record } of readRecords(o.dataDir, { fromMs: scopeFrom, toMs: scopeTo })) {
    const i = chosen.findIndex((a) => a.fromTime * 1000 <= record.t && record.t < a.toTime * 1000)
    if (i >= 0) byAnchor[i]!.push(record)
  }
  const periods: BundlePeriod[] = []
  const erasureSeqs = new Set<number>()
  let noIndex = 0
  for (const [i, a] of chosen.entries()) {
    const recs = byAnchor[i]!
    const leaves = recs.map((r) => provenLeaf(r))
    if (recs.length !== a.count || merkleRoot(leaves) !== a.root || (recs.length > 0 && recs[0]!.seq !== a.firstSeq)) {
      throw new FlytrapError(`the journal's period ${iso(a.fromTime * 1000)}..${iso(a.toTime * 1000)} no longer matches its anchor (tx ${a.ref.txHash}): nothing to export as evidence; run \`flytrap audit verify\``, { exit: 'verification' })
    }
    let disclose: Set<number>
    const openings: IndexOpening[] = []
    if (whole) disclose = new Set(recs.map((r) => r.seq))
    else {
      // The stored rows when there are some (after audit forget, erased keys keep only their hashes), else recomputed.
      const index = await periodIndex(o.dataDir, a).catch((err: Error) => {
        throw new FlytrapError(`the stored scope index of ${iso(a.fromTime * 1000)}..${iso(a.toTime * 1000)} is not valid (${err.message}): a filtered bundle cannot be built from it; run \`flytrap audit verify\``, { exit: 'verification' })
      })
      const indexRoot = index.root
      disclose = new Set()
      if (a.index === null || a.index === undefined) noIndex++
      else if (a.index !== indexRoot) {
        throw new FlytrapError(`the scope index recomputed from the journal for ${iso(a.fromTime * 1000)}..${iso(a.toTime * 1000)} is not the one anchored (tx ${a.ref.txHash}); run \`flytrap audit verify\``, { exit: 'verification' })
      }
      if (a.index !== null) {
        for (const key of keys) {
          const o2 = openKey(index, key)
          openings.push(o2)
          if (!('absent' in o2)) for (const s of o2.seqs) disclose.add(s)
        }
      }
    }
    const entries: BundleEntry[] = []
    recs.forEach((r, j) => {
      if (!disclose.has(r.seq)) return
      const siblings = merkleProof(leaves, j).siblings
      if (r.redacted) {
        entries.push({ seq: r.seq, redacted: true, t: r.t, leaf: r.leaf, redactedAt: r.redactedAt ?? null, erasure: r.erasure ?? null, siblings })
        if (r.erasure !== undefined) erasureSeqs.add(r.erasure)
      } else entries.push({ seq: r.seq, entry: r.entry, salt: r.salt, siblings })
    })
    periods.push({ anchor: a, entries, openings })
  }
  if (noIndex > 0) notes.push(`${noIndex} period(s) are anchored without a scope index: a filtered bundle cannot prove its completeness there (audit check fails them)`)

  // Erasure records named by redactions, with their own anchored path when anchored.
  const erasures: BundleErasure[] = []
  for (const seq of [...erasureSeqs].sort((x, y) => x - y)) {
    const at = await findRecord(o.dataDir, seq)
    if (!at || at.record.redacted || at.record.entry.kind !== 'erasure') throw new FlytrapError(`erasure record seq ${seq} is not in the journal as a full entry`, { exit: 'verification' })
    const rec = at.record
    const a = anchors.find((x) => x.fromTime * 1000 <= rec.t && rec.t < x.toTime * 1000) ?? null
    let siblings: string[] = []
    if (a) {
      const leaves: string[] = []
      let idx = -1
      for await (const { record } of readRecords(o.dataDir, { fromMs: a.fromTime * 1000, toMs: a.toTime * 1000 })) {
        if (record.seq === seq) idx = leaves.length
        leaves.push(provenLeaf(record))
      }
      siblings = merkleProof(leaves, idx).siblings
    }
    erasures.push({ seq, entry: rec.entry as JournalEntry & { erasure: ErasureBody }, salt: rec.salt, anchor: a, siblings })
  }

  const summaries = selectSummaries(events.filter((e) => !(SUMMARY_EVENTS as readonly string[]).includes(e.event) || registered(e)), { fromMs: scopeFrom, toMs: scopeTo }, headNo)
  const disclosed = periods.flatMap((p) => p.entries.filter((e): e is DisclosedEntry => !('redacted' in e)))
  const members = await memberDisclosures(o.dataDir, summaries, scope, disclosed)
  const { policy, grants } = grantsOf(events.filter((e) => e.ref.blockNumber <= headNo), selectPolicy(events, scope, headNo), disclosed)
  const reasons = reasonOpenings(policy, o.reasons)
  const undisclosed = new Set(policy.flatMap((e) => (typeof e.args.reason === 'string' && parseReason(e.args.reason).committed ? [e.args.reason] : [])))
  for (const r of reasons) undisclosed.delete(r.commitment)
  if (undisclosed.size > 0) notes.push(`${undisclosed.size} committed reason(s) of the cited policy events have no opening here (--reasons): they stay undisclosed`)
  const bundle = await signBundle(o.signer, {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    createdAt: o.now ?? Date.now(),
    deployment: {
      chainId: o.chainId,
      contract: getAddress(o.client.address),
      deploymentBlock: o.deployBlock,
      asOf: { blockNumber: headNo, blockHash: head.hash.toLowerCase() },
      reporters: events.filter((e) => (REPORTER_EVENT_NAMES as readonly string[]).includes(e.event)),
    },
    scope: { requested: { fromMs: o.fromMs, toMs: o.toMs }, fromMs: scopeFrom, toMs: scopeTo, topic: scope.topic, client: scope.client },
    periods,
    erasures,
    policy,
    summaries,
    members,
    reasons,
    grants,
  })
  return { bundle, notes }
}

/** The opening of one key in a period's index: membership with its seqs, or absence by its neighbours. */
export function openKey(index: ScopeIndex, key: string): IndexOpening {
  const m = membershipProof(index, key)
  if (m) return { key, seqs: m.seqs, index: m.index, count: m.count, siblings: m.siblings }
  const a = absenceProof(index, key)
  if (!a) throw new FlytrapError(`the index row of "${key}" keeps no seqs (erased by audit forget): its entries cannot be disclosed`, { exit: 'verification' })
  const n = (x: typeof a.left) => (x ? { keyHash: x.keyHash, seqsDigest: x.seqsDigest, index: x.index, count: x.count, siblings: x.siblings } : null)
  return { key, absent: true, left: n(a.left), right: n(a.right) }
}

// ------------------------------------------------------------------ member records, grants, reasons

/**
 * The member records the scope discloses, of every cited committed SensitiveReport: recomputed from the
 * journal's tally of the report's interval (the same entries the reporter counted), refused when they do not
 * give the membersRoot on chain. Client scope: that address's records; topic scope: every record of a report
 * whose topic overlaps the scope's or is the topic of a disclosed entry; whole journal: every record.
 */
async function memberDisclosures(dataDir: string, summaries: CitedEvent[], scope: { topic: string | null; client: string | null }, disclosed: DisclosedEntry[]): Promise<BundleMember[]> {
  const tallies = new Map<string, Promise<PeriodTally>>()
  const entryTopics = new Set(disclosed.flatMap((e) => (e.entry.topic ? [e.entry.topic] : [])))
  const out: BundleMember[] = []
  for (const [i, ev] of summaries.entries()) {
    if (ev.event !== 'SensitiveReport') continue
    const from = Number(ev.args.fromTime) * 1000
    const to = Number(ev.args.toTime) * 1000
    const k = `${from}:${to}`
    if (!tallies.has(k)) tallies.set(k, rangeTally(dataDir, from, to))
    const tally = await tallies.get(k)!
    const id = String(ev.args.topic).toLowerCase()
    let name: string | null = null
    let c: MembersCommitment = commitRecords([])
    for (const [topic, st] of tally.sensitive) {
      if (topicIdOf(topic) !== id) continue
      name = topic
      c = membersRecords(st)
    }
    if (c.membersRoot.toLowerCase() !== String(ev.args.membersRoot).toLowerCase()) {
      throw new FlytrapError(`the member records recomputed from the journal for the sensitive report of ${iso(from)}..${iso(to)} (tx ${ev.ref.txHash}) do not give the membersRoot on chain (entries erased or altered since); run \`flytrap audit verify\``, { exit: 'verification' })
    }
    const wanted =
      scope.client !== null ? (a: string) => a === scope.client : scope.topic !== null ? (name !== null && (topicsOverlap(name, scope.topic) || entryTopics.has(name)) ? () => true : () => false) : () => true
    const leaves = c.records.map(memberLeaf)
    c.records.forEach((r, j) => {
      if (!wanted(r.address)) return
      const p = merkleProof(leaves, j)
      out.push({ summary: i, record: { address: r.address, role: r.role, count: r.count }, salt: r.salt, proof: { index: p.index, count: p.count, siblings: p.siblings } })
    })
  }
  return out
}

/**
 * The cited policy events and each entry's grant: the scope's events (select.ts), plus the events the full
 * policy's answers name and their topics' TopicAdded; if the replay of that set still answers differently
 * from the full policy's (another owner's registration, a revoke on a topic outside the scope), every topic
 * registration, transfer and removal too; at worst every policy event.
 */
function grantsOf(all: CitedEvent[], base: CitedEvent[], disclosed: DisclosedEntry[]): { policy: CitedEvent[]; grants: BundleGrant[] } {
  const policyAll = all.filter((e) => (POLICY_EVENTS as readonly string[]).includes(e.event))
  const entries = grantedEntries(disclosed)
  const truth = replayGrants(policyAll, entries)
  const byKey = new Map(policyAll.map((e) => [refKey(e), e]))
  const causes = truth.flatMap((k) => (k ? [byKey.get(k)!] : []))
  const ids = new Set(causes.map((e) => String(e.args.topic)))
  const union = (...lists: CitedEvent[][]) => {
    const m = new Map<string, CitedEvent>()
    for (const l of lists) for (const e of l) m.set(refKey(e), e)
    return [...m.values()].sort(chainOrder)
  }
  const candidates = [
    union(base, causes, policyAll.filter((e) => e.event === 'TopicAdded' && ids.has(String(e.args.topic)))),
    union(base, causes, policyAll.filter((e) => ids.has(String(e.args.topic)) || ['TopicAdded', 'TopicTransferred', 'TopicRemoved'].includes(e.event))),
    policyAll,
  ]
  const same = (a: (string | null)[]) => a.every((k, i) => k === truth[i])
  const policy = candidates.find((c) => same(replayGrants(c, entries)))!
  const index = new Map(policy.map((e, i) => [refKey(e), i]))
  return { policy, grants: entries.map((e, i) => ({ seq: e.seq, policy: truth[i] === null ? null : index.get(truth[i]!)! })) }
}

/** The openings of the committed reasons of the cited events that `known` has, in order of first citation. */
function reasonOpenings(policy: CitedEvent[], known: ReadonlyMap<string, ReasonDisclosure> | undefined): BundleReason[] {
  const out: BundleReason[] = []
  const seen = new Set<string>()
  for (const e of policy) {
    if (typeof e.args.reason !== 'string') continue
    const p = parseReason(e.args.reason)
    if (!p.committed || seen.has(p.commitment)) continue
    seen.add(p.commitment)
    const d = known?.get(p.commitment)
    if (d) out.push({ commitment: e.args.reason, salt: d.salt.toLowerCase(), text: d.text })
  }
  return out
}
