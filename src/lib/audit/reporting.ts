/**
 * The period reporter the proxy runs. Every decision is passed to record() (synchronous, O(1), no I/O);
 * each epoch-aligned period [k·P, (k+1)·P) is summarised and, when it ends, put on chain through the outbox:
 *
 * - sensitive topics: one `recordSensitive(topicId, from, to, publishers, published, receivers, received)`
 *   per sensitive topic with traffic. Publishers are counted by allowed PUBLISH decisions, receivers by
 *   allowed deliveries (broker → client), not by SUBSCRIBE packets, so a long-lived subscriber is counted
 *   in every period it receives something;
 * - refused attempts (connect, publish, subscribe, will): one `recordDenied(from, to, topicIds, counts)`,
 *   topic ids being keccak256(topic name or filter); refused connects count under keccak256("$connect"),
 *   topics beyond the cap under keccak256("$other");
 * - the journal's Merkle root of the period: one `anchor(from, to, firstSeq, count, root, prevChain, chain)`,
 *   continuing this reporter's anchor sequence, empty periods included (anchoring.ts).
 *
 * Cost is bounded whatever the traffic: per period at most one anchor, `denied.maxPerPeriod` (default 1)
 * denied summaries and `sensitive.maxTopics` sensitive reports, each of bounded size. Every intent carries a
 * dedupe key (kind, period length, period), so a restart that closes a period again enqueues nothing twice.
 *
 * Restarts: the open period's aggregate is written to `<dir>/reporting.json` every `persistEveryMs` and on
 * stop(). On start, an aggregate of a period that has ended since is closed and reported; one of the current
 * period is continued, so boundaries stay exact across restarts. A kill -9 loses at most the counts since
 * the last write (the journal itself loses nothing; it is the record of every decision).
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { topicId } from '../chain/codec.js'
import { replaceFile } from '../fs/durable.js'
import { silentLogger, type Logger } from '../proxy/log.js'
import type { DecisionEvent } from '../proxy/session.js'
import type { EnqueueResult, IntentInput } from '../chain/outbox.js'
import type { AnchorCursor } from '../chain/client.js'
import { AnchorSequencer, type AnchorJournal, type RangeRootLike } from './anchoring.js'

export const CONNECT_TOPIC = '$connect'
export const OTHER_TOPIC = '$other'
const MAX_U32 = 2 ** 32 - 1
const STATE_FILE = 'reporting.json'

/** What reporting needs from the journal (src/lib/audit/journal.ts); checked with typeof, all optional. */
export interface JournalLike extends Partial<Omit<AnchorJournal, 'periodRoot'>> {
  periodMs?: number
  periodRoot?: (k: number) => Promise<RangeRootLike> | RangeRootLike
  setReporter?: (address: string) => Promise<void> | void
  /** Time of the newest entry when the journal was opened (unix ms), so a period a crash left unanchored is anchored at the next start. */
  lastEntryTime?: number
}

export interface ReportingOptions {
  outbox: { enqueue(intent: IntentInput): Promise<EnqueueResult>; readonly dir?: string; reporterAddress?: () => Promise<string> }
  journal?: JournalLike | null
  /** Anchor the journal's periods (default true). A reporter key has one anchor sequence: one journal per key. */
  anchor?: boolean
  /** Where this reporter's anchor sequence ends on chain (the contract's anchorCursor), read once at start. */
  anchorCursor?: () => Promise<AnchorCursor>
  /** Where the open period's aggregate is kept (default: the outbox's directory). */
  dir?: string
  /** Period length in ms, a whole number of seconds (default: the journal's, else 30 minutes). */
  periodMs?: number
  /** Clock, unix ms (tests inject one). */
  now?: () => number
  /** How often the open period's aggregate is written to disk (ms, default 10,000). */
  persistEveryMs?: number
  denied?: {
    /** Denied summaries per period at most (default 1: the one at the period's end). */
    maxPerPeriod?: number
    /** Send a summary early after this many refusals (still within maxPerPeriod). Default: only at the end. */
    flushEvery?: number
    /** Distinct topic ids per summary; the rest count under keccak256("$other"). Default 64. */
    maxTopics?: number
  }
  sensitive?: {
    /** Sensitive topics reported per period (one transaction each); topics beyond it are logged. Default 16. */
    maxTopics?: number
    /** Distinct publishers, and distinct receivers, per topic and period. Default 100 each. */
    maxAddresses?: number
  }
  /** Start the boundary and persistence timers (default true). Without them, call tick() and persist(). */
  autoStart?: boolean
  logger?: Logger
}

