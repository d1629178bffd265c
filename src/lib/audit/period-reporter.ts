/**
 * The period reporter the proxy runs. Each epoch-aligned period [k·P, (k+1)·P) is reported on chain through
 * the outbox when it ends, computed from the durable journal (journal.periodTally / periodRoot), never from
 * counts kept beside it, so a period's on-chain counts are exactly its journal entries' (tally.ts):
 *
 * - sensitive topics: one `recordSensitive(topicId, from, to, publishers, published, receivers, received,
 *   membersRoot)` per sensitive topic with traffic: distinct addresses, totals and the Merkle root of the
 *   per-address records (sensitive-members.ts), no address. Only on a deployment made with
 *   publicSensitiveLists (permissioned chains) does it send `recordSensitiveClear(…)` with the addresses in
 *   clear instead; the form is read from the contract once at start. Publishers are counted by allowed
 *   PUBLISH decisions, receivers by allowed deliveries (broker → client), not by SUBSCRIBE packets, so a
 *   long-lived subscriber is counted in every period it receives something;
 * - refused attempts (connect, publish, subscribe, will): one `recordDenied(from, to, topicIds, counts)`,
 *   topic ids being keccak256(topic name or filter); refused connects count under keccak256("$connect"),
 *   topics beyond the cap under keccak256("$other");
 * - the journal's Merkle root of the period: one `anchor(from, to, firstSeq, count, root, prevChain, chain)`,
 *   continuing this reporter's anchor sequence, empty periods included (anchoring.ts).
 *
 * Cost is bounded whatever the traffic: per period at most one anchor, one denied summary and
 * `sensitive.maxTopics` sensitive reports, each of bounded size. Every intent carries a dedupe key (kind,
 * period length, period), so closing a period again enqueues nothing twice.
 *
 * Restarts: `<dir>/reporting.json` holds only a cursor, the last period whose reports were all enqueued.
 * On start every period after it that has ended is closed from the journal — the one a crash (kill -9)
 * left open included — with the counts the journal holds, which are the only ones that survive a crash.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { topicId } from '../chain/codec.js'
import { replaceFile } from '../fs/durable.js'
import { silentLogger, type Logger } from '../log.js'
import type { EnqueueResult, IntentInput } from '../chain/outbox.js'
import type { AnchorCursor } from '../chain/client.js'
import { AnchorSequencer, type AnchorJournal, type RangeRootLike } from './anchoring.js'
import { CONNECT_TOPIC, OTHER_TOPIC, type PeriodTally } from './tally.js'
import { membersRecords } from './sensitive-members.js'

export { CONNECT_TOPIC, OTHER_TOPIC }
const MAX_U32 = 2 ** 32 - 1
const STATE_FILE = 'reporting.json'
/** Periods closed at most at one start (older ones were closed by the runs that saw them end). */
const CATCH_UP = 64

/** What reporting needs from the journal (src/lib/audit/journal.ts). */
export interface JournalLike extends Partial<Omit<AnchorJournal, 'periodRoot'>> {
  periodMs?: number
  periodRoot?: (k: number) => Promise<RangeRootLike> | RangeRootLike
  /** The period's reportable counts over its durable entries (flushes first). */
  periodTally(k: number): Promise<PeriodTally>
  setReporter?: (address: string) => Promise<void> | void
  /** Time of the newest entry when the journal was opened (unix ms), so a period a crash left open is closed at the next start. */
  lastEntryTime?: number
}

export interface ReportingOptions {
  outbox: { enqueue(intent: IntentInput): Promise<EnqueueResult>; readonly dir?: string; reporterAddress?: () => Promise<string> }
  journal: JournalLike
  /** Anchor the journal's periods (default true). A reporter key has one anchor sequence: one journal per key. */
  anchor?: boolean
  /** Where this reporter's anchor sequence ends on chain (the contract's anchorCursor), read once at start. */
  anchorCursor?: () => Promise<AnchorCursor>
  /** Where the cursor is kept (default: the outbox's directory). */
  dir?: string
  /** Period length in ms, a whole number of seconds (default: the journal's, else 30 minutes). */
  periodMs?: number
  /** Clock, unix ms (tests inject one; the journal must use the same). */
  now?: () => number
  denied?: {
    /** Distinct topic ids per summary; the rest count under keccak256("$other"). Default 64. */
    maxTopics?: number
  }
  sensitive?: {
    /** Sensitive topics reported per period (one transaction each); topics beyond it are logged. Default 16. */
    maxTopics?: number
    /** Clear reports only: distinct publishers, and distinct receivers, per topic and period. Default 100 each. */
    maxAddresses?: number
  }
  /**
   * Whether the contract lets sensitive reports name addresses in clear (its publicSensitiveLists), read once
   * at start. Absent, false or unreadable: commitments (counts + members root), which every deployment takes.
   */
  publicSensitiveLists?: () => Promise<boolean>
  /** Start the boundary timer (default true). Without it, call tick(). */
  autoStart?: boolean
  logger?: Logger
}

