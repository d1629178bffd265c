/**
 * `audit verify`: re-reads the journal, checks every hash-chain link, recomputes the Merkle root of every
 * anchored range from the entries' content and compares it with the Anchored events on chain, and proves
 * single entries. Only Anchored events of this deployment's contract count, and only from addresses that
 * were registered reporters when they anchored (the 2020 prototype's auditor trusted forged events).
 *
 * What each check catches (docs/audit.md has the full table):
 * - a changed field: the entry's content no longer matches its stored leaf → that exact seq;
 * - a changed field with the stored leaf recomputed: the next line's prev no longer matches → that link;
 * - a deleted or reordered line, a deleted segment: seq gap or order → that line;
 * - a truncated tail: the clean-close checkpoint (head.json) and the anchors' counts;
 * - a journal rewritten and re-chained consistently: only the anchors can tell, per period.
 */
import { getAddress } from 'ethers'
import { existsSync, readdirSync } from 'node:fs'
import { getLogsChunked, type FlyTrapClient } from '../chain/client.js'
import { FlytrapError } from '../errors.js'
import { chainNext, entryLeaf, GENESIS, parseRecord, provenLeaf, type JournalEntry, type JournalRecord } from './entry.js'
import { ErasureCheck, type ErasureProblem } from './erasure.js'
import { JOURNAL_DEFAULTS } from './journal.js'
import { findRecord, journalDir, listSegments, periodBounds, periodOf, rangeProof, readHead, readLines, readMeta, segmentsForRange } from './journal-files.js'
import { MerkleAccumulator, verifyProof, type MerkleProof } from './merkle.js'

/** One Anchored event, from a registered reporter of this contract. */
export interface AnchorRecord {
  reporter: string
  /** The contract's anchor counter (the event's indexed seq). */
  anchorSeq: number
  root: string
  count: number
  /** Unix seconds, half-open [fromTime, toTime). */
  fromTime: number
  toTime: number
  blockNumber: number
  txHash: string
}

/**
 * Anchored events of the client's contract, in chain order, from addresses that were registered reporters
 * at the time (replaying ReporterAdded/ReporterRemoved). Pass the deployment block as fromBlock: reporter
 * registrations before it would be missed otherwise.
 */
export async function fetchAnchors(
  client: FlyTrapClient,
  opts: { fromBlock?: number; toBlock?: number; reporter?: string; chunk?: number } = {},
): Promise<{ anchors: AnchorRecord[]; ignored: number; otherReporters: number; reporters: string[] }> {
  const iface = client.contract.interface
  const topics = ['Anchored', 'ReporterAdded', 'ReporterRemoved'].map((n) => iface.getEvent(n)!.topicHash)
  const logs = await getLogsChunked(client.provider, { address: client.address, topics: [topics] }, opts.fromBlock ?? 0, opts.chunk, opts.toBlock)
  const events = client.parseLogs(logs).sort((a, b) => a.log.blockNumber - b.log.blockNumber || a.log.index - b.log.index)
  const registered = new Set<string>()
  const anchors: AnchorRecord[] = []
  let ignored = 0
  let otherReporters = 0
  const only = opts.reporter?.toLowerCase()
  const everRegistered = new Set<string>()
  for (const e of events) {
    const who = String(e.args[0]).toLowerCase()
    if (e.name === 'ReporterAdded') {
      registered.add(who)
      everRegistered.add(who)
    } else if (e.name === 'ReporterRemoved') registered.delete(who)
    else if (e.name === 'Anchored') {
      if (!registered.has(who)) {
        ignored++
        continue
      }
      if (only && who !== only) {
        otherReporters++
        continue
      }
      anchors.push({
        reporter: getAddress(who),
        anchorSeq: Number(e.args[1]),
        root: String(e.args[2]).toLowerCase(),
        count: Number(e.args[3]),
        fromTime: Number(e.args[4]),
        toTime: Number(e.args[5]),
        blockNumber: e.log.blockNumber,
        txHash: e.log.transactionHash,
      })
    }
  }
  // Addresses whose signatures (erasure records) verification trusts: every registered reporter, narrowed by `reporter`.
  const reporters = [...everRegistered].filter((a) => !only || a === only).map((a) => getAddress(a))
  return { anchors, ignored, otherReporters, reporters }
}