export interface ReportingStatus {
  period: number
  fromTime: number
  toTime: number
  /** Decisions recorded in the open period. */
  decisions: number
  sensitiveTopics: number
  denied: number
  /** Intents enqueued since start, per kind. */
  enqueued: { anchor: number; sensitive: number; denied: number }
  /** Sensitive topics left out of a period's reports because of maxTopics; addresses beyond maxAddresses. */
  droppedTopics: number
  omittedAddresses: number
  lastClosed: number | null
}

export interface Reporting {
  readonly periodMs: number
  /** Counts one decision. Synchronous, never throws, never waits. */
  record(e: DecisionEvent): void
  /** Closes the open period if it has ended (the timer does this too) and waits for its intents to be enqueued. */
  tick(): Promise<void>
  /** Writes the open period's aggregate to disk (after any period being closed). */
  persist(): Promise<void>
  /** Stops the timers and writes the aggregate; the period is continued or closed by the next start. */
  stop(): Promise<void>
  status(): ReportingStatus
}

interface TopicAgg {
  pub: Map<string, number>
  recv: Map<string, number>
  omitted: number
}

interface Agg {
  k: number
  decisions: number
  sensitive: Map<string, TopicAgg>
  droppedTopics: Set<string>
  denied: Map<string, number>
  deniedTotal: number
  /** Refusals since the last (early) denied summary, and where the current window starts (ms). */
  deniedSinceFlush: number
  deniedWindowMs: number
  deniedFlushes: number
}

interface StateFile {
  version: 1
  periodMs: number
  period: number
  decisions: number
  sensitive: Record<string, { pub: Record<string, number>; recv: Record<string, number>; omitted: number }>
  droppedTopics: string[]
  denied: Record<string, number>
  deniedTotal: number
  deniedWindowMs: number
  deniedFlushes: number
}

function fresh(k: number, periodMs: number): Agg {
  return { k, decisions: 0, sensitive: new Map(), droppedTopics: new Set(), denied: new Map(), deniedTotal: 0, deniedSinceFlush: 0, deniedWindowMs: k * periodMs, deniedFlushes: 0 }
}

const toObj = (m: Map<string, number>): Record<string, number> => Object.fromEntries(m)
const toMap = (o: Record<string, number> | undefined): Map<string, number> => new Map(Object.entries(o ?? {}).filter(([, v]) => Number.isFinite(v)))

function serialize(a: Agg, periodMs: number): StateFile {
  const sensitive: StateFile['sensitive'] = {}
  for (const [t, s] of a.sensitive) sensitive[t] = { pub: toObj(s.pub), recv: toObj(s.recv), omitted: s.omitted }
  return { version: 1, periodMs, period: a.k, decisions: a.decisions, sensitive, droppedTopics: [...a.droppedTopics], denied: toObj(a.denied), deniedTotal: a.deniedTotal, deniedWindowMs: a.deniedWindowMs, deniedFlushes: a.deniedFlushes }
}