export interface ReportingStatus {
  /** The open period. */
  period: number
  fromTime: number
  toTime: number
  /** Intents enqueued since start, per kind. */
  enqueued: { anchor: number; sensitive: number; denied: number }
  /** Sensitive topics left out of a period's reports because of maxTopics; addresses beyond maxAddresses. */
  droppedTopics: number
  omittedAddresses: number
  lastClosed: number | null
}

export interface Reporting {
  readonly periodMs: number
  /** Closes every period that has ended (the timer does this too) and waits for its intents to be enqueued. */
  tick(): Promise<void>
  /** Stops the timer; what has not ended is closed by the next start. */
  stop(): Promise<void>
  status(): ReportingStatus
}

interface StateFile {
  version: 2
  periodMs: number
  /** The last period whose reports were all enqueued. */
  lastClosed: number
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

const byKey = ([x]: [string, unknown], [y]: [string, unknown]) => (x < y ? -1 : x > y ? 1 : 0)

/** Starts the period reporter. Throws only for invalid options. */
export async function startReporting(opts: ReportingOptions): Promise<Reporting> {
  const journal = opts.journal
  if (!journal || typeof journal.periodTally !== 'function') throw new RangeError('startReporting needs the journal: period reports are computed from it')
  const journalPeriod = typeof journal.periodMs === 'number' ? journal.periodMs : undefined
  const periodMs = opts.periodMs ?? journalPeriod ?? 30 * 60_000
  if (!Number.isInteger(periodMs) || periodMs < 1000 || periodMs % 1000 !== 0) throw new RangeError('the reporting period must be a whole number of seconds')
  if (journalPeriod !== undefined && journalPeriod !== periodMs) throw new RangeError(`the reporting period (${periodMs} ms) differs from the journal's (${journalPeriod} ms): anchors would not match its periods`)
  const dir = opts.dir ?? opts.outbox.dir
  if (!dir) throw new RangeError('startReporting needs a directory (dir, or an outbox with one) for its cursor')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const r = new PeriodReporter(opts, periodMs, dir, journal)
  await r.start()
  return r
}

class PeriodReporter implements Reporting {
  readonly periodMs: number
  private readonly outbox: ReportingOptions['outbox']
  private readonly journal: JournalLike
  private readonly dir: string
  private readonly now: () => number
  private readonly log: Logger
  private readonly deniedTopics: number
  private readonly sensTopics: number
  private readonly sensAddrs: number
  private readonly autoStart: boolean

  /** The first period not closed yet. */
  private open: number
  private lastClosed: number | null = null
  private boundaryTimer: NodeJS.Timeout | undefined
  private stopped = false
  /** Closing runs one period after another on this chain. */
  private work: Promise<void> = Promise.resolve()
  private counts = { anchor: 0, sensitive: 0, denied: 0, droppedTopics: 0, omittedAddresses: 0 }
  private readonly anchors: AnchorSequencer | null
  private readonly clearListsFlag: (() => Promise<boolean>) | undefined
  /** Sensitive reports name addresses (recordSensitiveClear): only when the contract says it allows it. */
  private clearLists = false

  constructor(opts: ReportingOptions, periodMs: number, dir: string, journal: JournalLike) {
    this.periodMs = periodMs
    this.outbox = opts.outbox
    this.journal = journal
    this.dir = dir
    this.now = opts.now ?? Date.now
    this.log = opts.logger ?? silentLogger
    this.deniedTopics = Math.max(1, Math.floor(opts.denied?.maxTopics ?? 64))
    this.sensTopics = Math.max(0, Math.floor(opts.sensitive?.maxTopics ?? 16))
    this.sensAddrs = Math.max(1, Math.floor(opts.sensitive?.maxAddresses ?? 100))
    this.autoStart = opts.autoStart !== false
    this.clearListsFlag = opts.publicSensitiveLists
    this.open = this.periodOf(this.now())
    this.anchors =
      opts.anchor !== false && typeof journal.periodRoot === 'function'
        ? new AnchorSequencer({ journal: journal as AnchorJournal, sink: this.outbox, dir, periodMs, chainCursor: opts.anchorCursor, startMs: this.open * periodMs, logger: this.log })
        : null
  }

  private periodOf(t: number): number {
    return Math.floor(t / this.periodMs)
  }