export type ChainProblemKind = 'malformed' | 'content-altered' | 'chain-broken' | 'missing' | 'out-of-order' | 'time-order' | 'segment-name' | 'truncated' | ErasureProblem['kind']

/** Something wrong at one place in the journal. */
export interface ChainProblem {
  kind: ChainProblemKind
  /** Segment file name (in `<dataDir>/journal/`) and 1-based line. */
  file: string
  line: number
  /** The entry concerned (for a damaged line: the seq that was expected there). */
  seq: number | null
  message: string
}

export interface LocalRange {
  root: string
  count: number
  firstSeq: number | null
  lastSeq: number | null
}

export interface PeriodCheck {
  /** Unix seconds, half-open. */
  fromTime: number
  toTime: number
  /** verified: an anchor's root and count match; mismatch: anchors exist and none matches; unanchored: no anchor (yet). */
  status: 'verified' | 'mismatch' | 'unanchored'
  local: LocalRange
  anchors: AnchorRecord[]
  /** For a mismatch: why, and the entry the chain check blames when there is one in this period. */
  message?: string
  culprit?: ChainProblem
}

export interface VerifyReport {
  ok: boolean
  dataDir: string
  range: { from: string | null; to: string | null }
  journal: { segments: number; entries: number; redacted: number; firstSeq: number | null; lastSeq: number | null; firstTime: string | null; lastTime: string | null }
  chain: { ok: boolean; problems: ChainProblem[]; problemCount: number }
  anchors: {
    checked: boolean
    /** Why anchors were not checked (no chain, no contract …). */
    reason?: string
    contract?: string
    reporter?: string
    /** Anchored events from addresses that were not registered reporters (never trusted). */
    ignored: number
    periods: PeriodCheck[]
    verified: number
    mismatched: number
    unanchored: number
  }
  /** One line naming file, line and seq of the first failure; null when ok. */
  firstProblem: string | null
  warnings: string[]
}

export interface VerifyOptions {
  dataDir: string
  /** Read-only contract client; without it only the hash chain is checked. */
  client?: FlyTrapClient
  /** Why there is no client (shown in the report). */
  noChainReason?: string
  /** Block to read events from: the deployment block. */
  fromBlock?: number
  /** Only periods overlapping [fromMs, toMs) and the segments holding them. */
  fromMs?: number
  toMs?: number
  /** Only anchors sent by this reporter (default: the one recorded in meta.json, else every registered reporter). */
  reporter?: string
  /** Local period length for listing unanchored periods (default: the journal's meta.json). */
  periodMs?: number
  /** Stop collecting problem details after this many (all are counted). */
  maxProblems?: number
}

interface Acc {
  tree: MerkleAccumulator
  firstSeq: number | null
  lastSeq: number | null
}

const newAcc = (): Acc => ({ tree: new MerkleAccumulator(), firstSeq: null, lastSeq: null })
const local = (a: Acc): LocalRange => ({ root: a.tree.root(), count: a.tree.count, firstSeq: a.firstSeq, lastSeq: a.lastSeq })
const iso = (ms: number) => new Date(ms).toISOString()

function assertJournal(dataDir: string): void {
  if (!existsSync(journalDir(dataDir))) {
    throw new FlytrapError(`no journal in ${journalDir(dataDir)}`, { exit: 'config', suggestions: ['pass the proxy\'s --data-dir (default .flytrap/proxy)'] })
  }
}