function deserialize(s: StateFile, periodMs: number): Agg {
  const a = fresh(s.period, periodMs)
  a.decisions = s.decisions ?? 0
  for (const [t, v] of Object.entries(s.sensitive ?? {})) a.sensitive.set(t, { pub: toMap(v.pub), recv: toMap(v.recv), omitted: v.omitted ?? 0 })
  for (const t of s.droppedTopics ?? []) a.droppedTopics.add(t)
  a.denied = toMap(s.denied)
  a.deniedTotal = s.deniedTotal ?? 0
  a.deniedWindowMs = s.deniedWindowMs ?? a.deniedWindowMs
  a.deniedFlushes = s.deniedFlushes ?? 0
  return a
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Starts the period reporter. Throws only for invalid options. */
export async function startReporting(opts: ReportingOptions): Promise<Reporting> {
  const journal = opts.journal ?? null
  const journalPeriod = journal && typeof journal.periodMs === 'number' ? journal.periodMs : undefined
  const periodMs = opts.periodMs ?? journalPeriod ?? 30 * 60_000
  if (!Number.isInteger(periodMs) || periodMs < 1000 || periodMs % 1000 !== 0) throw new RangeError('the reporting period must be a whole number of seconds')
  if (journalPeriod !== undefined && journalPeriod !== periodMs) throw new RangeError(`the reporting period (${periodMs} ms) differs from the journal's (${journalPeriod} ms): anchors would not match its periods`)
  const dir = opts.dir ?? opts.outbox.dir
  if (!dir) throw new RangeError('startReporting needs a directory (dir, or an outbox with one) for the open period')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const r = new PeriodReporter(opts, periodMs, dir, journal)
  await r.start()
  return r
}

class PeriodReporter implements Reporting {
  readonly periodMs: number
  private readonly outbox: ReportingOptions['outbox']
  private readonly journal: JournalLike | null
  private readonly dir: string
  private readonly now: () => number
  private readonly log: Logger
  private readonly persistEveryMs: number
  private readonly deniedMax: number
  private readonly flushEvery: number
  private readonly deniedTopics: number
  private readonly sensTopics: number
  private readonly sensAddrs: number
  private readonly autoStart: boolean

  private agg: Agg
  private dirty = false
  /** Closing and early flushes run one after another on this chain; persist() waits for it. */
  private work: Promise<void> = Promise.resolve()
  private boundaryTimer: NodeJS.Timeout | undefined
  private persistTimer: NodeJS.Timeout | undefined
  private stopped = false
  private lastClosed: number | null = null
  private counts = { anchor: 0, sensitive: 0, denied: 0, droppedTopics: 0, omittedAddresses: 0 }
  private readonly anchors: AnchorSequencer | null

  constructor(opts: ReportingOptions, periodMs: number, dir: string, journal: JournalLike | null) {
    this.periodMs = periodMs
    this.outbox = opts.outbox
    this.journal = journal
    this.dir = dir
    this.now = opts.now ?? Date.now
    this.log = opts.logger ?? silentLogger
    this.persistEveryMs = Math.max(100, opts.persistEveryMs ?? 10_000)
    this.deniedMax = Math.max(1, Math.floor(opts.denied?.maxPerPeriod ?? 1))
    this.flushEvery = opts.denied?.flushEvery !== undefined && opts.denied.flushEvery > 0 ? Math.floor(opts.denied.flushEvery) : Infinity
    this.deniedTopics = Math.max(1, Math.floor(opts.denied?.maxTopics ?? 64))
    this.sensTopics = Math.max(0, Math.floor(opts.sensitive?.maxTopics ?? 16))
    this.sensAddrs = Math.max(1, Math.floor(opts.sensitive?.maxAddresses ?? 100))
    this.autoStart = opts.autoStart !== false
    this.agg = fresh(this.periodOf(this.now()), periodMs)
    const j = journal
    this.anchors =
      opts.anchor !== false && j && typeof j.periodRoot === 'function'
        ? new AnchorSequencer({ journal: j as AnchorJournal, sink: this.outbox, dir, periodMs, chainCursor: opts.anchorCursor, startMs: this.agg.k * periodMs, logger: this.log })
        : null
  }

  private periodOf(t: number): number {
    return Math.floor(t / this.periodMs)
  }

  async start(): Promise<void> {
    const saved = this.load()
    if (saved) {
      const { agg, periodMs } = saved
      if (periodMs === this.periodMs && agg.k === this.agg.k) {
        this.agg = agg
        this.log.info('reporting: continuing the open period', { period: agg.k, decisions: agg.decisions })
      } else if (periodMs !== this.periodMs || agg.k < this.agg.k) {
        // A period that has ended (or one of another length, reported with its own bounds).
        this.log.info('reporting: closing a period left unfinished by an earlier run', { period: agg.k, periodMs })
        this.work = this.closePeriod(agg, periodMs)
        await this.work
        this.dirty = true
        await this.persist()
      }
    }
    // After a crash (kill -9) or downtime, periods may have ended unanchored: the anchor sequence catches
    // up to the last closed period (a no-op when it is there already).
    this.work = this.work.then(() => this.sendAnchor(this.agg.k - 1)).catch((err: unknown) => this.log.warn('reporting: could not anchor the periods an earlier run left', { error: message(err) }))
    await this.work
    if (this.journal && typeof this.journal.setReporter === 'function' && typeof this.outbox.reporterAddress === 'function') {
      const journal = this.journal
      void this.outbox
        .reporterAddress()
        .then((a) => journal.setReporter!(a))
        .catch((err: unknown) => this.log.warn('reporting: could not record the reporter address in the journal', { error: message(err) }))
    }
    if (this.autoStart) {
      this.armBoundary()
      this.persistTimer = setInterval(() => void this.persist(), this.persistEveryMs)
      this.persistTimer.unref()
    }
  }

  private armBoundary(): void {
    clearTimeout(this.boundaryTimer)
    if (this.stopped) return
    const next = (this.agg.k + 1) * this.periodMs
    const delay = Math.max(10, Math.min(next - this.now() + 5, 2 ** 31 - 1))
    this.boundaryTimer = setTimeout(() => {
      void this.tick().finally(() => this.armBoundary())
    }, delay)
    this.boundaryTimer.unref()
  }

  // ---------------------------------------------------------------- the hot path

  record(e: DecisionEvent): void {
    try {
      const t = this.now()
      const k = this.periodOf(t)
      if (k > this.agg.k) this.rollover(k)
      const a = this.agg
      a.decisions++
      this.dirty = true
      if (e.allowed) {
        if (!e.sensitive || !e.topic || !e.address) return
        if (e.kind !== 'publish' && e.kind !== 'deliver') return // subscribe packets do not count: deliveries do
        let s = a.sensitive.get(e.topic)
        if (!s) {
          if (a.sensitive.size >= this.sensTopics) {
            if (!a.droppedTopics.has(e.topic) && a.droppedTopics.size < 1000) a.droppedTopics.add(e.topic)
            return
          }
          s = { pub: new Map(), recv: new Map(), omitted: 0 }
          a.sensitive.set(e.topic, s)
        }
        const m = e.kind === 'publish' ? s.pub : s.recv
        const who = e.address.toLowerCase()
        const n = m.get(who)
        if (n !== undefined) m.set(who, n + 1)
        else if (m.size < this.sensAddrs) m.set(who, 1)
        else s.omitted++
        return
      }
      if (e.kind === 'deliver') return // a dropped delivery is not an attempt by the receiver
      const name = e.kind === 'connect' ? CONNECT_TOPIC : e.topic
      if (!name) return
      const key = a.denied.has(name) || a.denied.size < this.deniedTopics - 1 ? name : OTHER_TOPIC
      a.denied.set(key, (a.denied.get(key) ?? 0) + 1)
      a.deniedTotal++
      a.deniedSinceFlush++
      if (a.deniedSinceFlush >= this.flushEvery && a.deniedFlushes < this.deniedMax - 1) this.earlyDenied(t)
    } catch (err) {
      this.log.error('reporting: could not record a decision', { error: message(err) })
    }
  }

  private rollover(k: number): void {
    const ended = this.agg
    this.agg = fresh(k, this.periodMs)
    this.dirty = true
    this.chain(() => this.closePeriod(ended))
  }

  private earlyDenied(t: number): void {
    const a = this.agg
    const counts = a.denied
    const fromMs = a.deniedWindowMs
    const toMs = Math.min(t, (a.k + 1) * this.periodMs)
    a.denied = new Map()
    a.deniedSinceFlush = 0
    a.deniedWindowMs = toMs
    const n = a.deniedFlushes++
    const k = a.k
    this.chain(() => this.sendDenied(k, `${n}`, fromMs, toMs, counts))
  }

  private chain(fn: () => Promise<void>): void {
    this.work = this.work.then(fn).catch((err: unknown) => this.log.error('reporting: could not enqueue a period report', { error: message(err) }))
  }

  // ---------------------------------------------------------------- closing a period

  private async closePeriod(a: Agg, periodMs = this.periodMs): Promise<void> {
    const fromMs = a.k * periodMs
    const toMs = (a.k + 1) * periodMs
    const from = Math.floor(fromMs / 1000)
    const to = Math.floor(toMs / 1000)
    const tasks: Promise<void>[] = []

    // (a) sensitive topics: one report per topic with traffic.
    for (const [topic, s] of [...a.sensitive].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
      if (s.pub.size === 0 && s.recv.size === 0) continue
      const pub = [...s.pub].sort(([x], [y]) => (x < y ? -1 : 1))
      const recv = [...s.recv].sort(([x], [y]) => (x < y ? -1 : 1))
      if (s.omitted > 0) {
        this.counts.omittedAddresses += s.omitted
        this.log.warn('reporting: a sensitive topic had more addresses than one report holds; the rest are only in the journal', { topic, omitted: s.omitted, maxAddresses: this.sensAddrs })
      }
      tasks.push(
        this.enqueue('sensitive', {
          kind: 'sensitive',
          method: 'recordSensitive',
          args: [topicId(topic), from, to, pub.map(([x]) => x), pub.map(([, n]) => Math.min(n, MAX_U32)), recv.map(([x]) => x), recv.map(([, n]) => Math.min(n, MAX_U32))],
          dedupeKey: `sensitive:${periodMs}:${a.k}:${topicId(topic)}`,
        }),
      )
    }
    if (a.droppedTopics.size > 0) {
      this.counts.droppedTopics += a.droppedTopics.size
      this.log.warn('reporting: more sensitive topics had traffic than reports per period allow; the rest are only in the journal', { period: a.k, dropped: a.droppedTopics.size, maxTopics: this.sensTopics })
    }

    // (b) refused attempts: the rest of the period since the last early summary.
    if (a.denied.size > 0) tasks.push(this.sendDenied(a.k, 'end', a.deniedWindowMs, toMs, a.denied, periodMs))

    // (c) the journal's root of the period, and of every period ended since (empty ones too).
    if (periodMs === this.periodMs) tasks.push(this.sendAnchor(Math.max(a.k, this.periodOf(this.now()) - 1)))

    const results = await Promise.allSettled(tasks)
    for (const r of results) if (r.status === 'rejected') this.log.error('reporting: a period report failed', { period: a.k, error: message(r.reason) })
    this.lastClosed = Math.max(this.lastClosed ?? -Infinity, a.k)
    this.log.info('reporting: period closed', { period: a.k, from, to, decisions: a.decisions, sensitiveTopics: a.sensitive.size, denied: a.deniedTotal })
  }

  private sendDenied(k: number, part: string, fromMs: number, toMs: number, counts: Map<string, number>, periodMs = this.periodMs): Promise<void> {
    const entries = [...counts].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    return this.enqueue('denied', {
      kind: 'denied',
      method: 'recordDenied',
      args: [Math.floor(fromMs / 1000), Math.ceil(toMs / 1000), entries.map(([name]) => topicId(name)), entries.map(([, n]) => Math.min(n, MAX_U32))],
      dedupeKey: `denied:${periodMs}:${k}:${part}`,
    })
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

  async tick(): Promise<void> {
    const k = this.periodOf(this.now())
    if (k > this.agg.k) this.rollover(k)
    await this.work
  }

  async persist(): Promise<void> {
    await this.work
    if (!this.dirty) return
    this.dirty = false
    const state = serialize(this.agg, this.periodMs)
    try {
      await replaceFile(join(this.dir, STATE_FILE), JSON.stringify(state) + '\n')
    } catch (err) {
      this.dirty = true
      this.log.warn('reporting: could not save the open period', { error: message(err) })
    }
  }

  private load(): { agg: Agg; periodMs: number } | null {
    let text: string
    try {
      text = readFileSync(join(this.dir, STATE_FILE), 'utf8')
    } catch {
      return null
    }
    try {
      const s = JSON.parse(text) as StateFile
      if (s.version !== 1 || !Number.isInteger(s.period) || !Number.isInteger(s.periodMs) || s.periodMs < 1000) return null
      return { agg: deserialize(s, s.periodMs), periodMs: s.periodMs }
    } catch (err) {
      this.log.warn('reporting: the saved period is unreadable; starting afresh', { error: message(err) })
      return null
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.boundaryTimer)
    clearInterval(this.persistTimer)
    this.dirty = true
    await this.persist()
  }

  status(): ReportingStatus {
    const a = this.agg
    return {
      period: a.k,
      fromTime: Math.floor((a.k * this.periodMs) / 1000),
      toTime: Math.floor(((a.k + 1) * this.periodMs) / 1000),
      decisions: a.decisions,
      sensitiveTopics: a.sensitive.size,
      denied: a.deniedTotal,
      enqueued: { anchor: this.counts.anchor + (this.anchors?.sent ?? 0), sensitive: this.counts.sensitive, denied: this.counts.denied },
      droppedTopics: this.counts.droppedTopics,
      omittedAddresses: this.counts.omittedAddresses,
      lastClosed: this.lastClosed,
    }
  }
}
