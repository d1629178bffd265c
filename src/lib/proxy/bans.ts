/**
 * Bans: counting failures per subject (a client IP, or separately an authenticated address), banning a
 * subject that fails too often, and reporting bans to the contract in rate-limited batches.
 *
 * Subjects on chain are bytes32:
 * - an address: left-padded with zeros (subjectForAddress);
 * - an IP: HMAC-SHA256(subjectKey, "flytrap/ban/ip/v1:" + normalised IP) (subjectForIp). The IPv4 space
 *   is small enough to reverse any unkeyed hash, so clear or plainly hashed IPs never go on chain. Proxies
 *   that share a contract share the key to recognise each other's IP bans. Without a key, IP bans stay
 *   local to the proxy (subjectForIp answers null) and only address bans are reported.
 *
 * Every chain write costs the reporter gas and an attacker decides how many bans happen, so BanReporter
 * hands at most `maxTxPerInterval` (default 1) batch per `intervalMs` to the chain, each with at most
 * `batchMax` subjects, from a de-duplicated queue of at most `maxQueue` subjects that drops the oldest when
 * full. Given the durable outbox (src/lib/chain/outbox.ts), a batch becomes one `recordBans` intent there:
 * on disk before it counts as handed over, sent by the outbox's single sender (nonces, receipts, fee bumps,
 * retries, restarts). Given a bare contract client (older wiring), it sends the transaction itself.
 *
 * Units: BanList works in epoch milliseconds; BanReporter.enqueue takes unix seconds (the contract's unit).
 * Only call enqueue for `fail(...).newBan` (or a changed ban()), not for every failure of a banned subject.
 *
 * BanGuard is the one place the proxy's bans are orchestrated: it records failures, decides and shares
 * bans (local ones, the contract's, and those other worker processes made) and ends the banned sessions.
 */
import type { FlyTrapClient } from '../chain/client.js'
import { banSubjectForAddress, ipBanSubject } from '../chain/events.js'
import type { Outbox } from '../chain/outbox.js'
import { chainError } from '../chain/client.js'
import { silentLogger, type Logger } from '../log.js'
import { ReasonCode } from '../mqtt/reason-codes.js'
import { normalizeIp } from '../net/ip.js'
import type { BanEvent } from '../policy/types.js'
import type { BanOptions } from './options.js'

export type BanSource = BanEvent['source']

export interface Ban {
  subject: string
  /** Epoch milliseconds (exclusive). */
  until: number
  source: BanSource
}

export interface BanListOptions {
  /** Failures within windowMs that trigger a ban (>= 1). */
  threshold: number
  windowMs: number
  durationMs: number
  /** Subjects whose failures are tracked at once; the least recently failing is forgotten first. */
  maxTracked?: number
  /** Bans held at once; the oldest is dropped first. */
  maxBans?: number
}

export interface FailResult {
  banned: boolean
  /** When banned: epoch ms the ban ends. */
  until?: number
  /** True only for the failure that crossed the threshold (report this ban). */
  newBan?: boolean
}

/**
 * Failure counting with a sliding window, and the bans in force. All times are epoch milliseconds passed
 * in by the caller (no clock inside, so tests and replays are exact). Memory is bounded: at most
 * maxTracked subjects × threshold timestamps, and maxBans bans.
 */
export class BanList {
  private readonly threshold: number
  private readonly windowMs: number
  private readonly durationMs: number
  private readonly maxTracked: number
  private readonly maxBans: number
  /** subject → timestamps of its recent failures; Map order = least recently failing first. */
  private readonly failures = new Map<string, number[]>()
  /** subject → ban; Map order = oldest ban first. */
  private readonly bans = new Map<string, { until: number; source: BanSource }>()
  /** Subjects forgotten (failures) or unbanned early (bans) to stay within the caps. */
  evicted = 0

  constructor(opts: BanListOptions) {
    if (!Number.isInteger(opts.threshold) || opts.threshold < 1) throw new RangeError('ban threshold must be a positive integer')
    if (!(opts.windowMs > 0) || !(opts.durationMs > 0)) throw new RangeError('ban windowMs and durationMs must be positive')
    this.threshold = opts.threshold
    this.windowMs = opts.windowMs
    this.durationMs = opts.durationMs
    this.maxTracked = Math.max(1, opts.maxTracked ?? 100_000)
    this.maxBans = Math.max(1, opts.maxBans ?? 100_000)
  }

