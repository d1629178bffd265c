/**
 * Connects the proxy's decisions to the journal. Every decision becomes an entry — connects, publishes,
 * subscribes, wills, refused deliveries and allowed deliveries on sensitive topics (allowed deliveries on
 * other topics are journaled only with `deliveries: 'all'`, coalesced per receiver, topic and second: one
 * entry with a `count` and `since` = the first one's time, written when that second is over and never
 * across a period; nothing is held on them) — plus disconnects and bans. `decision(e)` appends at once (the decision time is the entry's time) and returns
 * the promise the proxy holds the acknowledgement on: strict, every journaled decision's; relaxed, only
 * while the journal is more than `relaxedLagMs` behind, so a crash loses at most that window. Nothing ever
 * blocks: the proxy waits on a promise per connection, never the event loop. Identical publishes and
 * deliveries are merged into one entry with a count only within one group-commit batch (journal.ts).
 */
import { bannedAddress } from '../chain/events.js'
import type { BanEvent, DecisionEvent, ProxyEventSource, SessionEvent } from '../policy/types.js'
import { silentLogger, type Logger } from '../log.js'
import type { EntryInput } from './entry.js'

/** What the recorder needs from the proxy: its typed events (the ProxyHandle is a source). */
export type RecorderSource = ProxyEventSource

/** What the recorder needs from the journal: the Journal is one. */
export interface RecorderSink {
  append(input: EntryInput, opts?: { merge?: string; lazy?: boolean }): Promise<unknown>
  flush(): Promise<void>
  /** How far the disk is behind (ms); without it, relaxed never waits. */
  lagMs?(): number
  /** The journal's anchoring period (ms). */
  readonly periodMs?: number
}

/** strict: nothing is acknowledged before its decision is durable. relaxed: only while the disk keeps up. */
export type JournalSync = 'strict' | 'relaxed'

export const RECORDER_DEFAULTS = { sync: 'strict' as JournalSync, relaxedLagMs: 50 }

export interface RecorderOptions {
  /** Country of an IP for connect entries (pass geo/lookup's countryOf; the proxy preloads its database). */
  countryOf?: (ip: string) => string | null
  logger?: Logger
  /** Default strict. */
  sync?: JournalSync
  /** relaxed: acknowledgements wait for the journal once it is this far behind (ms). Default 50. */
  relaxedLagMs?: number
  /** Merge identical publishes and deliveries of one write batch into one entry with a count. Default true. */
  coalesce?: boolean
  /**
   * Which allowed deliveries are journaled: 'sensitive' (default) only those on sensitive topics; 'all' every
   * one, coalesced per receiver/topic/second (so "who received data on topic X" has an answer everywhere).
   */
  deliveries?: JournalDeliveries
  /** The journal's anchoring period (ms): a coalesced second never straddles one. Default: the sink's periodMs, else 1 s (no per-second coalescing). */
  periodMs?: number
  /** Clock (tests). */
  now?: () => number
}

export type JournalDeliveries = 'sensitive' | 'all'

/** Decisions that happen at message rate, and are merged within a batch. Connects, subscribes, wills and bans never are. */
const COALESCED = new Set(['publish', 'deliver'])

export interface RecorderStats {
  /** Entries handed to the journal. */
  queued: number
  /** Entries the journal acknowledged (on disk). */
  written: number
  /** Entries refused because the journal's backlog was full (the disk stalled). */
  dropped: number
  /** Entries whose write failed. */
  failed: number
  /** Allowed deliveries on non-sensitive topics, deliberately not journaled (deliveries 'sensitive'). */
  skipped: number
  /** Allowed deliveries on non-sensitive topics folded into a per-second entry (deliveries 'all'). */
  coalesced: number
}