  async start(): Promise<void> {
    if (this.clearListsFlag) {
      try {
        this.clearLists = (await this.clearListsFlag()) === true
        if (this.clearLists) this.log.warn('reporting: this contract was deployed with publicSensitiveLists: sensitive reports name their publishers and receivers in clear on chain')
      } catch (err) {
        this.log.warn('reporting: could not read the contract\'s publicSensitiveLists; sensitive reports go on chain as commitments', { error: message(err) })
      }
    }
    // Periods that ended while no proxy ran them to their end: from the cursor (or, without one, the
    // journal's newest entry) up to the one before now. A crash before the cursor was written only
    // closes a period again, which the dedupe keys make a no-op.
    const current = this.periodOf(this.now())
    const lastT = this.journal.lastEntryTime
    const newest = typeof lastT === 'number' && lastT > 0 ? this.periodOf(lastT) : null
    const cursor = this.load()
    if (newest !== null) {
      const to = Math.min(newest, current - 1)
      let from = cursor !== null ? cursor + 1 : newest
      from = Math.max(from, to - CATCH_UP + 1)
      if (from <= to) this.log.info('reporting: closing periods left unfinished by an earlier run', { from, to })
      for (let k = from; k <= to; k++) await this.closePeriod(k).catch((err: unknown) => this.log.warn('reporting: could not close a period an earlier run left open', { period: k, error: message(err) }))
    }
    // Downtime leaves periods with no entries unanchored too: the anchor sequence catches up to the last
    // ended period (a no-op when it is there already).
    await this.sendAnchor(current - 1).catch((err: unknown) => this.log.warn('reporting: could not anchor the periods an earlier run left', { error: message(err) }))
    if (typeof this.journal.setReporter === 'function' && typeof this.outbox.reporterAddress === 'function') {
      const journal = this.journal
      void this.outbox
        .reporterAddress()
        .then((a) => journal.setReporter!(a))
        .catch((err: unknown) => this.log.warn('reporting: could not record the reporter address in the journal', { error: message(err) }))
    }
    if (this.autoStart) this.armBoundary()
  }

  private armBoundary(): void {
    clearTimeout(this.boundaryTimer)
    if (this.stopped) return
    const next = (this.open + 1) * this.periodMs
    const delay = Math.max(10, Math.min(next - this.now() + 5, 2 ** 31 - 1))
    this.boundaryTimer = setTimeout(() => {
      void this.tick().finally(() => this.armBoundary())
    }, delay)
    this.boundaryTimer.unref()
  }

  // ---------------------------------------------------------------- closing a period

  private async closePeriod(k: number): Promise<void> {
    const periodMs = this.periodMs
    const from = Math.floor((k * periodMs) / 1000)
    const to = Math.floor(((k + 1) * periodMs) / 1000)
    // Everything decided before the boundary is durable once periodTally resolves (it flushes the journal).
    const tally = await this.journal.periodTally(k)
    const tasks: Promise<void>[] = []

    // (a) sensitive topics: one report per topic with traffic, the first maxTopics to appear.
    const topics = [...tally.sensitive].filter(([, s]) => s.pub.size > 0 || s.recv.size > 0)
    const dropped = topics.length - Math.min(topics.length, this.sensTopics) + tally.droppedTopics.size
    for (const [topic, s] of topics.slice(0, this.sensTopics).sort(byKey)) {
      const dedupeKey = `sensitive:${periodMs}:${k}:${topicId(topic)}`
      if (!this.clearLists) {
        // Every address the journal counted, as a commitment: its size on chain does not grow with them.
        if (s.omitted > 0) this.noteOmitted(topic, s.omitted, 'the journal\'s tally')
        const c = membersRecords(s)
        tasks.push(this.enqueue('sensitive', { kind: 'sensitive', method: 'recordSensitive', args: [topicId(topic), from, to, c.publishers, c.published, c.receivers, c.received, c.membersRoot], dedupeKey }))
        continue
      }
      const pub = [...s.pub].slice(0, this.sensAddrs).sort(byKey)
      const recv = [...s.recv].slice(0, this.sensAddrs).sort(byKey)
      const omitted = s.omitted + [...s.pub].slice(this.sensAddrs).reduce((n, [, c]) => n + c, 0) + [...s.recv].slice(this.sensAddrs).reduce((n, [, c]) => n + c, 0)
      if (omitted > 0) this.noteOmitted(topic, omitted, 'one report')
      tasks.push(
        this.enqueue('sensitive', {
          kind: 'sensitive',
          method: 'recordSensitiveClear',
          args: [topicId(topic), from, to, pub.map(([x]) => x), pub.map(([, n]) => Math.min(n, MAX_U32)), recv.map(([x]) => x), recv.map(([, n]) => Math.min(n, MAX_U32))],
          dedupeKey,
        }),
      )
    }
    if (dropped > 0) {
      this.counts.droppedTopics += dropped
      this.log.warn('reporting: more sensitive topics had traffic than reports per period allow; the rest are only in the journal', { period: k, dropped, maxTopics: this.sensTopics })
    }

    // (b) refused attempts: the first maxTopics - 1 names to appear, the rest under "$other".
    if (tally.denied.size > 0) {
      const counts = new Map<string, number>()
      for (const [name, n] of tally.denied) {
        const key = counts.has(name) || counts.size < this.deniedTopics - 1 ? name : OTHER_TOPIC
        counts.set(key, (counts.get(key) ?? 0) + n)
      }
      const entries = [...counts].sort(byKey)
      tasks.push(
        this.enqueue('denied', {
          kind: 'denied',
          method: 'recordDenied',
          args: [from, to, entries.map(([name]) => topicId(name)), entries.map(([, n]) => Math.min(n, MAX_U32))],
          dedupeKey: `denied:${periodMs}:${k}:end`,
        }),
      )
    }

    // (c) the journal's root of the period, and of every period ended since (empty ones too).
    tasks.push(this.sendAnchor(Math.max(k, this.periodOf(this.now()) - 1)))

    const results = await Promise.allSettled(tasks)
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    for (const r of failed) this.log.error('reporting: a period report failed', { period: k, error: message(r.reason) })
    if (failed.length > 0) throw new Error(`period ${k}: ${failed.length} report(s) not enqueued`)
    this.lastClosed = Math.max(this.lastClosed ?? -Infinity, k)
    await this.save(k)
    this.log.info('reporting: period closed', { period: k, from, to, decisions: tally.decisions, sensitiveTopics: tally.sensitive.size, denied: tally.deniedTotal })
  }

