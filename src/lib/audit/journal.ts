/**
 * The local audit journal: every decision the proxy makes, as JSON lines under `<dataDir>/journal/`, one
 * file per segment (`seg-<first seq, 16 digits>.jsonl`, so names sort by seq), hash-chained line to line
 * (entry.ts) and divided into epoch-aligned anchoring periods whose Merkle roots go on chain (merkle.ts).
 *
 * Durability: true group commit. The first append after an idle moment starts a write at once (after the
 * current turn of the event loop, so decisions made together go together); everything appended while a
 * write + fdatasync runs goes into the next one, with one fdatasync for all of it. No fixed wait. (Segments
 * are opened with O_DSYNC: each batch's one `write` returns once its data is on disk, as write + fdatasync
 * would, in one system call instead of two.)
 * `append()` resolves only once its entry is on disk; that is what "durable" means, and the proxy holds
 * what acknowledges a decision until then (recorder.ts, the session's barrier). Identical decisions of one
 * batch and one period may be merged into one entry with a count (`append(input, { merge })`), never
 * across batches, so merging never delays anything. A crash can lose only entries whose promise had not
 * resolved; on open, a torn tail (the part of an interrupted write that reached the disk) is cut off, kept
 * aside in `<segment>.torn-<time>` and logged, never silently accepted. Damage that is not a torn tail
 * refuses to open.
 *
 * Periods: period k covers [k·P, (k+1)·P) milliseconds since the epoch, whatever the restarts. An entry's
 * time is its decision time (taken at append, never decreasing), so every period is one contiguous run of
 * seqs. Each recent period's Merkle root and reportable counts (tally.ts) are kept as entries become
 * durable; older ones are recomputed from disk.
 */
