/**
 * The proxy's anchor sequence: turns closed periods of the journal into `anchor()` intents that continue
 * one another exactly as the contract requires — each starts where the previous one ended (time, seq and
 * hash-chain value), empty periods included, so a missing period is visible on chain. Runs of empty periods
 * met while catching up (after downtime) are folded into one explicitly empty range; a period with entries
 * is always anchored alone.
 *
 * Each link with entries also carries the root of the range's scope index (scope-index.ts), computed from
 * the durable entries when the link is made (a read of the range from disk, off the writer's path) and
 * stored in `<journal>/index/<fromTime>-<toTime>.json` before the intent is enqueued.
 *
 * Where the sequence ends is kept in `<dir>/anchor-cursor.json` after every enqueue (intents may still sit in
 * the outbox) and compared with the contract's `anchorCursor` at start: the one further on wins. Neither is
 * trusted by verification; the contract refuses any anchor that does not continue the sequence.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { anchorArgs, type AnchorArgs, type AnchorCursor } from '../chain/client.js'
import type { EnqueueResult, IntentInput } from '../chain/outbox.js'
import { replaceFile } from '../fs/durable.js'
import { silentLogger, type Logger } from '../log.js'
import { GENESIS } from './entry.js'
import { rangeRecords, rangeRoots, storeIndexRows, type RangeRoot } from './journal-files.js'
import { buildScopeIndex } from './scope-index.js'

const CURSOR_FILE = 'anchor-cursor.json'
const ZERO_ROOT = '0x' + '00'.repeat(32)
const EMPTY: RangeRootLike = { root: ZERO_ROOT, count: 0, firstSeq: null, lastSeq: null, prevChain: null, chain: null }

/** A period's (or range's) root as the journal gives it (journal.ts PeriodRoot, journal-files.ts RangeRoot). */
export type RangeRootLike = Omit<RangeRoot, 'fromMs' | 'toMs'>

/** What anchoring needs from the journal. */
export interface AnchorJournal {
  periodRoot(k: number): Promise<RangeRootLike> | RangeRootLike
  /** Last seq and chain value on disk (the start of a new sequence when the journal had nothing before). */
  readonly head?: { seq: number; chain: string }
  /** Newest entry's time when the journal was opened (unix ms, 0 when empty). */
  readonly lastEntryTime?: number
  /**
   * Where the journal is: every range with entries is read from disk for its scope index, and a sequence
   * that ends off a period boundary (the period length changed) for its root too.
   */
  readonly dataDir?: string
  flush?(): Promise<void>
}

export interface AnchoringOptions {
  journal: AnchorJournal
  sink: { enqueue(intent: IntentInput): Promise<EnqueueResult> }
  /** Where the cursor file lives (the reporting directory). */
  dir: string
  periodMs: number
  /** The contract's end of this reporter's sequence (unavailable in cluster workers, or when the chain is down). */
  chainCursor?: () => Promise<AnchorCursor>
  /** Unix ms of the current period's start when the sequencer starts (a fresh sequence starts there). */
  startMs: number
  logger?: Logger
}

/** The end of the sequence: the next anchor starts at toMs with seq lastSeq + 1 and prevChain chain. */
interface Cursor {
  toMs: number
  /** null: nothing anchored yet and the journal had entries: the first range's own start is taken. */
  lastSeq: number | null
  chain: string | null
}

interface CursorFile {
  version: 1
  toTime: number
  lastSeq: number
  chain: string
}

export class AnchorSequencer {
  private cursor: Cursor | null = null
  private work: Promise<void> = Promise.resolve()
  private halted: string | null = null
  private readonly log: Logger
  sent = 0

  constructor(private readonly o: AnchoringOptions) {
    this.log = o.logger ?? silentLogger
  }

  /** Why anchoring stopped (the journal does not continue the anchored sequence), or null. */
  get haltedReason(): string | null {
    return this.halted
  }

