/**
 * `audit verify`: re-reads the journal, checks every hash-chain link, recomputes the Merkle root of every
 * anchored range from the entries' content and compares it, the seq range and the hash-chain value each
 * anchor pins with the Anchored events on chain, and proves single entries. Only the chain decides which
 * anchors count: events of this deployment's contract, from addresses that were registered reporters at that
 * block (src/lib/chain/reporters.ts); nothing in the data directory (meta.json) can add or remove one.
 *
 * What each check catches (docs/audit.md has the full table and a verifier's checklist):
 * - a changed field: the entry's content no longer matches its stored leaf → that exact seq;
 * - a changed field with the stored leaf recomputed: the next line's prev no longer matches → that link;
 * - a deleted line, a deleted segment: the seq gap → that line; swapped lines: out-of-order at both lines;
 * - a truncated tail: the clean-close checkpoint (head.json) and the anchors' counts and seq ranges;
 * - a journal rewritten and re-chained consistently: the anchors' roots and pinned chain values, per range;
 * - entries added to a period nobody anchored: every closed period must be anchored by its deadline;
 * - an anchor sent long after its period (a retroactive forgery looks like that): late, with its delay;
 * - a scope index (scope-index.ts) that is not the one of the range's entries, anchored or stored in
 *   `<journal>/index/`: index-mismatch, naming the first differing key hash when the rows show it.
 */
import { getAddress } from 'ethers'
import { existsSync, readdirSync } from 'node:fs'
import { getLogsChunked, type FlyTrapClient } from '../chain/client.js'
import { decodeLogs, eventTopics, isEvent } from '../chain/events.js'
import { loadReporterHistory } from '../chain/reporters.js'
import { FlytrapError } from '../errors.js'
import { chainNext, entryLeaf, GENESIS, parseRecord, provenLeaf, type JournalEntry, type JournalRecord } from './entry.js'
import { ErasureCheck, type ErasureProblem } from './erasure.js'
import { JOURNAL_DEFAULTS } from './journal.js'
import { findRecord, indexPath, journalDir, listSegments, periodBounds, periodOf, rangeProof, readHead, readIndexRows, readLines, readMeta, segmentsForRange } from './journal-files.js'
import { MerkleAccumulator, verifyProof, type MerkleProof } from './merkle.js'
import { checkBuiltIndex, ScopeIndexBuilder, type IndexCheck } from './scope-index.js'

/** One Anchored event, from a registered reporter of this contract: one link of that reporter's sequence. */
export interface AnchorRecord {
  reporter: string
  /** Unix seconds, half-open [fromTime, toTime). */
  fromTime: number
  toTime: number
  /** The journal entries it pins: firstSeq..lastSeq (lastSeq = firstSeq - 1 for an empty range). */
  firstSeq: number
  lastSeq: number
  count: number
  root: string
  /** Root of the range's scope index (scope-index.ts; 0x00…00 for an empty range). */
  index: string
  /** The journal's hash-chain value after lastSeq. */
  chain: string
  blockNumber: number
  logIndex: number
  txHash: string
  /** Time of the block that holds it (unix seconds), and how long after the end of its range that was. */
  minedAt: number
  delaySec: number
}

/**
 * Anchored events of the client's contract, in chain order, from addresses that were registered reporters
 * at that block (the contract's own ReporterAdded/ReporterRemoved history). Pass the deployment block as
 * fromBlock: reporter registrations before it would be missed otherwise. `reporter` narrows, never widens.
 */