import { performance } from 'node:perf_hooks'
import { constants, mkdirSync } from 'node:fs'
import { open, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { FlytrapError } from '../errors.js'
import { replaceFile, syncDir, takePidLock } from '../fs/durable.js'
import { silentLogger, type Logger } from '../log.js'
import { chainNext, encodeRecord, entryLeaf, GENESIS, makeEntry, parseRecord, saltedLeaves, type EntryInput, type JournalEntry, type JournalRecord } from './entry.js'
import {
  findRecord,
  HEAD,
  journalDir,
  listSegments,
  LOCK,
  META,
  periodBounds,
  periodOf,
  rangeProof,
  rangeRoots,
  rangeTally,
  readHead,
  readLines,
  readMeta,
  segmentName,
  type EntryProof,
  type JournalHead,
  type JournalMeta,
  type SegmentInfo,
} from './journal-files.js'
import { MerkleAccumulator } from './merkle.js'
import { emptyTally, tallyEntry, type PeriodTally } from './tally.js'

export const JOURNAL_DEFAULTS = {
  /** 30 minutes. Must be a whole number of seconds (periods go on chain in seconds). */
  periodMs: 30 * 60_000,
  maxSegmentBytes: 64 * 1024 * 1024,
  maxSegmentAgeMs: 24 * 3600_000,
  /** Extra wait before a write starts, to gather more entries. 0: none (true group commit). */
  flushIntervalMs: 0,
  /** How long an entry nobody waits for (append's `lazy`) may wait for company before it starts a write. */
  lazyMs: 20,
  maxBatch: 1024,
  /** Entries waiting for the disk before append() refuses more (a stalled disk must not eat the memory). */
  maxPending: 100_000,
} as const

export interface JournalOptions {
  /** The proxy's data directory; the journal lives in `<dataDir>/journal/`. */
  dataDir: string
  periodMs?: number
  maxSegmentBytes?: number
  maxSegmentAgeMs?: number
  flushIntervalMs?: number
  lazyMs?: number
  maxBatch?: number
  maxPending?: number
  /** Every batch on disk before its appends resolve (O_DSYNC; default true). Only tests that measure nothing about durability turn it off. */
  fsync?: boolean
  /** Clock, unix ms (tests inject one). */
  now?: () => number
  logger?: Logger
}

/** What a resolved append() tells the caller: the entry is on disk with this seq. */
export interface Appended {
  seq: number
  t: number
  leaf: string
  /** The hash-chain value after this entry. */
  chain: string
}

/** The Merkle root of one period, as it goes into `anchor(root, count, fromTime, toTime)`. */
export interface PeriodRoot {
  period: number
  root: string
  count: number
  /** Unix seconds, half-open: the period is [fromTime, toTime). */
  fromTime: number
  toTime: number
  firstSeq: number | null
  lastSeq: number | null
  /** The hash-chain value before the period's first entry and after its last (null when it has none). */
  prevChain: string | null
  chain: string | null
  /** The period has ended by the journal's clock (no entry can join it any more). */
  closed: boolean
}

// ------------------------------------------------------------------ one writer per journal

/** Takes `<journal>/LOCK` for this process; a lock left by a dead process is taken over. */
export function acquireLock(dataDir: string): () => void {
  const dir = journalDir(dataDir)
  mkdirSync(dir, { recursive: true })
  return takePidLock(join(dir, LOCK), `the journal in ${dir}`, 'stop the proxy using this data directory first, or pass another --data-dir')
}

interface Pending {
  input: EntryInput
  t: number
  /** performance.now() at append, for lagMs(). */
  at: number
  /** Identical decisions with the same key in one batch and period become one entry. */
  merge?: string
  resolve: (a: Appended) => void
  reject: (err: Error) => void
}

interface LivePeriod {
  tree: MerkleAccumulator
  firstSeq: number
  lastSeq: number
  prevChain: string
  chain: string
  tally: PeriodTally
}

/** Entries hashed between two yields to the event loop. */
const HASH_SLICE = 64

/** At open, how many of the last segment's final lines get their leaf and chain link rechecked. */
const RECHECK_LINES = 4096

/** How many recent periods keep their running Merkle state in memory (older ones are read from disk). */
const LIVE_PERIODS = 8

export class Journal {
  readonly dataDir: string
  readonly dir: string
  readonly periodMs: number
  private readonly o: Required<Omit<JournalOptions, 'logger' | 'now' | 'dataDir'>>
  private readonly now: () => number
  private readonly log: Logger
  private readonly unlock: () => void

  private fh: FileHandle | null = null
  private segName: string | null = null
  private segSize = 0
  private segFirstT = 0
  private seq: number
  private chain: string
  private lastT: number
  private readonly openedLastT: number
  private pending: Pending[] = []
  private timer: NodeJS.Timeout | undefined
  private scheduled = false
  /** performance.now() at the append of the oldest entry in the write in flight. */
  private inflightAt: number | null = null
  private writing: Promise<void> | null = null
  private closed = false
  private broken: Error | null = null
  private live = new Map<number, LivePeriod>()
  /** The newest period dropped from `live` (its counts then come from disk). */
  private evicted = -Infinity
  /** Periods before this one may have entries from an earlier run: their roots come from disk. */
  private readonly liveFrom: number
  private counters = { appended: 0, written: 0, failed: 0, batches: 0, rotations: 0 }

  /** Use openJournal(). */
  constructor(init: { opts: JournalOptions; unlock: () => void; seq: number; chain: string; lastT: number; fh: FileHandle | null; segName: string | null; segSize: number; segFirstT: number }) {
    const { opts } = init
    this.dataDir = opts.dataDir
    this.dir = journalDir(opts.dataDir)
    this.periodMs = opts.periodMs ?? JOURNAL_DEFAULTS.periodMs
    this.o = {
      periodMs: this.periodMs,
      maxSegmentBytes: opts.maxSegmentBytes ?? JOURNAL_DEFAULTS.maxSegmentBytes,
      maxSegmentAgeMs: opts.maxSegmentAgeMs ?? JOURNAL_DEFAULTS.maxSegmentAgeMs,
      flushIntervalMs: opts.flushIntervalMs ?? JOURNAL_DEFAULTS.flushIntervalMs,
      lazyMs: opts.lazyMs ?? JOURNAL_DEFAULTS.lazyMs,
      maxBatch: opts.maxBatch ?? JOURNAL_DEFAULTS.maxBatch,
      maxPending: opts.maxPending ?? JOURNAL_DEFAULTS.maxPending,
      fsync: opts.fsync ?? true,
    }
    this.now = opts.now ?? Date.now
    this.log = opts.logger ?? silentLogger
    this.unlock = init.unlock
    this.seq = init.seq
    this.chain = init.chain
    this.lastT = init.lastT
    this.openedLastT = init.lastT
    this.fh = init.fh
    this.segName = init.segName
    this.segSize = init.segSize
    this.segFirstT = init.segFirstT
    this.liveFrom = init.seq > 0 ? periodOf(init.lastT, this.periodMs) + 1 : -Infinity
  }

  /** Last seq on disk. */
  get lastSeq(): number {
    return this.seq
  }

  /** Chain value after the last entry on disk. */
  get head(): { seq: number; chain: string } {
    return { seq: this.seq, chain: this.chain }
  }

  /** Entries appended and not yet on disk. */
  get pendingCount(): number {
    return this.pending.length
  }

  stats(): { appended: number; written: number; failed: number; batches: number; rotations: number; pending: number; lastSeq: number } {
    return { ...this.counters, pending: this.pending.length, lastSeq: this.seq }
  }

  periodOf(tMs: number): number {
    return periodOf(tMs, this.periodMs)
  }

  /** Time of the newest entry when the journal was opened (unix ms; 0 when empty): where an earlier run stopped. */
  get lastEntryTime(): number {
    return this.openedLastT
  }

  /**
   * How far the disk is behind: milliseconds since the oldest entry not yet on disk was appended (0 when
   * everything is). The relaxed sync mode waits for the journal only when this exceeds its bound.
   */
  lagMs(): number {
    const oldest = this.inflightAt ?? this.pending[0]?.at
    return oldest === undefined ? 0 : Math.max(0, performance.now() - oldest)
  }

  /**
   * Queues an entry; resolves once it is on disk (fdatasync'd), with its seq. The time is taken now, the
   * decision time (never going backwards); the seq when it is written, so a failed write leaves no gap.
   * With `merge`, identical decisions (same key) of the same write batch and period become one entry with
   * a count, and each of their promises resolves with it. The caller never blocks: a packet path may hold
   * a reply until the promise resolves, never the event loop. `lazy`: nothing is held on this entry (a
   * disconnect, a ban, a relaxed decision): it starts a write only after `lazyMs` (default 20), unless an
   * entry somebody waits for starts one sooner — then it goes with it.
   */
  append(input: EntryInput, opts: { merge?: string; lazy?: boolean } = {}): Promise<Appended> {
    if (this.closed) return Promise.reject(new FlytrapError('the journal is closed', { exit: 'failure' }))
    if (this.broken) return Promise.reject(this.broken)
    if (this.pending.length >= this.o.maxPending) {
      return Promise.reject(new FlytrapError(`journal backlog full (${this.pending.length} entries waiting for the disk)`, { exit: 'failure', code: 'JOURNAL_BACKLOG' }))
    }
    const t = Math.max(this.now(), this.lastT)
    this.lastT = t
    this.counters.appended++
    return new Promise<Appended>((resolve, reject) => {
      this.pending.push({ input, t, at: performance.now(), merge: opts.merge, resolve, reject })
      this.schedule(opts.lazy !== true)
    })
  }

  /** Resolves when everything appended so far is on disk (or has failed). */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.writing) {
      this.kick()
      await this.writing
    }
  }

  /**
   * Root of period k over the entries whose t falls in it. Flushes first, so an ended period's root is
   * final. Recent periods come from memory, older ones from disk.
   */
  async periodRoot(k: number): Promise<PeriodRoot> {
    await this.flush()
    const b = periodBounds(k, this.periodMs)
    const closed = this.now() >= b.toMs
    const live = this.live.get(k)
    if (live) return { period: k, root: live.tree.root(), count: live.tree.count, fromTime: b.fromTime, toTime: b.toTime, firstSeq: live.firstSeq, lastSeq: live.lastSeq, prevChain: live.prevChain, chain: live.chain, closed }
    if (k >= this.liveFrom && k > this.evicted) return { period: k, root: new MerkleAccumulator().root(), count: 0, fromTime: b.fromTime, toTime: b.toTime, firstSeq: null, lastSeq: null, prevChain: null, chain: null, closed }
    const [r] = await rangeRoots(this.dataDir, [b])
    return { period: k, root: r!.root, count: r!.count, fromTime: b.fromTime, toTime: b.toTime, firstSeq: r!.firstSeq, lastSeq: r!.lastSeq, prevChain: r!.prevChain, chain: r!.chain, closed }
  }

  /**
   * The reportable counts of period k (tally.ts) over its durable entries. Flushes first, so an ended
   * period's counts are final and equal to what its root covers.
   */
  async periodTally(k: number): Promise<PeriodTally> {
    await this.flush()
    const live = this.live.get(k)
    if (live) return live.tally
    if (k >= this.liveFrom && k > this.evicted) return emptyTally() // it would be live had it any entry
    const b = periodBounds(k, this.periodMs)
    return rangeTally(this.dataDir, b.fromMs, b.toMs)
  }

  /** Inclusion proof of entry `seq` in its period's tree, or null when there is no such entry. */
  async proof(seq: number): Promise<EntryProof | null> {
    await this.flush()
    const at = await findRecord(this.dataDir, seq)
    if (!at) return null
    const b = periodBounds(this.periodOf(at.record.t), this.periodMs)
    return rangeProof(this.dataDir, seq, b.fromMs, b.toMs)
  }

  /** Records the reporter address anchors of this journal are sent from, for people reading the files (verification never trusts it). */
  async setReporter(address: string): Promise<void> {
    const meta: JournalMeta = { ...(readMeta(this.dataDir) ?? { version: 1, periodMs: this.periodMs }), reporter: address }
    await replaceFile(join(this.dir, META), JSON.stringify(meta, null, 2) + '\n')
  }

  /** Flushes, writes the clean-close checkpoint (head.json) and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      await this.flush()
      await this.writeHead()
      await this.fh?.close()
      this.fh = null
    } finally {
      this.unlock()
    }
  }

  // ---------------------------------------------------------------- group commit

  private schedule(urgent: boolean): void {
    if (this.writing || this.scheduled) return // the write loop takes everything pending when its current batch is done
    if (this.o.flushIntervalMs > 0) {
      this.timer ??= setTimeout(() => this.kick(), this.o.flushIntervalMs)
      return
    }
    if (!urgent) {
      this.timer ??= setTimeout(() => this.kick(), this.o.lazyMs)
      return
    }
    // After this turn of the event loop (every packet of the chunks read in it has been decided), not later.
    this.scheduled = true
    setImmediate(() => this.kick())
  }

  private kick(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.scheduled = false
    if (this.writing || this.pending.length === 0) return
    this.writing = this.writeLoop().finally(() => {
      this.writing = null
      if (this.pending.length > 0) this.schedule(true)
    })
  }

  private async writeLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.o.maxBatch)
      this.inflightAt = batch[0]!.at
      try {
        await this.writeBatch(batch)
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err))
        this.counters.failed += batch.length
        this.log.error('journal write failed', { error: e.message, entries: batch.length })
        for (const p of batch) p.reject(e)
      } finally {
        this.inflightAt = null
      }
    }
  }

  /** The batch's entries in order of first appearance: identical mergeable decisions of one period together. */
  private coalesce(batch: Pending[]): { input: EntryInput; t: number; waiters: Pending[] }[] {
    const out: { input: EntryInput; t: number; waiters: Pending[] }[] = []
    const open = new Map<string, { input: EntryInput; t: number; waiters: Pending[] }>()
    for (const p of batch) {
      if (p.merge === undefined) {
        out.push({ input: p.input, t: p.t, waiters: [p] })
        continue
      }
      const key = `${this.periodOf(p.t)}\u0000${p.merge}`
      const same = open.get(key)
      if (same) {
        same.waiters.push(p)
        continue
      }
      const item = { input: p.input, t: p.t, waiters: [p] }
      open.set(key, item)
      out.push(item)
    }
    for (const item of out) {
      if (item.waiters.length > 1) item.input = { ...item.input, count: item.waiters.reduce((n, w) => n + (w.input.count ?? 1), 0) }
    }
    return out
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    if (this.broken) throw this.broken
    await this.maybeRotate(batch[0]!.t)
    const fh = this.fh!
    let seq = this.seq
    let chain = this.chain
    const lines: string[] = []
    const done: { a: Appended; entry: JournalEntry; salt: string; waiters: Pending[]; prev: string }[] = []
    const items = this.coalesce(batch)
    for (let from = 0; from < items.length; from += HASH_SLICE) {
      // Hashing is CPU work on the proxy's thread: yield between slices so packets are not held up by a big batch.
      if (from > 0) await new Promise((r) => setImmediate(r))
      const slice = items.slice(from, from + HASH_SLICE)
      const entries = slice.map((p, i) => makeEntry(seq + 1 + i, p.t, p.input))
      const hashed = saltedLeaves(entries)
      for (let i = 0; i < slice.length; i++) {
        seq++
        const { t, waiters } = slice[i]!
        const entry = entries[i]!
        const { salt, leaf } = hashed[i]!
        lines.push(encodeRecord({ redacted: false, seq, t, entry, salt, leaf, prev: chain }))
        const prev = chain
        chain = chainNext(chain, leaf)
        done.push({ a: { seq, t, leaf, chain }, entry, salt, waiters, prev })
      }
    }
    const buf = Buffer.from(lines.join('\n') + '\n', 'utf8')
    try {
      let off = 0
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten
      // The segment is O_DSYNC (openSegment): the write has returned once the data is on disk.
    } catch (err) {
      // Take back whatever part of the batch reached the file, so the next batch does not follow garbage.
      try {
        await fh.truncate(this.segSize)
      } catch (truncErr) {
        this.broken = new FlytrapError(`journal segment ${this.segName} could not be repaired after a failed write: ${(truncErr as Error).message}`, { exit: 'failure', cause: err })
      }
      throw err
    }
    this.segSize += buf.length
    this.seq = seq
    this.chain = chain
    this.counters.written += batch.length
    this.counters.batches++
    for (const d of done) this.track(d.a, d.entry, d.salt, d.prev)
    for (const d of done) for (const w of d.waiters) w.resolve(d.a)
  }

  private track(d: Appended, entry: JournalEntry, salt: string, prev: string): void {
    const k = this.periodOf(d.t)
    if (k < this.liveFrom) return
    let p = this.live.get(k)
    if (!p) {
      p = { tree: new MerkleAccumulator(), firstSeq: d.seq, lastSeq: d.seq, prevChain: prev, chain: d.chain, tally: emptyTally() }
      this.live.set(k, p)
      if (this.live.size > LIVE_PERIODS) {
        const oldest = Math.min(...this.live.keys())
        this.live.delete(oldest)
        this.evicted = Math.max(this.evicted, oldest)
      }
    }
    p.tree.push(d.leaf)
    p.lastSeq = d.seq
    p.chain = d.chain
    tallyEntry(p.tally, entry, salt)
  }

  private async maybeRotate(t: number): Promise<void> {
    if (this.fh && this.segSize < this.o.maxSegmentBytes && t - this.segFirstT < this.o.maxSegmentAgeMs) return
    if (this.fh) {
      await this.fh.close()
      this.fh = null
      await this.writeHead()
      this.counters.rotations++
    }
    const name = segmentName(this.seq + 1)
    const fh = await openSegment(join(this.dir, name), this.o.fsync)
    if ((await fh.stat()).size > 0) {
      await fh.close()
      throw new FlytrapError(`journal segment ${name} already exists`, { exit: 'failure' })
    }
    await syncDir(this.dir) // the new file's directory entry must survive a crash as well as its data
    this.fh = fh
    this.segName = name
    this.segSize = 0
    this.segFirstT = t
  }

  private async writeHead(): Promise<void> {
    if (this.seq === 0 || !this.segName) return
    const head: JournalHead = { seq: this.seq, chain: this.chain, t: this.lastT, segment: this.segName }
    await replaceFile(join(this.dir, HEAD), JSON.stringify(head, null, 2) + '\n')
  }
}