  /** Enqueues anchors for every period up to and including k (closed periods only). Serialised. */
  upTo(k: number): Promise<void> {
    const run = this.work.then(() => this.advance(k))
    this.work = run.catch(() => undefined)
    return run
  }

  private async init(): Promise<Cursor> {
    const local = this.readLocal()
    let onChain: Cursor | null = null
    if (this.o.chainCursor) {
      try {
        const c = await this.o.chainCursor()
        if (c.anchors > 0) onChain = { toMs: c.toTime * 1000, lastSeq: c.lastSeq, chain: c.chain }
      } catch (err) {
        this.log.warn('anchoring: could not read where this reporter\'s anchors end on chain; using the local cursor', { error: (err as Error).message })
      }
    }
    if (local && (!onChain || local.toMs >= onChain.toMs)) return local
    if (onChain) return onChain
    // A new sequence: from the period of the newest entry an earlier run left, else from now.
    const lastT = this.o.journal.lastEntryTime ?? 0
    if (lastT > 0) return { toMs: Math.floor(lastT / this.o.periodMs) * this.o.periodMs, lastSeq: null, chain: null }
    const head = this.o.journal.head ?? { seq: 0, chain: GENESIS }
    return { toMs: this.o.startMs, lastSeq: head.seq, chain: head.chain }
  }

  private async advance(kLast: number): Promise<void> {
    if (this.halted) return
    if (!this.cursor) {
      this.cursor = await this.init()
      await this.checkContinues()
      if (this.halted) return
      await this.writeLocal() // a new sequence's start survives a crash before its first anchor
    }
    const P = this.o.periodMs
    const endMs = (kLast + 1) * P
    let emptyFrom: number | null = null
    let at = this.cursor.toMs
    while (at < endMs) {
      const fromMs = at
      const toMs = (Math.floor(fromMs / P) + 1) * P
      at = toMs
      const r = await this.rangeRoot(fromMs, toMs)
      if (r.count === 0) {
        // Folded with the empty periods after it; sent before the next period with entries, or at the end.
        emptyFrom ??= fromMs
        continue
      }
      if (emptyFrom !== null) await this.send({ fromMs: emptyFrom, toMs: fromMs }, null)
      emptyFrom = null
      await this.send({ fromMs, toMs }, r)
      if (this.halted) return
    }
    if (emptyFrom !== null) await this.send({ fromMs: emptyFrom, toMs: at }, null)
  }

  /** A journal behind its anchors (lost or reset), or one whose chain differs where they end, is not continued. */
  private async checkContinues(): Promise<void> {
    const c = this.cursor!
    const j = this.o.journal
    if (c.lastSeq === null || c.chain === null || !j.head) return
    await j.flush?.()
    const head = j.head
    if (head.seq < c.lastSeq || (head.seq === c.lastSeq && head.chain !== c.chain)) {
      this.halted = `the journal does not continue this reporter's anchors: they end at seq ${c.lastSeq} (chain ${c.chain}), the journal at seq ${head.seq} (chain ${head.chain})`
      this.log.error(`anchoring stopped: ${this.halted}`)
    }
  }

  private async rangeRoot(fromMs: number, toMs: number): Promise<RangeRootLike> {
    const P = this.o.periodMs
    // Catching up after downtime: once every entry on disk is anchored, an ended period has none (an entry
    // written from now on is dated now or later), so long runs of empty periods need no disk reads.
    const c = this.cursor
    if (c?.lastSeq !== null && c?.lastSeq !== undefined && this.o.journal.head && this.o.journal.flush) {
      await this.o.journal.flush()
      if (this.o.journal.head.seq === c.lastSeq) return EMPTY
    }
    if (fromMs % P === 0) return this.o.journal.periodRoot(fromMs / P)
    if (!this.o.journal.dataDir) throw new Error(`the anchor sequence ends at ${new Date(fromMs).toISOString()}, off this period's boundaries`)
    await this.o.journal.flush?.()
    const [r] = await rangeRoots(this.o.journal.dataDir, [{ fromMs, toMs }])
    return r!
  }