  /** Records one failure of `subject`; bans it when this is the threshold-th failure within the window. */
  fail(subject: string, now: number): FailResult {
    const current = this.banUntil(subject, now)
    if (current !== undefined) return { banned: true, until: current, newBan: false }
    const since = now - this.windowMs
    const times = (this.failures.get(subject) ?? []).filter((t) => t > since)
    this.failures.delete(subject)
    times.push(now)
    if (times.length >= this.threshold) {
      const until = now + this.durationMs
      this.ban(subject, until, 'local')
      return { banned: true, until, newBan: true }
    }
    this.failures.set(subject, times)
    while (this.failures.size > this.maxTracked) {
      this.failures.delete(this.failures.keys().next().value as string)
      this.evicted++
    }
    return { banned: false }
  }

  /** Failures of `subject` still inside the window. */
  failureCount(subject: string, now: number): number {
    const since = now - this.windowMs
    return this.failures.get(subject)?.filter((t) => t > since).length ?? 0
  }

  isBanned(subject: string, now: number): boolean {
    return this.banUntil(subject, now) !== undefined
  }

  /** When the ban on `subject` ends, or undefined when it is not banned (expired bans are dropped). */
  banUntil(subject: string, now: number): number | undefined {
    const b = this.bans.get(subject)
    if (!b) return undefined
    if (b.until <= now) {
      this.bans.delete(subject)
      return undefined
    }
    return b.until
  }

  /**
   * Bans `subject` until `until` (epoch ms). A ban is only ever extended, never shortened. Returns whether
   * this changed anything. Clears the subject's failure count.
   */
  ban(subject: string, until: number, source: BanSource): boolean {
    const b = this.bans.get(subject)
    if (b && b.until >= until) return false
    this.bans.delete(subject)
    this.bans.set(subject, { until, source })
    this.failures.delete(subject)
    while (this.bans.size > this.maxBans) {
      this.bans.delete(this.bans.keys().next().value as string)
      this.evicted++
    }
    return true
  }

  unban(subject: string): boolean {
    return this.bans.delete(subject)
  }

  /** Bans in force at `now` (expired ones are dropped on the way). */
  activeBans(now: number): Ban[] {
    const out: Ban[] = []
    for (const [subject, b] of this.bans) {
      if (b.until <= now) this.bans.delete(subject)
      else out.push({ subject, until: b.until, source: b.source })
    }
    return out
  }

  /** Drops expired bans and failure records that left the window. O(tracked); call it from a timer. */
  sweep(now: number): void {
    this.activeBans(now)
    const since = now - this.windowMs
    for (const [subject, times] of this.failures) if (times[times.length - 1]! <= since) this.failures.delete(subject)
  }

  get trackedCount(): number {
    return this.failures.size
  }

  get banCount(): number {
    return this.bans.size
  }
}

// ------------------------------------------------------------------ chain subjects

/**
 * The on-chain subject for an IP ban (chain/events.ts ipBanSubject: HMAC-SHA256(key, "flytrap/ban/ip/v1:" +
 * normalised IP)), so `::ffff:1.2.3.4` and `1.2.3.4` (or two spellings of one IPv6 address) are one subject.
 * Null without a key: IP bans are then not shared on chain. Throws a RangeError for something that is not an IP address.
 */
export function subjectForIp(ip: string, key: string | Uint8Array | undefined | null): string | null {
  if (key === undefined || key === null || key.length === 0) return null
  const n = normalizeIp(ip)
  if (!n) throw new RangeError(`not an IP address: ${JSON.stringify(ip)}`)
  return ipBanSubject(n, key)
}

/** The on-chain subject for an address ban: the address left-padded to 32 bytes (lower case). */
export const subjectForAddress = banSubjectForAddress

// ------------------------------------------------------------------ reporting