export interface Recorder {
  /**
   * Journals one decision; returns what to hold its acknowledgement on (resolves once it is durable,
   * rejects if it cannot be written), or null when nothing needs to wait.
   */
  decision(e: DecisionEvent): Promise<unknown> | null
  /** Records session ends and bans from the proxy's events, and decisions too unless `decisions: false` (they come through decision()). */
  listen(proxy: RecorderSource, opts?: { decisions?: boolean }): void
  stats(): RecorderStats
  /** Stops listening and waits until everything queued is on disk (or failed). Does not close the journal. */
  stop(): Promise<RecorderStats>
}

/** The entry for a decision, or null for an allowed delivery on a topic that is not sensitive (unless deliveries 'all'). */
export function entryForDecision(e: DecisionEvent, countryOf?: (ip: string) => string | null, deliveries: JournalDeliveries = 'sensitive'): EntryInput | null {
  if (e.kind === 'deliver' && e.allowed && !e.sensitive && deliveries !== 'all') return null
  const entry: EntryInput = { kind: e.kind, outcome: e.allowed ? 'allow' : 'deny', reason: e.reason, address: e.address, clientId: e.clientId, ip: e.ip, topic: e.topic }
  if (e.sensitive === true) entry.sensitive = true
  if (e.verified === false) entry.unverified = true
  if (e.kind === 'connect' && countryOf && e.ip) entry.country = countryOf(e.ip) ?? undefined
  return entry
}

/** Reasons for which the proxy itself ended a session (a refusal, not the client leaving). */
const KICKS = new Set(['banned', 'will-revoked'])

export function entryForClose(e: SessionEvent): EntryInput {
  const reason = e.reason ?? 'closed'
  return { kind: 'disconnect', outcome: KICKS.has(reason) ? 'deny' : 'allow', reason, address: e.address, clientId: e.clientId, ip: e.ip }
}

export function entryForBan(e: BanEvent): EntryInput {
  const entry: EntryInput = { kind: 'ban', outcome: 'deny', reason: `ban-${e.source}`, ip: e.ip, address: e.address, until: e.until }
  if (!e.ip && !e.address) {
    const banned = bannedAddress(e.subject)
    if (banned) entry.address = banned
    else entry.subject = e.subject // a keyed hash of an IP shared by another proxy
  }
  return entry
}

/** Records a running proxy's events (decisions included): attachRecorder(proxy, journal) = createRecorder + listen. */
export function attachRecorder(proxy: RecorderSource, journal: RecorderSink, opts: RecorderOptions = {}): Recorder {
  const r = createRecorder(journal, opts)
  r.listen(proxy)
  return r
}