/** A segment for appending; with `durable`, O_DSYNC: every write returns only once its data is on disk. */
function openSegment(path: string, durable: boolean): Promise<FileHandle> {
  return open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (durable ? constants.O_DSYNC : 0), 0o600)
}

/**
 * Opens (creating if needed) the journal in `<dataDir>/journal/` for appending: takes the lock, recovers
 * the tail of the last segment after a crash and continues the chain.
 */
export async function openJournal(opts: JournalOptions): Promise<Journal> {
  const periodMs = opts.periodMs ?? JOURNAL_DEFAULTS.periodMs
  if (!Number.isInteger(periodMs) || periodMs < 1000 || periodMs % 1000 !== 0) {
    throw new FlytrapError(`the anchoring period must be a whole number of seconds (got ${periodMs} ms)`, { exit: 'usage' })
  }
  const log = opts.logger ?? silentLogger
  const dir = journalDir(opts.dataDir)
  const unlock = acquireLock(opts.dataDir)
  try {
    const meta = readMeta(opts.dataDir)
    if (!meta || meta.periodMs !== periodMs) {
      if (meta) log.info('journal anchoring period changed', { from: meta.periodMs, to: periodMs })
      await replaceFile(join(dir, META), JSON.stringify({ ...meta, version: 1, periodMs } satisfies JournalMeta, null, 2) + '\n')
    }
    let segs = await listSegments(opts.dataDir)
    let tail: Awaited<ReturnType<typeof recoverSegment>> | null = null
    while (segs.length > 0) {
      const last = segs[segs.length - 1]!
      tail = await recoverSegment(last, log)
      if (tail.last) break
      await unlink(last.path) // nothing valid in it: an empty segment from a crash during rotation
      await syncDir(dir)
      log.warn('journal: removed an empty segment', { segment: last.name })
      segs = segs.slice(0, -1)
      tail = null
    }
    const head = readHead(opts.dataDir)
    const lastSeq = tail?.last?.seq ?? 0
    if (head && head.seq > lastSeq) {
      throw new FlytrapError(`the journal in ${dir} ends at seq ${lastSeq}, but it was closed cleanly at seq ${head.seq}: entries are missing`, {
        exit: 'verification',
        suggestions: ['run `flytrap audit verify` to see what is wrong', 'keep the damaged journal as evidence and start the proxy with another --data-dir'],
      })
    }
    if (!tail?.last) return new Journal({ opts, unlock, seq: 0, chain: GENESIS, lastT: 0, fh: null, segName: null, segSize: 0, segFirstT: 0 })
    const r = tail.last
    const fh = await openSegment(tail.segment.path, opts.fsync ?? true)
    return new Journal({ opts, unlock, seq: r.seq, chain: chainNext(r.prev, r.leaf), lastT: r.t, fh, segName: tail.segment.name, segSize: tail.size, segFirstT: tail.firstT })
  } catch (err) {
    unlock()
    throw err
  }
}