  private noteOmitted(topic: string, omitted: number, holder: string): void {
    this.counts.omittedAddresses += omitted
    this.log.warn(`reporting: a sensitive topic had more addresses than ${holder} holds; the rest are only in the journal`, { topic, omitted, maxAddresses: holder === 'one report' ? this.sensAddrs : undefined })
  }

  /** The anchor sequence up to period k, empty periods included (anchoring.ts). */
  private async sendAnchor(k: number): Promise<void> {
    await this.anchors?.upTo(k)
  }

  private async enqueue(kind: 'anchor' | 'sensitive' | 'denied', intent: IntentInput): Promise<void> {
    const res = await this.outbox.enqueue(intent)
    if (res.error) throw new Error(res.error)
    if (!res.deduped) this.counts[kind]++
  }

  // ---------------------------------------------------------------- public

  /** Closes every period that has ended, one after another. */
  async tick(): Promise<void> {
    const run = async () => {
      const current = this.periodOf(this.now())
      // A clock jump over many empty periods: those are empty in the journal too (cheap to ask).
      while (this.open < current) {
        const k = this.open
        try {
          await this.closePeriod(k)
        } catch (err) {
          this.log.error('reporting: could not enqueue a period report', { period: k, error: message(err) })
        }
        this.open = k + 1
      }
    }
    this.work = this.work.then(run, run)
    await this.work
  }

  private async save(k: number): Promise<void> {
    const state: StateFile = { version: 2, periodMs: this.periodMs, lastClosed: k }
    try {
      await replaceFile(join(this.dir, STATE_FILE), JSON.stringify(state) + '\n')
    } catch (err) {
      this.log.warn('reporting: could not save the reporting cursor', { error: message(err) })
    }
  }

  /** The last period closed, from the cursor (or an older run's open-period file), or null. */
  private load(): number | null {
    let text: string
    try {
      text = readFileSync(join(this.dir, STATE_FILE), 'utf8')
    } catch {
      return null
    }
    try {
      const s = JSON.parse(text) as Partial<StateFile> & { period?: number }
      if (s.periodMs !== this.periodMs) return null // another period length: its periods are not ours
      if (s.version === 2 && Number.isInteger(s.lastClosed)) return s.lastClosed!
      if (Number.isInteger(s.period)) return s.period! - 1 // version 1 saved the open period's counts
      return null
    } catch (err) {
      this.log.warn('reporting: the reporting cursor is unreadable; closing from the journal', { error: message(err) })
      return null
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.boundaryTimer)
    await this.work
  }

  status(): ReportingStatus {
    const k = this.open
    return {
      period: k,
      fromTime: Math.floor((k * this.periodMs) / 1000),
      toTime: Math.floor(((k + 1) * this.periodMs) / 1000),
      enqueued: { anchor: this.counts.anchor + (this.anchors?.sent ?? 0), sensitive: this.counts.sensitive, denied: this.counts.denied },
      droppedTopics: this.counts.droppedTopics,
      omittedAddresses: this.counts.omittedAddresses,
      lastClosed: this.lastClosed,
    }
  }
}