export interface BanReporterOptions {
  /** At most maxTxPerInterval transactions per this many ms (BanOptions.reportIntervalMs). */
  intervalMs: number
  /** At most this many subjects per transaction (BanOptions.reportBatchMax). */
  batchMax: number
  /** Transactions per interval when the queue holds more than batchMax subjects. Default 1. */
  maxTxPerInterval?: number
  /** Subjects waiting at most; beyond it the oldest is dropped and counted. Default max(1000, 10 × batchMax). */
  maxQueue?: number
  /** The reason recorded for bans enqueued without one. Default "threshold". */
  reason?: string
  /** Start the interval timer now (default true). Without it, call tick() yourself. */
  autoStart?: boolean
  logger?: Logger
  /** Called with the number of subjects dropped from a full queue (wire it to flytrap_ban_reports_dropped_total). */
  onDropped?: (n: number) => void
  /** Called after every attempted batch: with the tx hash (direct client) or the outbox intent id. */
  onReport?: (r: { ok: boolean; subjects: number; hash?: string; intent?: string; error?: Error }) => void
}

type RecordBans = Pick<FlyTrapClient, 'recordBans'>
/** The outbox side BanReporter needs (src/lib/chain/outbox.ts). */
type BanOutbox = Pick<Outbox, 'enqueue'>
/** Where batches go: the outbox (preferred), or a contract client that sends directly. */
export type BanSink = BanOutbox | RecordBans

function isOutbox(s: BanSink): s is BanOutbox {
  return typeof (s as Partial<BanOutbox>).enqueue === 'function'
}

/** Later than this as "unix seconds" is year 5138: it is a millisecond value passed by mistake. */
const MAX_UNTIL_SEC = 1e11
const MAX_REASON = 256

const BYTES32 = /^0x[0-9a-fA-F]{64}$/

interface Queued {
  until: number
  reason: string
}

/**
 * Batches bans to the contract. enqueue() is synchronous and never throws; writes happen on a timer, one
 * at a time, and a failed batch goes back to the front of the queue for the next interval. Nothing here
 * ever throws to the caller or rejects. The contract takes one reason per transaction: a batch records
 * the distinct reasons of its bans joined with "; ".
 */
export class BanReporter {
  private queue = new Map<string, Queued>()
  /** Subjects in the transaction being sent, and what was last reported (to skip repeats). */
  private readonly sending = new Map<string, number>()
  private readonly reported = new Map<string, number>()
  private readonly intervalMs: number
  private readonly batchMax: number
  private readonly maxTx: number
  private readonly maxQueue: number
  private readonly reason: string
  private readonly logger: Logger
  private timer: NodeJS.Timeout | undefined
  private inflight: Promise<void> | undefined
  /** Subjects dropped because the queue was full. */
  dropped = 0
  /** Batches recorded (sent, or durably handed to the outbox) / failed. */
  transactions = 0
  failures = 0

  private readonly client: BanSink
  private readonly opts: BanReporterOptions