  /** One link: an empty range (r null) keeps the chain; a range with entries must start right after the cursor. */
  private async send(range: { fromMs: number; toMs: number }, r: RangeRootLike | null): Promise<void> {
    const c = this.cursor!
    let link: AnchorArgs
    if (r === null || r.count === 0) {
      if (c.lastSeq === null || c.chain === null) {
        this.cursor = { ...c, toMs: range.toMs } // nothing anchored yet: the sequence starts with entries
        return
      }
      link = { fromTime: range.fromMs / 1000, toTime: range.toMs / 1000, firstSeq: c.lastSeq + 1, count: 0, root: ZERO_ROOT, index: ZERO_ROOT, prevChain: c.chain, chain: c.chain }
    } else {
      const firstSeq = r.firstSeq!
      const prevChain = r.prevChain!
      if ((c.lastSeq !== null && firstSeq !== c.lastSeq + 1) || (c.chain !== null && prevChain !== c.chain)) {
        this.halted = `the journal does not continue this reporter's anchors: they end at seq ${c.lastSeq} (chain ${c.chain}), the period from ${new Date(range.fromMs).toISOString()} starts at seq ${firstSeq} (after chain ${prevChain})`
        this.log.error(`anchoring stopped: ${this.halted}`)
        return
      }
      const index = await this.storeIndex(range, r)
      link = { fromTime: range.fromMs / 1000, toTime: range.toMs / 1000, firstSeq, count: r.count, root: r.root, index, prevChain, chain: r.chain! }
    }
    const res = await this.o.sink.enqueue({ kind: 'anchor', method: 'anchor', args: anchorArgs(link), dedupeKey: `anchor:${link.fromTime}:${link.toTime}` })
    if (res.error) throw new Error(res.error)
    if (!res.deduped) this.sent++
    this.cursor = { toMs: range.toMs, lastSeq: link.firstSeq + link.count - 1, chain: link.chain }
    await this.writeLocal()
  }

  /**
   * The range's scope index from its durable entries, stored before the anchor that commits to it is
   * enqueued; returns its root. The entries read must be the ones the root covers (same count and seqs).
   */
  private async storeIndex(range: { fromMs: number; toMs: number }, r: RangeRootLike): Promise<string> {
    const dataDir = this.o.journal.dataDir
    if (!dataDir) throw new Error('anchoring needs the journal\'s directory to compute the scope index of a period')
    await this.o.journal.flush?.()
    const records = await rangeRecords(dataDir, range.fromMs, range.toMs)
    if (records.length !== r.count || records[0]?.seq !== r.firstSeq || records[records.length - 1]?.seq !== r.lastSeq) {
      throw new Error(`the entries on disk from ${new Date(range.fromMs).toISOString()} (${records.length}) are not the ${r.count} the period's root covers`)
    }
    const index = buildScopeIndex(records)
    const at = { fromTime: range.fromMs / 1000, toTime: range.toMs / 1000 }
    await storeIndexRows(dataDir, at, index.rows)
    return index.root
  }

  private readLocal(): Cursor | null {
    try {
      const f = JSON.parse(readFileSync(join(this.o.dir, CURSOR_FILE), 'utf8')) as CursorFile
      if (f.version !== 1 || !Number.isInteger(f.toTime) || !Number.isInteger(f.lastSeq) || typeof f.chain !== 'string') return null
      return { toMs: f.toTime * 1000, lastSeq: f.lastSeq, chain: f.chain }
    } catch {
      return null
    }
  }

  private async writeLocal(): Promise<void> {
    const c = this.cursor!
    if (c.lastSeq === null || c.chain === null) return
    const f: CursorFile = { version: 1, toTime: c.toMs / 1000, lastSeq: c.lastSeq, chain: c.chain }
    try {
      await replaceFile(join(this.o.dir, CURSOR_FILE), JSON.stringify(f) + '\n')
    } catch (err) {
      this.log.warn('anchoring: could not save the anchor cursor', { error: (err as Error).message })
    }
  }
}
