/**
 * Connects the proxy's events to the journal. Every decision becomes an entry — connects, publishes,
 * subscribes, wills, refused deliveries and allowed deliveries on sensitive topics (allowed deliveries on
 * other topics are not journaled: they are the bulk of the traffic and decide nothing new) — plus
 * disconnects and bans. The packet path never waits: the recorder only queues (journal.append returns at
 * once; the write is grouped and fsync'd later) and counts what could not be written.
 */
import { getAddress } from 'ethers'
import type { DecisionEvent } from '../proxy/session.js'
import { silentLogger, type Logger } from '../proxy/log.js'
import type { EntryInput } from './entry.js'

/** What the recorder needs from the proxy: the ProxyHandle is one. */
export interface RecorderSource {
  on(event: string, listener: (...args: unknown[]) => void): unknown
  off(event: string, listener: (...args: unknown[]) => void): unknown
}

type Listener = (...args: unknown[]) => void

/** What the recorder needs from the journal: the Journal is one. */
export interface RecorderSink {
  append(input: EntryInput): Promise<unknown>
  flush(): Promise<void>
}

export interface RecorderOptions {
  /** Country of an IP for connect entries (pass geo/lookup's countryOf; the proxy preloads its database). */
  countryOf?: (ip: string) => string | null
  logger?: Logger
  /**
   * Publishes and deliveries repeat at message rate: identical ones (same kind, client, topic, outcome and
   * reason) within this window become one entry with a count. 0 = one entry per decision. Default 1000 ms.
   */
  coalesceMs?: number
}

/** Decisions that happen at message rate, and are coalesced. Connects, subscribes, wills and bans never are. */
const COALESCED = new Set(['publish', 'deliver'])
/** Distinct open coalesced entries before the window is flushed early (bounds memory under a topic flood). */
const MAX_OPEN = 10_000

export interface RecorderStats {
  /** Entries handed to the journal. */
  queued: number
  /** Entries the journal acknowledged (on disk). */
  written: number
  /** Entries refused because the journal's backlog was full (the disk stalled). */
  dropped: number
  /** Entries whose write failed. */
  failed: number
  /** Allowed deliveries on non-sensitive topics, deliberately not journaled. */
  skipped: number
}

export interface Recorder {
  stats(): RecorderStats
  /** Stops listening and waits until everything queued is on disk (or failed). Does not close the journal. */
  stop(): Promise<RecorderStats>
}

export interface BanEvent {
  subject: string
  until: number
  source: 'local' | 'chain'
  ip?: string
  address?: string
}

export interface SessionEvent {
  ip: string
  address?: string
  clientId?: string
  reason?: string
}

/** The entry for a decision, or null for an allowed delivery on a topic that is not sensitive. */
export function entryForDecision(e: DecisionEvent, countryOf?: (ip: string) => string | null): EntryInput | null {
  if (e.kind === 'deliver' && e.allowed && !e.sensitive) return null
  const entry: EntryInput = { kind: e.kind, outcome: e.allowed ? 'allow' : 'deny', reason: e.reason, address: e.address, clientId: e.clientId, ip: e.ip, topic: e.topic }
  if (e.kind === 'connect' && countryOf && e.ip) entry.country = countryOf(e.ip) ?? undefined
  return entry
}

/** Reasons for which the proxy itself ended a session (a refusal, not the client leaving). */
const KICKS = new Set(['banned', 'will-revoked'])

export function entryForClose(e: SessionEvent): EntryInput {
  const reason = e.reason ?? 'closed'
  return { kind: 'disconnect', outcome: KICKS.has(reason) ? 'deny' : 'allow', reason, address: e.address, clientId: e.clientId, ip: e.ip }
}

const PADDED_ADDRESS = /^0x0{24}([0-9a-fA-F]{40})$/

export function entryForBan(e: BanEvent): EntryInput {
  const entry: EntryInput = { kind: 'ban', outcome: 'deny', reason: `ban-${e.source}`, ip: e.ip, address: e.address, until: e.until }
  if (!e.ip && !e.address) {
    const m = PADDED_ADDRESS.exec(e.subject)
    if (m) entry.address = getAddress(`0x${m[1]}`)
    else entry.subject = e.subject // a keyed hash of an IP shared by another proxy
  }
  return entry
}

export function attachRecorder(proxy: RecorderSource, journal: RecorderSink, opts: RecorderOptions = {}): Recorder {
  const log = opts.logger ?? silentLogger
  const s: RecorderStats = { queued: 0, written: 0, dropped: 0, failed: 0, skipped: 0 }
  let stopped = false
  let lastLoggedFailure = 0

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
  const record = (entry: EntryInput | null) => {
    if (stopped) return
    if (!entry) {
      s.skipped++
      return
    }
    s.queued++
    try {
      journal.append(entry).then(onWritten, onFailed)
    } catch (err) {
      onFailed(err as Error)
    }
  }

  // Coalescing: key → the entry being counted; flushed every window, in the order the keys first appeared.
  const coalesceMs = opts.coalesceMs ?? 1000
  let open = new Map<string, EntryInput>()
  const flush = () => {
    const batch = open
    open = new Map()
    for (const entry of batch.values()) record(entry.count === 1 ? { ...entry, count: undefined, since: undefined } : entry)
  }
  const timer = coalesceMs > 0 ? setInterval(flush, coalesceMs) : undefined
  timer?.unref()
  const onDecision = (e: DecisionEvent) => {
    if (coalesceMs <= 0 || !COALESCED.has(e.kind)) return record(entryForDecision(e, opts.countryOf))
    const key = `${e.kind}\u0000${e.allowed ? 1 : 0}\u0000${e.reason}\u0000${e.address ?? ''}\u0000${e.clientId ?? ''}\u0000${e.ip}\u0000${e.topic ?? ''}`
    const current = open.get(key)
    if (current) {
      current.count = (current.count ?? 1) + 1
      return
    }
    const entry = entryForDecision(e, opts.countryOf)
    if (!entry) return record(null)
    open.set(key, { ...entry, count: 1, since: Date.now() })
    if (open.size >= MAX_OPEN) flush()
  }
  const onClose = (e: SessionEvent) => record(entryForClose(e))
  const onBan = (e: BanEvent) => record(entryForBan(e))
  proxy.on('decision', onDecision as Listener)
  proxy.on('session-close', onClose as Listener)
  proxy.on('ban', onBan as Listener)

  return {
    stats: () => ({ ...s }),
    stop: async () => {
      if (!stopped) {
        clearInterval(timer)
        flush()
        stopped = true
        proxy.off('decision', onDecision as Listener)
        proxy.off('session-close', onClose as Listener)
        proxy.off('ban', onBan as Listener)
      }
      await journal.flush()
      // Let the append promises' handlers run, so the counters include the last batch.
      await new Promise((r) => setImmediate(r))
      return { ...s }
    },
  }
}