  /**
   * new BanReporter(outbox, options) or new BanReporter({ reporter: outbox, ...options }); a contract client
   * in place of the outbox sends directly.
   */
  constructor(options: BanReporterOptions & { reporter: BanSink })
  constructor(client: BanSink, options: BanReporterOptions)
  constructor(a: BanSink | (BanReporterOptions & { reporter: BanSink }), b?: BanReporterOptions) {
    const opts = b ?? (a as BanReporterOptions & { reporter: BanSink })
    this.client = b ? (a as BanSink) : (a as { reporter: BanSink }).reporter
    this.opts = opts
    if (!(opts.intervalMs > 0)) throw new RangeError('ban report interval must be positive')
    if (!Number.isInteger(opts.batchMax) || opts.batchMax < 1) throw new RangeError('ban report batch size must be a positive integer')
    this.intervalMs = opts.intervalMs
    this.batchMax = opts.batchMax
    this.maxTx = Math.max(1, opts.maxTxPerInterval ?? 1)
    this.maxQueue = Math.max(1, opts.maxQueue ?? Math.max(1000, 10 * opts.batchMax))
    this.reason = opts.reason ?? 'threshold'
    this.logger = opts.logger ?? silentLogger
    if (opts.autoStart !== false) this.start()
  }

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => void this.tick(), this.intervalMs)
    this.timer.unref()
  }

  /** Stops the timer. Queued bans stay queued: call flush() to send them. */
  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Subjects waiting to be sent. */
  get pending(): number {
    return this.queue.size
  }

  /** Drops a queued, unsent report of `subject`: true when it had not been handed over yet. */
  withdraw(subject: string): boolean {
    const s = subject.toLowerCase()
    if (this.sending.has(s)) return false
    return this.queue.delete(s)
  }

  /**
   * Queues a ban: bytes32 subject, end in unix SECONDS (what the contract stores; BanList times are ms,
   * so pass Math.ceil(until / 1000)). Repeats of a queued, in-flight or reported ban are merged; a later
   * expiry is reported again. Invalid input (including a millisecond value) is logged and ignored.
   */
  enqueue(subject: string, untilSec: number, reason?: string): void {
    if (!BYTES32.test(subject) || !Number.isFinite(untilSec) || untilSec <= 0 || untilSec >= MAX_UNTIL_SEC) {
      this.logger.warn('ban report ignored: invalid subject or expiry (unix seconds)', { subject, until: untilSec })
      return
    }
    const s = subject.toLowerCase()
    const until = Math.ceil(untilSec)
    if ((this.reported.get(s) ?? 0) >= until || (this.sending.get(s) ?? 0) >= until) return
    const entry = { until, reason: reason || this.reason }
    const queued = this.queue.get(s)
    if (queued !== undefined) {
      if (until > queued.until) this.queue.set(s, entry)
      return
    }
    this.queue.set(s, entry)
    this.trim()
  }

  private trim(): void {
    let n = 0
    while (this.queue.size > this.maxQueue) {
      this.queue.delete(this.queue.keys().next().value as string)
      n++
    }
    if (n > 0) {
      this.dropped += n
      safely(() => this.opts.onDropped?.(n))
      this.logger.warn('ban report queue full: oldest reports dropped', { dropped: n, total: this.dropped })
    }
  }

  /**
   * One interval's work: up to maxTxPerInterval batches. Does nothing while a previous tick is still
   * sending (a slow chain never leads to overlapping transactions). Never rejects.
   */
  tick(): Promise<void> {
    if (this.inflight) return this.inflight
    if (this.queue.size === 0) return Promise.resolve()
    return this.exclusive(async () => {
      for (let i = 0; i < this.maxTx && this.queue.size > 0; i++) if (!(await this.sendBatch())) break
    })
  }

  /**
   * Sends everything queued now, in ceil(pending / batchMax) transactions (for shutdown). Stops at the
   * first failure; what is left stays queued. Never rejects.
   */
  async flush(): Promise<{ sent: number; failed: number; pending: number }> {
    while (this.inflight) await this.inflight
    let sent = 0
    let failed = 0
    await this.exclusive(async () => {
      while (this.queue.size > 0) {
        if (await this.sendBatch()) sent++
        else {
          failed++
          break
        }
      }
    })
    return { sent, failed, pending: this.queue.size }
  }

  /** Runs `fn` as the only sender (ticks meanwhile wait for it instead of sending). */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const p = fn().finally(() => {
      if (this.inflight === p) this.inflight = undefined
    })
    this.inflight = p
    return p
  }

  private async sendBatch(): Promise<boolean> {
    const batch: [string, Queued][] = []
    for (const entry of this.queue) {
      if (batch.length >= this.batchMax) break
      batch.push(entry)
    }
    for (const [s, q] of batch) {
      this.queue.delete(s)
      this.sending.set(s, q.until)
    }
    try {
      const subjects = batch.map(([s]) => s)
      const untils = batch.map(([, q]) => q.until)
      // Calldata costs gas per byte: the recorded reason is capped.
      const reason = [...new Set(batch.map(([, q]) => q.reason))].join('; ').slice(0, MAX_REASON)
      let res: { hash?: string; intent?: string }
      if (isOutbox(this.client)) {
        const queued = await this.client.enqueue({ kind: 'bans', method: 'recordBans', args: [subjects, untils, reason] })
        if (queued.error) throw new Error(queued.error)
        // Not durable: the outbox still sends it from memory, so handing it over again would double it.
        if (!queued.durable) this.logger.warn('the outbox could not write a ban batch to disk; it is sent from memory', { subjects: batch.length })
        res = { intent: queued.id }
      } else {
        res = await this.client.recordBans(subjects, untils, reason)
      }
      this.transactions++
      for (const [s, q] of batch) {
        this.reported.delete(s)
        this.reported.set(s, q.until)
      }
      while (this.reported.size > this.maxQueue) this.reported.delete(this.reported.keys().next().value as string)
      if (res.intent !== undefined) this.logger.info('bans handed to the outbox for the chain', { subjects: batch.length, intent: res.intent })
      else this.logger.info('bans recorded on chain', { subjects: batch.length, tx: res.hash })
      safely(() => this.opts.onReport?.({ ok: true, subjects: batch.length, hash: res.hash, intent: res.intent }))
      return true
    } catch (err) {
      this.failures++
      const error = chainError(err, 'recordBans')
      // Back to the front, merged with anything queued meanwhile, for the next interval.
      const merged = new Map(batch)
      for (const [s, q] of this.queue) if (q.until > (merged.get(s)?.until ?? 0)) merged.set(s, q)
      this.queue = merged
      this.trim()
      this.logger.warn('recording bans on chain failed; will retry', { subjects: batch.length, error: error.message })
      safely(() => this.opts.onReport?.({ ok: false, subjects: batch.length, error }))
      return false
    } finally {
      for (const [s] of batch) this.sending.delete(s)
    }
  }
}

