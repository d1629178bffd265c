/**
 * `audit export`: builds an evidence bundle (format.ts) from the journal (read-only queries of
 * journal-files.ts) and the chain (the contract's own logs, read once from the deployment block): the
 * reporter's anchors covering the time range, rounded out to whole anchored ranges; every entry the scope
 * needs with content and salt (redactions with their erasure records) and its Merkle path; the scope-index
 * openings of a filtered bundle; the policy events and summaries select.ts calls for; signed by the reporter
 * key. It refuses to export a period whose journal no longer matches its anchor (`audit verify` says why).
 */
import { getAddress, Interface, type Log } from 'ethers'
import { abi } from '../../chain/artifacts/FlyTrap.js'
import { getLogsChunked, type FlyTrapClient } from '../../chain/client.js'
import { ReporterHistory } from '../../chain/reporters.js'
import { FlytrapError } from '../../errors.js'
import { provenLeaf, type JournalEntry, type JournalRecord } from '../entry.js'
import type { ErasureBody, ErasureSigner } from '../erasure.js'
import { findRecord, periodIndex, readRecords } from '../journal-files.js'
import { merkleProof, merkleRoot } from '../merkle.js'
import { BUNDLE_FORMAT, BUNDLE_VERSION, encodeArgs, type BundleAnchor, type BundleEntry, type BundleErasure, type BundlePeriod, type CitedEvent, type EvidenceBundle, type IndexOpening } from './format.js'
import { absenceProof, bundleKeys, membershipProof } from './scope-rules.js'
import type { ScopeIndex } from '../scope-index.js'
import { chainOrder, REPORTER_EVENT_NAMES, selectPolicy, selectSummaries, SUMMARY_EVENTS } from './select.js'
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
  const out: CitedEvent[] = []
  for (const log of logs) {
    if (log.address.toLowerCase() !== client.address.toLowerCase()) continue
    const parsed = iface.parseLog({ topics: [...log.topics], data: log.data })
    if (!parsed) continue
    out.push({ event: parsed.name, args: encodeArgs(parsed.fragment.inputs, parsed.args), ref: { txHash: log.transactionHash.toLowerCase(), blockNumber: log.blockNumber, blockHash: (log.blockHash ?? '').toLowerCase(), logIndex: log.index } })
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
    policy: selectPolicy(events, scope, headNo),
    summaries,
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