export async function fetchAnchors(
  client: FlyTrapClient,
  opts: { fromBlock?: number; toBlock?: number; reporter?: string; chunk?: number } = {},
): Promise<{ anchors: AnchorRecord[]; ignored: number; otherReporters: number; reporters: string[] }> {
  const toBlock = opts.toBlock ?? (await client.provider.getBlockNumber())
  const history = await loadReporterHistory(client, { ...opts, toBlock })
  const logs = await getLogsChunked(client.provider, { address: client.address, topics: [eventTopics(['Anchored'])] }, opts.fromBlock ?? 0, opts.chunk, toBlock)
  const events = decodeLogs(client.address, logs).filter((e) => isEvent(e, 'Anchored'))
  const only = opts.reporter?.toLowerCase()
  let ignored = 0
  let otherReporters = 0
  const kept = events.filter((e) => {
    if (!history.admits(e)) return void ignored++
    if (only && e.args.reporter.toLowerCase() !== only) return void otherReporters++
    return true
  })
  const minedAt = new Map<number, number>()
  const blocks = [...new Set(kept.map((e) => e.block))]
  for (let i = 0; i < blocks.length; i += 8) {
    await Promise.all(
      blocks.slice(i, i + 8).map(async (n) => {
        const b = await client.provider.getBlock(n)
        if (!b) throw new FlytrapError(`block ${n} of an anchor is not available from this node`, { exit: 'unreachable' })
        minedAt.set(n, b.timestamp)
      }),
    )
  }
  const anchors = kept.map(({ args: a, block, logIndex, tx }): AnchorRecord => {
    const at = minedAt.get(block)!
    return {
      reporter: a.reporter,
      fromTime: a.fromTime,
      toTime: a.toTime,
      firstSeq: a.firstSeq,
      lastSeq: a.firstSeq + a.count - 1,
      count: a.count,
      root: a.root,
      index: a.index,
      chain: a.chain,
      blockNumber: block,
      logIndex,
      txHash: tx,
      minedAt: at,
      delaySec: at - a.toTime,
    }
  })
  // Addresses whose signatures (erasure records) verification trusts: every reporter the chain ever registered, narrowed by `reporter`.
  const reporters = history.everRegistered().filter((r) => !only || r.toLowerCase() === only).map((r) => getAddress(r))
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

/**
 * verified: the anchor's root, count, seq range and chain value match the journal; late: they match but the
 * anchor was mined after the deadline; mismatch: they do not; conflict: anchors of one range disagree (some
 * match, some do not); unanchored: a closed period past its deadline with no anchor (a failure once anchors
 * are checked); pending: not anchored yet, within its deadline (the current period always is);
 * index-mismatch: root, count, seqs and chain match, but the anchored scope index (or the rows stored for it)
 * is not the index of the range's entries.
 */
export type PeriodStatus = 'verified' | 'late' | 'mismatch' | 'conflict' | 'unanchored' | 'pending' | 'index-mismatch'

export interface PeriodCheck {
  /** Unix seconds, half-open. */
  fromTime: number
  toTime: number
  status: PeriodStatus
  local: LocalRange
  anchors: AnchorRecord[]
  /** Seconds between the end of the range and the block of its (latest) anchor. */
  delaySec?: number
  /** For a failure: why, and the entry the chain check blames when there is one in this range. */
  message?: string
  culprit?: ChainProblem
  /** Anchored ranges: the scope index root the entries (and stored rows) give; null when they do not agree. */
  index?: string | null
  /** index-mismatch: the first key hash whose row differs, when the stored rows show it. */
  indexKeyHash?: string | null
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
    /** The reporter(s) whose anchor sequence is this journal's (decided from the chain, see docs/audit.md). */
    reporters: string[]
    /** Anchored events from addresses that were not registered reporters at their block (never trusted). */
    ignored: number
    /** Anchors of other registered reporters (other proxies' journals), not checked against this one. */
    otherReporters: number
    /** An anchor must be mined within this many ms after the end of its period; the period length assumed. */
    deadlineMs: number
    periodMs: number
    periods: PeriodCheck[]
    verified: number
    mismatched: number
    /** Anchored ranges whose root matches but whose scope index does not. */
    indexMismatched: number
    late: number
    /** Closed periods past their deadline without an anchor. */
    unanchored: number
    pending: number
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
  /** Only anchors sent by this reporter (narrows the registered reporters; never adds one). */
  reporter?: string
  /** An anchor is due this many ms after its period ends (default: two periods, at least 5 minutes). */
  deadlineMs?: number
  /** Period length for periods nobody anchored (default: the anchors' own, else at most 30 minutes). */
  periodMs?: number
  /** Clock (unix ms) deciding which periods are past their deadline. */
  now?: number
  /** Stop collecting problem details after this many (all are counted). */
  maxProblems?: number
  /** Blocks per eth_getLogs request. */
  chunk?: number
}

interface Acc {
  tree: MerkleAccumulator
  firstSeq: number | null
  lastSeq: number | null
}

const newAcc = (): Acc => ({ tree: new MerkleAccumulator(), firstSeq: null, lastSeq: null })
const local = (a: Acc): LocalRange => ({ root: a.tree.root(), count: a.tree.count, firstSeq: a.firstSeq, lastSeq: a.lastSeq })
const iso = (ms: number) => new Date(ms).toISOString()
const isoSec = (s: number) => iso(s * 1000).replace('.000Z', 'Z')
const seqs = (first: number, last: number) => (last < first ? 'no entries' : first === last ? `seq ${first}` : `seq ${first}..${last}`)
const duration = (sec: number) => (sec < 120 ? `${sec} s` : sec < 7200 ? `${Math.round(sec / 60)} min` : `${(sec / 3600).toFixed(1)} h`)

function assertJournal(dataDir: string): void {
  if (!existsSync(journalDir(dataDir))) {
    throw new FlytrapError(`no journal in ${journalDir(dataDir)}`, { exit: 'config', suggestions: ['pass the proxy\'s --data-dir (default .flytrap/proxy)'] })
  }
}

/** A gap in the seqs, provisional until the end: seqs found later (moved lines) are not missing. */
interface Gap {
  problem: ChainProblem
  from: number
  to: number
  /** The seq on the line where the gap was seen. */
  at: number
  present: Set<number>
}

/** The default deadline is two periods, and never less than this: a chain needs time to include a transaction. */
export const MIN_DEADLINE_MS = 5 * 60_000

/** Keeps the hash-chain value after each of the last seqs seen, to check links and anchors' pinned values. */
const RECENT_CHAINS = 4096

export async function verifyJournal(opts: VerifyOptions): Promise<VerifyReport> {
  assertJournal(opts.dataDir)
  const fromMs = opts.fromMs ?? -Infinity
  const toMs = opts.toMs ?? Infinity
  const now = opts.now ?? Date.now()
  const meta = readMeta(opts.dataDir) // a cache of the period length only: it decides nothing below
  const maxProblems = opts.maxProblems ?? 100
  const warnings: string[] = []

  // ---- anchors first, so one pass over the journal computes every root
  const anchorsOut: VerifyReport['anchors'] = { checked: false, reporters: [], ignored: 0, otherReporters: 0, deadlineMs: 0, periodMs: 0, periods: [], verified: 0, mismatched: 0, indexMismatched: 0, late: 0, unanchored: 0, pending: 0 }
  let all: AnchorRecord[] = []
  let trusted: string[] | null = null
  if (opts.client) {
    try {
      const got = await fetchAnchors(opts.client, { fromBlock: opts.fromBlock, reporter: opts.reporter, chunk: opts.chunk })
      all = got.anchors
      trusted = got.reporters
      Object.assign(anchorsOut, { checked: true, contract: opts.client.address, ignored: got.ignored, otherReporters: got.otherReporters })
      if (got.ignored > 0) warnings.push(`${got.ignored} Anchored event(s) from addresses that were not registered reporters at their block were ignored`)
    } catch (err) {
      anchorsOut.reason = `anchors not checked: ${(err as Error).message}`
    }
  } else {
    anchorsOut.reason = `anchors not checked: ${opts.noChainReason ?? 'no chain connection'}`
  }
  const inRange = all.filter((a) => a.toTime * 1000 > fromMs && a.fromTime * 1000 < toMs)
  // Every seq whose chain value some anchor pins (empty anchors pin the one before their range).
  const pinned = new Set(inRange.map((a) => a.lastSeq))

  // Anchor ranges, one accumulator per distinct [fromTime, toTime)
  // Each also rebuilds the range's scope index, checked (with the stored rows) once the scan has passed it.
  type Group = { fromMs: number; toMs: number; anchors: AnchorRecord[]; acc: Acc; ix: ScopeIndexBuilder | null; index: IndexCheck | null }
  const groups = new Map<string, Group>()
  for (const a of inRange) {
    const key = `${a.fromTime}-${a.toTime}`
    let g = groups.get(key)
    if (!g) groups.set(key, (g = { fromMs: a.fromTime * 1000, toMs: a.toTime * 1000, anchors: [], acc: newAcc(), ix: new ScopeIndexBuilder(), index: null }))
    g.anchors.push(a)
  }
  const sortedGroups = [...groups.values()].sort((a, b) => a.fromMs - b.fromMs)
  const finishIndex = async (g: Group): Promise<void> => {
    if (!g.ix) return
    const range = { fromTime: g.fromMs / 1000, toTime: g.toMs / 1000 }
    const built = g.ix.build()
    const redactedSeqs = g.ix.redacted
    g.ix = null // the seq lists of a range are kept only while the scan is inside it
    try {
      g.index = checkBuiltIndex(built, redactedSeqs, await readIndexRows(opts.dataDir, range))
    } catch (err) {
      g.index = { ok: false, keyHash: null, reason: `${indexPath(opts.dataDir, range)} cannot be read: ${(err as Error).message}` }
    }
  }
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
  const gaps: Gap[] = []
  const recent = new Map<number, string>()
  if (wholeJournal) recent.set(0, GENESIS)
  const chainAt = new Map<number, string>(wholeJournal ? [[0, GENESIS]] : [])
  // The grid local counts are kept in: the anchors' period when there are any, else meta.json's (a cache, capped).
  const gridMs = opts.periodMs ?? (inRange.length > 0 ? Math.min(...inRange.map((a) => (a.toTime - a.fromTime) * 1000)) : Math.min(meta?.periodMs ?? JOURNAL_DEFAULTS.periodMs, JOURNAL_DEFAULTS.periodMs))
  const periods = new Map<number, Acc>()
  let entries = 0
  let redacted = 0
  let firstSeq: number | null = null
  let lastSeq: number | null = null
  let firstT: number | null = null
  let firstInRange: number | null = null
  let lastT = -Infinity
  let expectSeq: number | null = wholeJournal ? 1 : null
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
        continue
      }
      const at = `${seg.name}:${l.lineNo}`
      if (first && r.seq !== seg.firstSeq) problem({ kind: 'segment-name', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: segment ${seg.name} starts with seq ${r.seq}, its name says ${seg.firstSeq}` })
      first = false
      let outOfOrder = false
      if (expectSeq !== null && r.seq > expectSeq) {
        // Provisional: if the skipped seqs turn up further on, the lines were moved, not deleted.
        const gap: Gap = { problem: { kind: 'missing', file: seg.name, line: l.lineNo, seq: expectSeq, message: '' }, from: expectSeq, to: r.seq - 1, at: r.seq, present: new Set() }
        gaps.push(gap)
        problem(gap.problem)
      } else if (expectSeq !== null && r.seq < expectSeq) {
        outOfOrder = true
        const gap = gaps.find((g) => r.seq >= g.from && r.seq <= g.to && !g.present.has(r.seq))
        if (gap) gap.present.add(r.seq)
        const why = gap ? `it belongs before seq ${gap.at} (${gap.problem.file}:${gap.problem.line}): lines moved` : 'a line repeated or moved back'
        problem({ kind: 'out-of-order', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: seq ${r.seq} comes after seq ${expectSeq - 1}; ${why}` })
      }
      if (r.t < lastT && !outOfOrder) problem({ kind: 'time-order', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: seq ${r.seq} is dated ${iso(r.t)}, before the entry preceding it (${iso(lastT)})` })
      const leaf = provenLeaf(r)
      const altered = contentProblem(r, leaf, at)
      if (altered) problem({ kind: 'content-altered', file: seg.name, line: l.lineNo, seq: r.seq, message: altered })
      // The link into this entry: checked against the chain value after seq - 1 when that line was seen.
      const expectedPrev = recent.get(r.seq - 1)
      if (expectedPrev !== undefined && r.prev !== expectedPrev) {
        problem({
          kind: 'chain-broken',
          file: seg.name,
          line: l.lineNo,
          seq: r.seq,
          message: `${at}: the link into seq ${r.seq} is broken: seq ${r.seq - 1} was rewritten (content and leaf) or the prev of seq ${r.seq} was edited`,
        })
      }
      // Continue from the stored values, so one edit is reported once and not at every later line.
      const chain = chainNext(r.prev, r.leaf)
      recent.set(r.seq, chain)
      if (recent.size > RECENT_CHAINS) recent.delete(recent.keys().next().value!)
      if (pinned.has(r.seq)) chainAt.set(r.seq, chain)
      if (head && r.seq === head.seq && chain !== head.chain && problems.every((p) => p.seq !== r.seq)) {
        problem({ kind: 'chain-broken', file: seg.name, line: l.lineNo, seq: r.seq, message: `${at}: the chain through seq ${r.seq} differs from the checkpoint written when the journal was last closed (${head.chain}): the journal before it was rewritten` })
      }
      expectSeq = Math.max(expectSeq ?? 0, r.seq + 1)
      lastT = Math.max(lastT, r.t)
      entries++
      if (r.redacted) redacted++
      if (r.redacted) erasures.redaction(r, seg.name, l.lineNo)
      else erasures.entry(r, seg.name, l.lineNo)
      firstSeq ??= r.seq
      lastSeq = r.seq
      firstT ??= r.t

      if (r.t >= fromMs && r.t < toMs) {
        firstInRange ??= r.t
        const k = periodOf(r.t, gridMs)
        let p = periods.get(k)
        if (!p) periods.set(k, (p = newAcc()))
        push(p, r.seq, leaf)
      }
      while (lo < sortedGroups.length && sortedGroups[lo]!.toMs <= r.t) await finishIndex(sortedGroups[lo++]!)
      for (let i = lo; i < sortedGroups.length && sortedGroups[i]!.fromMs <= r.t; i++) {
        const g = sortedGroups[i]!
        if (r.t < g.toMs) {
          push(g.acc, r.seq, leaf)
          g.ix?.add(r)
        }
      }
    }
  }
  for (const g of sortedGroups) await finishIndex(g)
  // Gaps whose seqs turned up elsewhere were moves: out-of-order at the line concerned, never "missing".
  for (const g of gaps) {
    const absent: number[] = []
    for (let q = g.from; q <= g.to; q++) if (!g.present.has(q)) absent.push(q)
    const at = `${g.problem.file}:${g.problem.line}`
    if (absent.length === 0) {
      Object.assign(g.problem, { kind: 'out-of-order', seq: g.at, message: `${at}: seq ${g.at} comes before ${seqs(g.from, g.to)}, found further on (lines moved or swapped)` })
    } else {
      const list = absent.length === g.to - g.from + 1 ? seqs(g.from, g.to) : `seq ${absent.join(', ')}`
      Object.assign(g.problem, { seq: absent[0], message: `${at}: ${list} ${absent.length === 1 ? 'is' : 'are'} missing before seq ${g.at} (deleted or moved)` })
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

  // ---- whose anchors are this journal's: decided from the chain only
  const matches = (a: AnchorRecord, loc: LocalRange): boolean => a.root === loc.root && a.count === loc.count && (a.count === 0 || a.firstSeq === loc.firstSeq) && pinMatches(a)
  const pinMatches = (a: AnchorRecord): boolean => {
    const c = chainAt.get(a.lastSeq)
    return c === undefined ? a.count === 0 : c === a.chain // an empty range's pin may precede the segments read
  }
  const byReporter = new Map<string, AnchorRecord[]>()
  for (const a of inRange) byReporter.set(a.reporter, [...(byReporter.get(a.reporter) ?? []), a])
  let ours = [...byReporter.keys()].filter((r) => byReporter.get(r)!.some((a) => a.count > 0 && chainAt.get(a.lastSeq) === a.chain))
  // No sequence matches: with one reporter, its anchors are this journal's (and disagree); with several, all are.
  if (ours.length === 0) ours = [...byReporter.keys()]
  const oursSet = new Set(ours)
  anchorsOut.otherReporters += inRange.filter((a) => !oursSet.has(a.reporter)).length
  anchorsOut.reporters = ours

  // The period length: the chain's (the shortest range this journal's reporters anchored), else the grid.
  const ownAnchors = inRange.filter((a) => oursSet.has(a.reporter))
  const periodMs = opts.periodMs ?? (ownAnchors.length > 0 ? Math.min(...ownAnchors.map((a) => (a.toTime - a.fromTime) * 1000)) : gridMs)
  const deadlineMs = opts.deadlineMs ?? Math.max(2 * periodMs, MIN_DEADLINE_MS)
  Object.assign(anchorsOut, { deadlineMs, periodMs })

  // ---- anchored ranges
  const checks: PeriodCheck[] = []
  let divergedAt: PeriodCheck | null = null
  for (const g of sortedGroups) {
    const own = g.anchors.filter((a) => oursSet.has(a.reporter))
    if (own.length === 0) continue
    const loc = local(g.acc)
    const good = own.filter((a) => matches(a, loc))
    const delaySec = Math.max(...own.map((a) => a.delaySec))
    const check: PeriodCheck = { fromTime: g.fromMs / 1000, toTime: g.toMs / 1000, status: 'verified', local: loc, anchors: own, delaySec, index: g.index?.ok ? g.index.root : null }
    const badIndex = good.length === own.length ? indexProblem(own, g.index!, `${indexPath(opts.dataDir, { fromTime: g.fromMs / 1000, toTime: g.toMs / 1000 })}`) : null
    if (badIndex) {
      Object.assign(check, { status: 'index-mismatch' }, badIndex)
    } else if (good.length === own.length) {
      if (delaySec * 1000 > deadlineMs) Object.assign(check, { status: 'late', message: `anchored ${duration(delaySec)} after the period ended (tx ${own[0]!.txHash}), past the ${duration(Math.round(deadlineMs / 1000))} deadline: an anchor sent this late proves only what the journal said then` })
    } else {
      Object.assign(check, { status: good.length > 0 ? 'conflict' : 'mismatch' }, explainMismatch(own.find((a) => !matches(a, loc))!, loc, problems, chainAt, divergedAt))
      if (good.length > 0) check.message = `anchors of this range disagree (${good.length} match, ${own.length - good.length} do not): ${check.message}`
      divergedAt ??= check
    }
    checks.push(check)
  }

  // ---- time no anchor of this journal's reporters covers: a failure once its period's deadline has passed
  if (!anchorsOut.checked) {
    for (const [k, acc] of periods) {
      const b = periodBounds(k, gridMs)
      checks.push({ fromTime: b.fromTime, toTime: b.toTime, status: 'unanchored', local: local(acc), anchors: [] })
    }
  } else if (firstInRange !== null || ownAnchors.length > 0) {
    const covered = union(ownAnchors.map((a) => [a.fromTime * 1000, a.toTime * 1000]))
    const P = periodMs
    const startMs = Math.max(fromMs, periodOf(firstInRange ?? covered[0]![0], P) * P)
    const endMs = Math.min(toMs, (periodOf(Math.max(now, lastT), P) + 1) * P)
    const dueEnd = periodOf(now - deadlineMs, P) * P // every period ending at or before this is due
    const pieces: [number, number][] = []
    let at = startMs
    for (const [cf, ct] of covered) {
      if (ct <= at) continue
      if (cf >= endMs) break
      if (cf > at) pieces.push([at, cf])
      at = ct
    }
    if (at < endMs) pieces.push([at, endMs])
    for (const [u0, u1] of pieces) {
      for (const [f, t, due] of [[u0, Math.min(u1, dueEnd), true], [Math.max(u0, dueEnd), u1, false]] as const) {
        if (t <= f) continue
        const loc = localOf(periods, gridMs, f, t)
        const c: PeriodCheck = { fromTime: Math.floor(f / 1000), toTime: Math.ceil(t / 1000), status: due ? 'unanchored' : 'pending', local: loc, anchors: [] }
        if (due) {
          c.message = `no anchor by ${ours.length ? ours.join(', ') : 'any registered reporter'} for this time, ${duration(Math.round((now - t) / 1000))} past the end of its period plus the ${duration(Math.round(deadlineMs / 1000))} deadline${loc.count > 0 ? `: its ${loc.count} entries (${seqs(loc.firstSeq!, loc.lastSeq!)}) are proven by nothing` : ''}`
        }
        checks.push(c)
      }
    }
  }
  checks.sort((a, b) => a.fromTime - b.fromTime || a.toTime - b.toTime)
  anchorsOut.periods = checks
  const count = (...st: PeriodStatus[]) => checks.filter((c) => st.includes(c.status)).length
  anchorsOut.verified = count('verified')
  anchorsOut.mismatched = count('mismatch', 'conflict')
  anchorsOut.indexMismatched = count('index-mismatch')
  anchorsOut.late = count('late')
  anchorsOut.unanchored = anchorsOut.checked ? count('unanchored') : 0
  anchorsOut.pending = count('pending')

  const chainOk = problemCount === 0
  const failing = anchorsOut.checked ? checks.filter((c) => ['mismatch', 'conflict', 'index-mismatch', 'late', 'unanchored'].includes(c.status)) : []
  const firstFail = failing.find((c) => c.status === 'mismatch' || c.status === 'conflict' || c.status === 'index-mismatch') ?? failing[0]
  const firstProblem = problems[0]?.message ?? (firstFail ? `period ${isoSec(firstFail.fromTime)}..${isoSec(firstFail.toTime)}: ${firstFail.message}` : null)
  return {
    ok: chainOk && failing.length === 0,
    dataDir: opts.dataDir,
    range: { from: Number.isFinite(fromMs) ? iso(fromMs) : null, to: Number.isFinite(toMs) ? iso(toMs) : null },
    journal: { segments: segs.length, entries, redacted, firstSeq, lastSeq, firstTime: firstT === null ? null : iso(firstT), lastTime: Number.isFinite(lastT) ? iso(lastT) : null },
    chain: { ok: chainOk, problems, problemCount },
    anchors: anchorsOut,
    firstProblem,
    warnings,
  }
}

// ------------------------------------------------------------------ redacted lines and content checks

/**
 * Whether a line's content still matches the leaf written with it; the message when not. A redacted line
 * keeps only its leaf (audit forget), so there is no content to compare.
 */
function contentProblem(r: JournalRecord, leaf: string, at: string): string | null {
  if (r.redacted) return null
  return leaf !== r.leaf ? `${at}: entry seq ${r.seq} was changed after it was written (its content no longer matches its leaf)` : null
}

// ------------------------------------------------------------------ helpers

/**
 * Why a range's scope index fails, or null: the rows recomputed from the entries (with the stored rows for
 * redacted lines) disagree with the stored file, or an anchor of the range commits to another index root.
 */
function indexProblem(own: readonly AnchorRecord[], ix: IndexCheck, file: string): { message: string; indexKeyHash: string | null } | null {
  if (!ix.ok) {
    const at = ix.keyHash ? `; first differing key hash ${ix.keyHash}` : ''
    return { indexKeyHash: ix.keyHash, message: `the scope index of this range is not the one of its entries: ${file}: ${ix.reason}${at}` }
  }
  const wrong = own.find((a) => a.index !== ix.root)
  if (!wrong) return null
  return {
    indexKeyHash: null,
    message: `the anchor (tx ${wrong.txHash}) commits to scope index ${wrong.index}, the entries give ${ix.root}: the anchored index lists other seqs or keys than the entries have (no key hash can be named: the stored rows, if any, agree with the entries)`,
  }
}

function push(a: Acc, seq: number, leaf: string): void {
  a.tree.push(leaf)
  a.firstSeq ??= seq
  a.lastSeq = seq
}

/** Sorted, merged time intervals. */
function union(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = []
  for (const [f, t] of ranges.sort((x, y) => x[0] - y[0])) {
    const last = out.at(-1)
    if (last && f <= last[1]) last[1] = Math.max(last[1], t)
    else out.push([f, t])
  }
  return out
}

/** Counts and seqs of the local grid periods inside [f, t); the root when it is exactly one of them. */
function localOf(periods: Map<number, Acc>, gridMs: number, f: number, t: number): LocalRange {
  const inside = [...periods].filter(([k]) => k * gridMs < t && (k + 1) * gridMs > f).sort(([x], [y]) => x - y)
  if (inside.length === 1) return local(inside[0]![1])
  const out: LocalRange = { root: new MerkleAccumulator().root(), count: 0, firstSeq: null, lastSeq: null }
  for (const [, a] of inside) {
    out.count += a.tree.count
    out.firstSeq ??= a.firstSeq
    out.lastSeq = a.lastSeq
  }
  return out
}

/**
 * Why an anchor does not match, pointing at the seqs concerned: the chain problem inside its range when
 * there is one; else what it pins (seq range, count, chain value) against what the journal has.
 */
function explainMismatch(a: AnchorRecord, loc: LocalRange, problems: ChainProblem[], chainAt: Map<number, string>, earlier: PeriodCheck | null): { message: string; culprit?: ChainProblem } {
  const tx = `tx ${a.txHash}`
  const pins = `the anchor (${tx}) pins ${seqs(a.firstSeq, a.lastSeq)} (${a.count} entries, chain ${a.chain.slice(0, 10)}…)`
  const has = loc.firstSeq === null ? 'no entries' : `${loc.count} entries (${seqs(loc.firstSeq, loc.lastSeq!)})`
  const lo = Math.min(a.firstSeq, loc.firstSeq ?? a.firstSeq)
  const hi = Math.max(a.lastSeq, loc.lastSeq ?? a.lastSeq) + 1
  const culprit = problems.find((p) => p.seq !== null && p.seq >= lo && p.seq <= hi)
  if (culprit) return { culprit, message: `${pins}; ${culprit.message}` }
  const after = earlier ? ` (this follows from the change at ${seqs(earlier.anchors[0]!.firstSeq, earlier.anchors[0]!.lastSeq)}, anchored ${isoSec(earlier.fromTime)})` : ''
  if (loc.count < a.count) {
    return { message: `${pins}; the journal has ${has} in this range: ${a.count - loc.count} of the anchored ${seqs(a.firstSeq, a.lastSeq)} are gone (deleted, or deleted and the rest renumbered and re-chained)${after}` }
  }
  if (loc.count > a.count) return { message: `${pins}; the journal has ${has} in this range: ${loc.count - a.count} entries were added${after}` }
  if (loc.firstSeq !== null && loc.firstSeq !== a.firstSeq) return { message: `${pins}; the journal has ${has} in this range: its seqs were shifted by ${loc.firstSeq - a.firstSeq}${after}` }
  if (a.root !== loc.root) return { message: `${pins}; the entries ${seqs(a.firstSeq, a.lastSeq)} differ from what was anchored, yet the hash chain is intact: the journal was rewritten and re-chained there${after}` }
  const c = chainAt.get(a.lastSeq)
  return {
    message: `${pins}; its entries match the anchored root, but the hash chain after seq ${a.lastSeq} is ${c ? c.slice(0, 10) + '…' : 'absent'}: an entry before seq ${a.firstSeq} was changed and the journal re-chained${after}`,
  }
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
  const periodMs = opts.periodMs ?? readMeta(opts.dataDir)?.periodMs ?? JOURNAL_DEFAULTS.periodMs // only to show the local period
  const reporter = opts.reporter
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