/** Runs a caller's callback without letting it break the reporter. */
function safely(fn: () => void): void {
  try {
    fn()
  } catch {
    // a metrics or test hook failing must not stop ban reporting
  }
}

// ------------------------------------------------------------------ the proxy's bans, orchestrated

/** What BanGuard ends when a ban comes into force: a session of the proxy. */
export interface Bannable {
  readonly ip: string
  readonly address?: string
  kick(reasonCode: number, why: string): void
}

export interface BanGuardOptions {
  bans: BanOptions
  /** Where bans are shared on chain (ProxyOptions.reporter); without one they stay on this proxy. */
  reporter?: BanSink
  /** The sessions to end when a ban comes into force (the live set: read at every kick). */
  sessions: Iterable<Bannable>
  /** A ban this proxy made, or read from the contract (not one applied from another worker): tell listeners. */
  onBan(e: BanEvent): void
  /** Subjects dropped from the full report queue (flytrap_ban_reports_dropped_total). */
  onReportsDropped?: (n: number) => void
  logger?: Logger
}

const REASON_IP = 'repeated failures from one address'
const REASON_IDENTITY = 'repeated refusals for one identity'

/**
 * The proxy's bans: counts failures, bans a subject that fails too often, checks connections against the
 * bans in force, shares bans on chain (IP bans only as a keyed hash, and only when proxies share the key)
 * and ends sessions that a new ban covers.
 */
export class BanGuard {
  private readonly list: BanList
  private readonly reporter?: BanReporter
  private readonly key?: string
  private readonly sessions: Iterable<Bannable>
  private readonly onBan: (e: BanEvent) => void
  private readonly log: Logger

  constructor(o: BanGuardOptions) {
    this.list = new BanList(o.bans)
    this.log = o.logger ?? silentLogger
    this.reporter = o.reporter
      ? new BanReporter({ reporter: o.reporter, intervalMs: o.bans.reportIntervalMs, batchMax: o.bans.reportBatchMax, logger: this.log, onDropped: o.onReportsDropped })
      : undefined
    this.key = o.bans.subjectKey
    this.sessions = o.sessions
    this.onBan = o.onBan
  }

  /** True when this IP (or authenticated address) is banned now. */
  isBanned(ip: string, address?: string): boolean {
    const now = Date.now()
    return this.ipSubjects(ip).some((s) => this.list.isBanned(s, now)) || (address !== undefined && this.list.isBanned(subjectForAddress(address), now))
  }