export function createRecorder(journal: RecorderSink, opts: RecorderOptions = {}): Recorder {
  const log = opts.logger ?? silentLogger
  const s: RecorderStats = { queued: 0, written: 0, dropped: 0, failed: 0, skipped: 0, coalesced: 0 }
  const deliveries = opts.deliveries ?? 'sensitive'
  const periodMs = opts.periodMs ?? journal.periodMs ?? 1000
  const clock = opts.now ?? Date.now
  const strict = (opts.sync ?? RECORDER_DEFAULTS.sync) === 'strict'
  const lagBound = opts.relaxedLagMs ?? RECORDER_DEFAULTS.relaxedLagMs
  const coalesce = opts.coalesce !== false
  let stopped = false
  let lastLoggedFailure = 0
  let source: RecorderSource | undefined

  const onWritten = () => {
    s.written++
  }
  const onFailed = (err: Error & { code?: string }) => {
    if (err.code === 'JOURNAL_BACKLOG') s.dropped++
    else s.failed++
    // One log line per failure burst, not one per entry.
    const now = Date.now()
    if (now - lastLoggedFailure > 10_000) {
      lastLoggedFailure = now
      log.error('journal entry not recorded', { error: err.message, dropped: s.dropped, failed: s.failed })
    }
  }
  /** The append's promise (handled here, so nobody has to await it), or null. */
  /** `lazy`: nobody holds anything on this entry, so it need not start a write of its own at once. */
  const record = (entry: EntryInput | null, merge?: string, lazy = true): Promise<unknown> | null => {
    if (stopped) return null
    if (!entry) {
      s.skipped++
      return null
    }
    s.queued++
    let p: Promise<unknown>
    try {
      p = journal.append(entry, { merge, lazy })
    } catch (err) {
      onFailed(err as Error)
      const failed = Promise.reject(err as Error)
      failed.catch(() => {}) // handled: counted above
      return failed
    }
    p.then(onWritten, onFailed)
    return p
  }

  // deliveries 'all': allowed deliveries on non-sensitive topics, per receiver/topic/second, until the second is over.
  const seconds = new Map<string, { entry: EntryInput; first: number; count: number }>()
  let secondTimer: ReturnType<typeof setTimeout> | undefined
  const flushSeconds = (all: boolean) => {
    const second = Math.floor(clock() / 1000)
    for (const [key, b] of seconds) {
      if (!all && Math.floor(b.first / 1000) >= second) continue
      seconds.delete(key)
      record(b.count > 1 ? { ...b.entry, count: b.count, since: b.first } : b.entry)
    }
    clearTimeout(secondTimer)
    secondTimer = undefined
    if (seconds.size > 0) armSeconds()
  }
  const armSeconds = () => {
    secondTimer ??= setTimeout(() => flushSeconds(false), 1000 - (clock() % 1000) + 1)
    secondTimer.unref?.()
  }
  const perSecond = (e: DecisionEvent, entry: EntryInput): boolean => {
    const now = clock()
    // The last second of a period is not held: the entry must land in the period its decisions were made in.
    if (stopped || periodMs <= 1000 || (Math.floor(now / 1000) + 1) * 1000 % periodMs === 0) return false
    const key = `${Math.floor(now / 1000)}\u0000${e.address ?? ''}\u0000${e.clientId ?? ''}\u0000${e.ip}\u0000${e.topic ?? ''}\u0000${e.reason}`
    const b = seconds.get(key)
    if (b) {
      b.count++
      s.coalesced++
    } else {
      seconds.set(key, { entry, first: now, count: 1 })
      armSeconds()
    }
    return true
  }

  const decision = (e: DecisionEvent): Promise<unknown> | null => {
    const entry = entryForDecision(e, opts.countryOf, deliveries)
    if (entry && e.kind === 'deliver' && e.allowed && !e.sensitive && perSecond(e, entry)) return null
    const merge = coalesce && entry && COALESCED.has(e.kind) ? `${e.kind}\u0000${e.allowed ? 1 : 0}\u0000${e.reason}\u0000${e.address ?? ''}\u0000${e.clientId ?? ''}\u0000${e.ip}\u0000${e.topic ?? ''}\u0000${e.sensitive ? 1 : 0}` : undefined
    // Strict: the proxy waits on this entry (unless it is a refused delivery, which acknowledges nothing).
    const p = record(entry, merge, !strict || (e.kind === 'deliver' && !e.allowed))
    if (!p || strict) return p
    return (journal.lagMs?.() ?? 0) > lagBound ? p : null
  }
  const onDecision = (e: DecisionEvent) => void decision(e)
  const onClose = (e: SessionEvent) => void record(entryForClose(e))
  const onBan = (e: BanEvent) => void record(entryForBan(e))
  let withDecisions = false

  return {
    decision,
    listen: (proxy, o = {}) => {
      source = proxy
      withDecisions = o.decisions !== false
      if (withDecisions) proxy.on('decision', onDecision)
      proxy.on('session-close', onClose)
      proxy.on('ban', onBan)
    },
    stats: () => ({ ...s }),
    stop: async () => {
      if (!stopped) {
        flushSeconds(true)
        stopped = true
        if (withDecisions) source?.off('decision', onDecision)
        source?.off('session-close', onClose)
        source?.off('ban', onBan)
      }
      await journal.flush()
      // Let the append promises' handlers run, so the counters include the last batch.
      await new Promise((r) => setImmediate(r))
      return { ...s }
    },
  }
}