/**
 * Recovers the last segment after a crash. Every line must be complete, parse and continue the seq; the
 * final RECHECK_LINES lines (far more than one write batch, the most a crash can tear) also get their leaf
 * and chain link rechecked — `audit verify` checks them all. What follows the longest valid prefix is a
 * torn write only if nothing after it is a record: then it is moved to `<segment>.torn-<ms>` and cut off.
 * Anything else means the journal was damaged some other way, and it is not opened.
 */
async function recoverSegment(seg: SegmentInfo, log: Logger): Promise<{ segment: SegmentInfo; last: JournalRecord | null; size: number; firstT: number }> {
  let last: JournalRecord | null = null
  let firstT = 0
  let validEnd = 0
  let expect = seg.firstSeq
  let bad: { line: number; why: string } | null = null
  let recent: { line: number; record: JournalRecord }[] = []
  const notTorn = (line: number, why: string) =>
    new FlytrapError(`journal segment ${seg.path} is damaged at line ${line} (${why}) and is followed by intact lines: this is not a torn write`, {
      exit: 'verification',
      suggestions: ['run `flytrap audit verify` to see what is wrong', 'keep the damaged journal as evidence and start the proxy with another --data-dir'],
    })
  for await (const l of readLines(seg.path)) {
    let r: JournalRecord | null = null
    let why = 'incomplete line'
    if (l.terminated) {
      try {
        r = parseRecord(l.text)
        if (r.seq !== expect) {
          why = `seq ${r.seq} where ${expect} was expected`
          if (!bad) r = null
        }
      } catch (err) {
        why = (err as Error).message
      }
    }
    if (bad) {
      if (r) throw notTorn(bad.line, bad.why)
      continue
    }
    if (!r) {
      bad = { line: l.lineNo, why }
      continue
    }
    if (last === null) firstT = r.t
    last = r
    expect = r.seq + 1
    validEnd = l.end
    recent.push({ line: l.lineNo, record: r })
    if (recent.length >= 2 * RECHECK_LINES) recent = recent.slice(-RECHECK_LINES)
  }
  let chain: string | null = null
  for (const { line, record: r } of recent.slice(-RECHECK_LINES)) {
    if (!r.redacted && entryLeaf(r.salt, r.entry) !== r.leaf) throw notTorn(line, 'content does not match its leaf')
    if (chain !== null && r.prev !== chain) throw notTorn(line, 'prev does not continue the chain')
    chain = chainNext(r.prev, r.leaf)
  }
  const { size } = await stat(seg.path)
  if (size > validEnd) {
    const aside = `${seg.path}.torn-${Date.now()}`
    const fh = await open(seg.path, 'r+')
    try {
      const rest = Buffer.alloc(size - validEnd)
      await fh.read(rest, 0, rest.length, validEnd)
      await writeFile(aside, rest, { mode: 0o600 })
      await fh.truncate(validEnd)
      await fh.sync()
    } finally {
      await fh.close()
    }
    log.warn('journal: cut a torn write off the last segment', { segment: seg.name, line: bad?.line, why: bad?.why, bytes: size - validEnd, keptIn: aside })
  }
  return { segment: seg, last, size: validEnd, firstT }
}