  /**
   * Counts a failure (refused auth or packet) towards a ban. Failed authentications count against the IP;
   * refusals on an authenticated session count against the identity only, so one misbehaving device does
   * not get its neighbours behind the same NAT banned.
   */
  recordFailure(ip: string, address?: string): void {
    const subject = address ? subjectForAddress(address) : ip
    const hit = this.list.fail(subject, Date.now())
    if (!hit.newBan || !hit.until) return // count and report each ban once
    const byIp = !address
    this.log.info('banned', { ip: byIp ? ip : undefined, address: byIp ? undefined : address, until: new Date(hit.until).toISOString() })
    this.onBan({ subject, until: hit.until, source: 'local', ip: byIp ? ip : undefined, address: byIp ? undefined : address })
    const shared = byIp ? subjectForIp(ip, this.key) : subject
    if (shared) {
      if (byIp) this.list.ban(shared, hit.until, 'local')
      this.reporter?.enqueue(shared, Math.ceil(hit.until / 1000), byIp ? REASON_IP : REASON_IDENTITY)
    }
    // Not from inside the failing session's own packet handling: it ends once that is done.
    setImmediate(() => this.kickBanned())
  }

  /** A ban read from the contract (`until` in unix seconds): in force here too, from now. */
  fromChain(subject: string, untilSec: number): void {
    const until = untilSec * 1000
    if (until <= Date.now()) return
    this.list.ban(subject, until, 'chain')
    this.onBan({ subject, until, source: 'chain' })
    this.kickBanned()
  }

  /** A ban made elsewhere (another worker process of this proxy): in force here; with `report`, shared on chain. */
  apply(b: { ip?: string; address?: string; until: number }, opts: { report?: boolean } = {}): void {
    if (b.until <= Date.now()) return
    const subjects = b.ip ? this.ipSubjects(b.ip) : b.address ? [subjectForAddress(b.address)] : []
    for (const subject of subjects) this.list.ban(subject, b.until, 'local')
    if (opts.report) {
      const shared = b.ip ? subjectForIp(b.ip, this.key) : b.address ? subjectForAddress(b.address) : null
      if (shared) this.reporter?.enqueue(shared, Math.ceil(b.until / 1000), b.ip ? REASON_IP : REASON_IDENTITY)
    }
    this.kickBanned()
  }

  /** Bans in force now (for the metrics). */
  activeCount(): number {
    return this.list.activeBans(Date.now()).length
  }

  /** Bans in force now, oldest first (for `proxy bans`). */
  active(): Ban[] {
    return this.list.activeBans(Date.now())
  }

  /**
   * Lifts the bans on an IP (its clear subject and keyed hash) or an address on this proxy, and withdraws
   * them from the report queue when not sent yet. The contract has no unban: a ban already on chain stays
   * there (other proxies enforce it; this one re-reads it from the history when it restarts).
   */
  unban(target: { ip?: string; address?: string }): { removed: Ban[]; withdrawn: number; onChain: boolean } {
    const now = Date.now()
    const subjects = target.ip ? this.ipSubjects(target.ip) : target.address ? [subjectForAddress(target.address)] : []
    const inForce = new Map(this.list.activeBans(now).map((b) => [b.subject, b]))
    const removed: Ban[] = []
    let withdrawn = 0
    let onChain = false
    for (const subject of subjects) {
      const b = inForce.get(subject)
      if (!b || !this.list.unban(subject)) continue
      removed.push(b)
      // A chain ban is on chain; a local one is too once reported (a clear IP never goes there).
      if (b.source === 'chain') onChain = true
      else if (subject.startsWith('0x') && this.reporter) {
        if (this.reporter.withdraw(subject)) withdrawn++
        else onChain = true
      }
    }
    return { removed, withdrawn, onChain }
  }

  /** Sends what is queued for the chain and stops the report timer. */
  async close(): Promise<void> {
    await this.reporter?.flush()
    this.reporter?.stop()
  }

  /** Subjects for an IP: the clear IP locally, and its keyed hash when bans are shared on chain. */
  private ipSubjects(ip: string): string[] {
    const shared = subjectForIp(ip, this.key)
    return shared ? [ip, shared] : [ip]
  }

  private kickBanned(): void {
    for (const s of this.sessions) if (this.isBanned(s.ip, s.address)) s.kick(ReasonCode.Banned, 'banned')
  }
}