export async function verifyJournal(opts: VerifyOptions): Promise<VerifyReport> {
  assertJournal(opts.dataDir)
  const fromMs = opts.fromMs ?? -Infinity
  const toMs = opts.toMs ?? Infinity
  const meta = readMeta(opts.dataDir)
  const periodMs = opts.periodMs ?? meta?.periodMs ?? JOURNAL_DEFAULTS.periodMs
  const reporter = opts.reporter ?? meta?.reporter
  const maxProblems = opts.maxProblems ?? 100
  const warnings: string[] = []

  // ---- anchors first, so one pass over the journal computes every root
  const anchorsOut: VerifyReport['anchors'] = { checked: false, ignored: 0, periods: [], verified: 0, mismatched: 0, unanchored: 0 }
  let anchors: AnchorRecord[] = []
  let trusted: string[] | null = null
  if (opts.client) {
    try {
      const got = await fetchAnchors(opts.client, { fromBlock: opts.fromBlock, reporter })
      trusted = got.reporters
      anchors = got.anchors.filter((a) => a.toTime * 1000 > fromMs && a.fromTime * 1000 < toMs)
      Object.assign(anchorsOut, { checked: true, contract: opts.client.address, reporter, ignored: got.ignored })
      if (got.ignored > 0) warnings.push(`${got.ignored} Anchored event(s) from addresses that were not registered reporters were ignored`)
    } catch (err) {
      anchorsOut.reason = `anchors not checked: ${(err as Error).message}`
    }
  } else {
    anchorsOut.reason = `anchors not checked: ${opts.noChainReason ?? 'no chain connection'}`
  }

  // Anchor ranges, one accumulator per distinct [fromTime, toTime)
  const groups = new Map<string, { fromMs: number; toMs: number; anchors: AnchorRecord[]; acc: Acc }>()
  for (const a of anchors) {
    const key = `${a.fromTime}-${a.toTime}`
    let g = groups.get(key)
    if (!g) groups.set(key, (g = { fromMs: a.fromTime * 1000, toMs: a.toTime * 1000, anchors: [], acc: newAcc() }))
    g.anchors.push(a)
  }
  const sortedGroups = [...groups.values()].sort((a, b) => a.fromMs - b.fromMs)
  const scanFrom = Math.min(fromMs, ...sortedGroups.map((g) => g.fromMs))
  const scanTo = Math.max(toMs, ...sortedGroups.map((g) => g.toMs))

  // ---- one pass: chain links, counters, local periods and anchor ranges
  const allSegs = await listSegments(opts.dataDir)
  const segs = await segmentsForRange(opts.dataDir, scanFrom, scanTo)
  const wholeJournal = segs.length === allSegs.length
  const head = readHead(opts.dataDir)
  const problems: ChainProblem[] = []
  let problemCount = 0
  const problem = (p: ChainProblem) => {
    problemCount++
    if (problems.length < maxProblems) problems.push(p)
  }
  const periods = new Map<number, Acc>()
  let entries = 0
  let redacted = 0
  let firstSeq: number | null = null
  let lastSeq: number | null = null
  let firstT: number | null = null
  let lastT = -Infinity
  let expectSeq: number | null = wholeJournal ? 1 : null
  let chain: string | null = wholeJournal ? GENESIS : null
  let lastFile = ''
  let lastLine = 0
  let lo = 0
  const erasures = new ErasureCheck({ trusted, lookup: (seq) => findRecord(opts.dataDir, seq) })

  for (const seg of segs) {
    const isLastSeg = seg === allSegs[allSegs.length - 1]
    let first = true
    for await (const l of readLines(seg.path)) {
      lastFile = seg.name
      lastLine = l.lineNo
      if (!l.terminated && isLastSeg) {
        warnings.push(`${seg.name}:${l.lineNo}: incomplete last line (${l.end - l.offset} bytes): a write in progress or torn by a crash; never acknowledged, not counted`)
        continue
      }
      let r: JournalRecord
      try {
        if (!l.terminated) throw new Error('incomplete line in the middle of the journal')
        r = parseRecord(l.text)
      } catch (err) {
        problem({ kind: 'malformed', file: seg.name, line: l.lineNo, seq: expectSeq, message: `${seg.name}:${l.lineNo}: not a valid journal line (${(err as Error).message})${expectSeq !== null ? `; seq ${expectSeq} was expected here` : ''}` })
        if (expectSeq !== null) expectSeq++
        chain = null // unknown from here: the next line's prev is taken as it is
        continue
      }
      const at = `${seg.name}:${l.lineNo}`
      if (first && r.seq !== seg.firstSeq) problem({ kind: 'segment-name', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: segment ${seg.name} starts with seq ${r.seq}, its name says ${seg.firstSeq}` })
      first = false
      let seqProblem = false
      if (expectSeq !== null && r.seq !== expectSeq) {
        seqProblem = true
        if (r.seq > expectSeq) {
          const gap = r.seq - 1 === expectSeq ? `seq ${expectSeq} is` : `seq ${expectSeq}..${r.seq - 1} are`
          problem({ kind: 'missing', file: seg.name, line: l.lineNo, seq: expectSeq, message: `${at}: ${gap} missing before seq ${r.seq} (deleted or moved)` })
        } else {
          problem({ kind: 'out-of-order', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: seq ${r.seq} comes after seq ${expectSeq - 1} (lines moved or duplicated)` })
        }
      }
      if (r.t < lastT) problem({ kind: 'time-order', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: seq ${r.seq} is dated ${iso(r.t)}, before the entry preceding it (${iso(lastT)})` })
      const leaf = provenLeaf(r)
      if (!r.redacted && leaf !== r.leaf) {
        problem({ kind: 'content-altered', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: entry seq ${r.seq} was changed after it was written (its content no longer matches its leaf)` })
      }
      const expectedPrev = chain
      if (expectedPrev !== null && r.prev !== expectedPrev && !seqProblem) {
        problem({
          kind: 'chain-broken',
          file: seg.name,
          line: l.lineNo,
          seq: r.seq,
          message: `${at}: the link into seq ${r.seq} is broken: seq ${r.seq - 1} was rewritten (content and leaf) or the prev of seq ${r.seq} was edited`,
        })
      }
      // Continue from the stored values, so one edit is reported once and not at every later line.
      chain = chainNext(r.prev, r.leaf)
      if (head && r.seq === head.seq && chain !== head.chain && problems.every((p) => p.seq !== r.seq)) {
        problem({ kind: 'chain-broken', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: the chain through seq ${r.seq} differs from the checkpoint written when the journal was last closed (${head.chain}): the journal before it was rewritten` })
      }
      expectSeq = r.seq + 1
      lastT = Math.max(lastT, r.t)
      entries++
      if (r.redacted) redacted++
      if (r.redacted) erasures.redaction(r, seg.name, l.lineNo)
      else erasures.entry(r, seg.name, l.lineNo)
      firstSeq ??= r.seq
      lastSeq = r.seq
      firstT ??= r.t

      if (r.t >= fromMs && r.t < toMs) {
        const k = periodOf(r.t, periodMs)
        let p = periods.get(k)
        if (!p) periods.set(k, (p = newAcc()))
        push(p, r.seq, leaf)
      }
      while (lo < sortedGroups.length && sortedGroups[lo]!.toMs <= r.t) lo++
      for (let i = lo; i < sortedGroups.length && sortedGroups[i]!.fromMs <= r.t; i++) {
        const g = sortedGroups[i]!
        if (r.t < g.toMs) push(g.acc, r.seq, leaf)
      }
    }
  }

  // ---- a truncated tail: the clean-close checkpoint says there was more
  if (head && (toMs === Infinity || segs.at(-1) === allSegs.at(-1)) && (lastSeq ?? 0) < head.seq) {
    const from = (lastSeq ?? 0) + 1
    problem({
      kind: 'truncated',
      file: lastFile || head.segment,
      line: lastLine + 1,
      seq: from,
      message: `${lastFile || head.segment}:${lastLine + 1}: the journal ends at seq ${lastSeq ?? 0} but was closed cleanly at seq ${head.seq}: seq ${from}..${head.seq} are missing (truncated)`,
    })
  }
  // ---- every redaction must be covered by a valid, signed erasure record (erasure.ts)
  const erased = await erasures.finish()
  for (const p of erased.problems) problem(p)
  warnings.push(...erased.warnings)
  for (const f of tornFiles(opts.dataDir)) warnings.push(`${f}: bytes cut off a torn write when the journal was reopened after a crash (kept as evidence)`)

  // ---- periods: anchored ranges, then local periods no anchor covers
  const checks: PeriodCheck[] = []
  for (const g of sortedGroups) {
    const loc = local(g.acc)
    const match = g.anchors.some((a) => a.root === loc.root && a.count === loc.count)
    const check: PeriodCheck = { fromTime: g.fromMs / 1000, toTime: g.toMs / 1000, status: match ? 'verified' : 'mismatch', local: loc, anchors: g.anchors }
    if (!match) Object.assign(check, explainMismatch(g.anchors, loc, problems))
    checks.push(check)
  }
  for (const [k, acc] of periods) {
    const b = periodBounds(k, periodMs)
    if (sortedGroups.some((g) => g.fromMs < b.toMs && g.toMs > b.fromMs)) continue
    checks.push({ fromTime: b.fromTime, toTime: b.toTime, status: 'unanchored', local: local(acc), anchors: [] })
  }
  checks.sort((a, b) => a.fromTime - b.fromTime || a.toTime - b.toTime)
  anchorsOut.periods = checks
  anchorsOut.verified = checks.filter((c) => c.status === 'verified').length
  anchorsOut.mismatched = checks.filter((c) => c.status === 'mismatch').length
  anchorsOut.unanchored = checks.filter((c) => c.status === 'unanchored').length

  const chainOk = problemCount === 0
  const firstMismatch = checks.find((c) => c.status === 'mismatch')
  const firstProblem = problems[0]?.message ?? (firstMismatch ? `period ${iso(firstMismatch.fromTime * 1000)}..${iso(firstMismatch.toTime * 1000)}: ${firstMismatch.message}` : null)
  return {
    ok: chainOk && !firstMismatch,
    dataDir: opts.dataDir,
    range: { from: Number.isFinite(fromMs) ? iso(fromMs) : null, to: Number.isFinite(toMs) ? iso(toMs) : null },
    journal: { segments: segs.length, entries, redacted, firstSeq, lastSeq, firstTime: firstT === null ? null : iso(firstT), lastTime: Number.isFinite(lastT) ? iso(lastT) : null },
    chain: { ok: chainOk, problems, problemCount },
    anchors: anchorsOut,
    firstProblem,
    warnings,
  }
}

function push(a: Acc, seq: number, leaf: string): void {
  a.tree.push(leaf)
  a.firstSeq ??= seq
  a.lastSeq = seq
}

function explainMismatch(anchors: AnchorRecord[], loc: LocalRange, problems: ChainProblem[]): { message: string; culprit?: ChainProblem } {
  const a = anchors[0]!
  const inRange = (p: ChainProblem) => p.seq !== null && loc.firstSeq !== null && loc.lastSeq !== null && p.seq >= loc.firstSeq && p.seq <= loc.lastSeq + 1
  const culprit = problems.find(inRange)
  const seqs = loc.firstSeq === null ? 'no entries' : `seq ${loc.firstSeq}..${loc.lastSeq}`
  if (culprit) return { culprit, message: `root differs from the anchor (tx ${a.txHash}); ${culprit.message}` }
  if (loc.count < a.count) {
    return { message: `the anchor (tx ${a.txHash}) covers ${a.count} entries, the journal has ${loc.count} (${seqs}): ${a.count - loc.count} entries are missing${loc.lastSeq !== null ? ` after seq ${loc.lastSeq}` : ''}` }
  }
  if (loc.count > a.count) return { message: `the journal has ${loc.count} entries in this period (${seqs}), the anchor (tx ${a.txHash}) ${a.count}: entries were added` }
  return { message: `the entries of this period (${seqs}) differ from what was anchored (tx ${a.txHash}), yet the hash chain is intact: the journal was rewritten and re-chained` }
}

function tornFiles(dataDir: string): string[] {
  try {
    return readdirSync(journalDir(dataDir)).filter((n) => /\.torn-\d+$/.test(n))
  } catch {
    return []
  }
}

export interface EntryCheck {
  ok: boolean
  seq: number
  file: string
  line: number
  redacted: boolean
  /** The entry as stored (absent when redacted). */
  entry?: JournalEntry
  /** The leaf recomputed from the content (the stored one for a redacted entry). */
  leaf: string
  /** False when the content no longer matches the leaf written with it; null when redacted. */
  contentMatches: boolean | null
  /** The range the proof is for: the anchor's, else the local period. */
  fromTime: number
  toTime: number
  proof: MerkleProof
  /** Root of that range recomputed from the journal. */
  root: string
  proofValid: boolean
  anchorsChecked: boolean
  reason?: string
  anchor: AnchorRecord | null
  /** The proof leads to the root anchored on chain, and the count matches. */
  anchored: boolean
  message: string
}

/** Inclusion proof for one entry, checked against its anchor when there is one. */
export async function verifyEntry(opts: Omit<VerifyOptions, 'fromMs' | 'toMs' | 'maxProblems'> & { seq: number }): Promise<EntryCheck> {
  assertJournal(opts.dataDir)
  const at = await findRecord(opts.dataDir, opts.seq)
  if (!at) throw new FlytrapError(`no entry with seq ${opts.seq} in ${journalDir(opts.dataDir)}`, { exit: 'usage' })
  const r = at.record
  const meta = readMeta(opts.dataDir)
  const periodMs = opts.periodMs ?? meta?.periodMs ?? JOURNAL_DEFAULTS.periodMs
  const reporter = opts.reporter ?? meta?.reporter
  let anchorsChecked = false
  let reason: string | undefined
  let candidates: AnchorRecord[] = []
  let trusted: string[] | null = null
  if (opts.client) {
    try {
      const got = await fetchAnchors(opts.client, { fromBlock: opts.fromBlock, reporter })
      trusted = got.reporters
      candidates = got.anchors.filter((a) => a.fromTime * 1000 <= r.t && r.t < a.toTime * 1000)
      anchorsChecked = true
    } catch (err) {
      reason = `anchors not checked: ${(err as Error).message}`
    }
  } else reason = `anchors not checked: ${opts.noChainReason ?? 'no chain connection'}`

  const contentMatches = r.redacted ? null : entryLeaf(r.salt, r.entry) === r.leaf
  const tryRange = async (fromMs: number, toMs: number) => (await rangeProof(opts.dataDir, r.seq, fromMs, toMs, { leaf: 'proven' }))!
  let anchor: AnchorRecord | null = null
  let p: Awaited<ReturnType<typeof tryRange>> | null = null
  for (const a of candidates) {
    const q = await tryRange(a.fromTime * 1000, a.toTime * 1000)
    if (a.root === q.root && a.count === q.count) {
      anchor = a
      p = q
      break
    }
    anchor ??= a
    p ??= q
  }
  if (!p) {
    const b = periodBounds(periodOf(r.t, periodMs), periodMs)
    p = await tryRange(b.fromMs, b.toMs)
  }
  const proof: MerkleProof = { index: p.index, count: p.count, siblings: p.siblings }
  const proofValid = verifyProof(p.leaf, proof, p.root)
  const anchored = anchor !== null && anchor.root === p.root && anchor.count === p.count && verifyProof(p.leaf, proof, anchor.root)
  let ok = proofValid && contentMatches !== false && (anchor === null || anchored)
  let message: string
  const erasure = new ErasureCheck({ trusted, lookup: (seq) => findRecord(opts.dataDir, seq) })
  if (r.redacted) erasure.redaction(r, at.file, at.line)
  const uncovered = (await erasure.finish()).problems[0]
  if (uncovered) {
    ok = false
    message = uncovered.message
  } else if (contentMatches === false) message = `${at.file}:${at.line}: entry seq ${r.seq} was changed after it was written (its content no longer matches its leaf)`
  else if (anchor && !anchored) message = `${at.file}:${at.line}: entry seq ${r.seq} is not in the tree anchored in tx ${anchor.txHash}: the period's entries differ from what was anchored`
  else if (anchored) message = `entry seq ${r.seq} is proven by the root anchored in tx ${anchor!.txHash} (block ${anchor!.blockNumber})`
  else message = `entry seq ${r.seq} is in its period's tree, but ${anchorsChecked ? 'no anchor covers its period yet' : reason}`
  if (!proofValid) ok = false
  return {
    ok,
    seq: r.seq,
    file: at.file,
    line: at.line,
    redacted: r.redacted,
    entry: r.redacted ? undefined : r.entry,
    leaf: p.leaf,
    contentMatches,
    fromTime: p.fromTime,
    toTime: p.toTime,
    proof,
    root: p.root,
    proofValid,
    anchorsChecked,
    reason,
    anchor,
    anchored,
    message,
  }
}
