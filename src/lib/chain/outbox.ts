/**
 * The outbox: every chain write the proxy makes (anchors, sensitive-topic reports, denied-attempt summaries,
 * bans) goes through here. Callers enqueue an intent and move on; one sender loop turns intents into
 * transactions.
 *
 * Durability. `<dir>/outbox.jsonl` is an append-only log of JSON records, fsynced before the promise of the
 * write that needs it resolves (writes are group-committed: one write + fdatasync for everything queued):
 * - `intent`   a write to make (method + ABI arguments), appended before enqueue() resolves;
 * - `attempt`  a signed transaction for an intent (nonce, fees, hash, raw bytes), appended BEFORE it is
 *              broadcast, so after a crash every transaction that may be on the chain is known by hash;
 * - `void`     an attempt the node refused, so it cannot be mined;
 * - `failure`  an attempt that reverted (before sending, by gas estimation, or mined with status 0);
 * - `done` / `parked` / `retry`   the end of an intent, or its return from the parked list.
 * The file is compacted (rewritten through a temporary file and rename) when it is opened and whenever
 * enough finished records accumulate. A torn last line from a crash is skipped.
 *
 * Exactly once. An intent is re-sent with a new nonce only when none of its transactions can be mined any
 * more: a replacement keeps the nonce (so at most one of them is mined), and a new nonce is used only after a
 * revert or after the old nonce was consumed by a transaction that is not ours. After a restart the sender
 * looks up every recorded hash: mined → done; nonce still open → the signed transaction is broadcast again.
 * The sender assumes it is the only user of the reporter key (a lock file in `dir` stops a second outbox).
 *
 * Cost. Every transaction is paid by the reporter wallet. The outbox itself never multiplies writes: one
 * intent is one transaction (plus same-nonce fee bumps, of which at most one is mined). Rate limits live in
 * the callers (period-reporter.ts, BanReporter), which bound the intents per period whatever the traffic.
 */
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Transaction, isError, type Provider, type Signer, type TransactionReceipt } from 'ethers'
import { chainError, type FlyTrapClient } from './client.js'
import { FlytrapError } from '../errors.js'
import { syncDir, takePidLock } from '../fs/durable.js'
import { silentLogger, type Logger } from '../log.js'

export type IntentKind = 'anchor' | 'sensitive' | 'denied' | 'bans'

/** The contract method each kind of reporter write calls. */
export const METHOD_OF: Readonly<Record<IntentKind, string>> = Object.freeze({ anchor: 'anchor', sensitive: 'recordSensitive', denied: 'recordDenied', bans: 'recordBans' })

export interface IntentInput {
  kind: IntentKind
  /** A function of the FlyTrap ABI (normally METHOD_OF[kind]). */
  method: string
  /** Its arguments, as ethers encodes them (numbers, bigints, hex strings, arrays). */
  args: readonly unknown[]
  /** An intent with the key of one already enqueued (pending, parked or finished) is not enqueued again. */
  dedupeKey?: string
}

export interface EnqueueResult {
  /** The intent's id ('' when it was refused). */
  id: string
  /** An intent with the same dedupeKey existed: nothing new was enqueued. */
  deduped: boolean
  /** The intent is on disk (fsynced). False when the disk write failed: it is still sent from memory. */
  durable: boolean
  /** Why the intent was refused (unknown method, arguments that do not encode, outbox closed). */
  error?: string
}

export interface OutboxStatus {
  address: string | null
  /** Intents waiting for their first (or next) transaction. */
  pending: number
  /** Intents with a transaction broadcast and no receipt yet. */
  inFlight: number
  /** Intents given up after maxAttempts failures (kept on disk; retryParked() requeues them). */
  parked: number
  /** Transactions broadcast by this process, replacements included. */
  sent: number
  /** Same-nonce replacements with a higher fee. */
  replaced: number
  /** Intents mined successfully by this process. */
  confirmed: number
  /** Attempts that reverted (at gas estimation or mined with status 0), by this process. */
  failedAttempts: number
  /** The next nonce the sender will use (null until it has asked the chain). */
  nextNonce: number | null
  lastError: string | null
}

export interface ConfirmedWrite {
  id: string
  kind: IntentKind
  method: string
  hash: string
  blockNumber: number
  gasUsed: bigint
  /** The number of attempts (transactions) signed for this intent, replacements included. */
  attempts: number
}

export interface OutboxOptions {
  /** Directory for outbox.jsonl (created, mode 0700). */
  dir: string
  /** The contract client bound to the reporter's signer (a Wallet, or any Signer with signTransaction). */
  client: FlyTrapClient
  logger?: Logger
  /** How often the sender polls for receipts (ms). Default 1000. */
  pollMs?: number
  /** A transaction unmined this long at the lowest open nonce is replaced with a higher fee (ms). Default 60,000. */
  bumpAfterMs?: number
  /** Fee increase of a replacement, in percent (at least 10, what nodes require). Default 12.5. */
  feeBumpPercent?: number
  /** Never bid more than this maxFeePerGas (wei); undefined = no cap. */
  maxFeePerGas?: bigint
  /** Transactions in flight at once (consecutive nonces). Default 4. */
  maxInFlight?: number
  /** Failures (reverts) before an intent is parked. Default 10. */
  maxAttempts?: number
  /** Backoff after a failure: base × 2^(failures-1), capped (ms). Defaults 2,000 and 300,000. */
  retryBaseMs?: number
  retryMaxMs?: number
  /** Start the sender loop at once (default true). */
  autoStart?: boolean
  /** Requeue intents parked by an earlier run (default true: restarting is how an operator retries them). */
  retryParkedOnStart?: boolean
}

export interface Outbox {
  readonly dir: string
  /** Appends the intent (fsynced) and wakes the sender. Never rejects; callers on the packet path need not await. */
  enqueue(intent: IntentInput): Promise<EnqueueResult>
  status(): OutboxStatus
  /** The reporter address transactions are sent from. */
  reporterAddress(): Promise<string>
  /** Resolves true when nothing is pending or in flight (parked intents do not count), false on timeout. */
  drain(timeoutMs?: number): Promise<boolean>
  /** Requeues parked intents (e.g. after the admin registered the reporter). Returns how many. */
  retryParked(): Promise<number>
  /** Starts the sender loop (when autoStart was false). */
  start(): void
  /** Stops the sender loop after its current step and closes the file. Pending intents stay on disk. */
  close(): Promise<void>
  on(event: 'confirmed', listener: (w: ConfirmedWrite) => void): this
  on(event: 'parked', listener: (w: { id: string; kind: IntentKind; method: string; error: string }) => void): this
  on(event: 'sent', listener: (w: { id: string; kind: IntentKind; hash: string; nonce: number; replacement: boolean }) => void): this
  off(event: 'confirmed', listener: (w: ConfirmedWrite) => void): this
  off(event: 'parked', listener: (w: { id: string; kind: IntentKind; method: string; error: string }) => void): this
  off(event: 'sent', listener: (w: { id: string; kind: IntentKind; hash: string; nonce: number; replacement: boolean }) => void): this
}

// ------------------------------------------------------------------ records

interface Attempt {
  nonce: number
  hash: string
  raw: string
  gasLimit: string
  maxFeePerGas?: string
  maxPriorityFeePerGas?: string
  gasPrice?: string
  at: number
}

type Rec =
  | { t: 'intent'; id: string; kind: IntentKind; method: string; args: unknown; key?: string; at: number }
  | ({ t: 'attempt'; id: string } & Attempt)
  | { t: 'void'; id: string; hash: string }
  | { t: 'failure'; id: string; error: string; hash?: string; at: number }
  | { t: 'done'; id: string; hash: string; block: number }
  | { t: 'parked'; id: string; error: string }
  | { t: 'retry'; id: string }
  | { t: 'key'; key: string }
  | { t: 'meta'; nextSeq: number }

type State = 'queued' | 'inflight' | 'parked'

interface Entry {
  id: string
  seq: number
  kind: IntentKind
  method: string
  args: unknown[]
  key?: string
  at: number
  state: State
  attempts: Attempt[]
  failures: number
  lastError?: string
  /** Not before this time (epoch ms) for the next attempt. */
  notBefore: number
  /** When its nonce was first seen consumed without one of its receipts (a grace period before re-sending). */
  consumedSince?: number
  signedAttempts: number
}

/** Where chain writes are queued: the outbox, or (in a cluster worker) the channel to worker 0's outbox. */
export interface IntentSink {
  enqueue(intent: IntentInput): Promise<EnqueueResult>
}

/** A parked intent back in the queue with a fresh attempt budget. */
function requeue(e: Entry): void {
  e.state = 'queued'
  e.failures = 0
  e.notBefore = 0
}

/** The log and the lock file in the outbox's directory (outbox-scrub.ts edits the log under the same lock). */
export const OUTBOX_FILE = 'outbox.jsonl'
export const OUTBOX_LOCK = 'outbox.lock'
const FILE = OUTBOX_FILE
const LOCK = OUTBOX_LOCK
const COMPACT_AFTER = 2_000
const MAX_DONE_KEYS = 10_000

/** JSON with bigints as {"$n":"…"} so arguments survive the round trip. */
function encode(rec: Rec): string {
  return JSON.stringify(rec, (_k, v: unknown) => (typeof v === 'bigint' ? { $n: v.toString() } : v)) + '\n'
}

function decode(line: string): Rec | null {
  try {
    return JSON.parse(line, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { $n?: unknown }).$n === 'string' && Object.keys(v).length === 1 ? BigInt((v as { $n: string }).$n) : v)) as Rec
  } catch {
    return null
  }
}

/** Group-committed, fsynced appends to one file; compaction swaps the file underneath. */
class AppendLog {
  private fh: FileHandle | null = null
  private buf: string[] = []
  private waiters: { resolve: () => void; reject: (e: unknown) => void }[] = []
  private running: Promise<void> | null = null

  constructor(private readonly path: string) {}

  async open(): Promise<void> {
    this.fh = await open(this.path, 'a', 0o600)
  }

  append(rec: Rec): Promise<void> {
    return new Promise((resolve, reject) => {
      this.buf.push(encode(rec))
      this.waiters.push({ resolve, reject })
      this.running ??= this.run()
    })
  }

  private async run(): Promise<void> {
    try {
      while (this.buf.length > 0) {
        const lines = this.buf
        const waiters = this.waiters
        this.buf = []
        this.waiters = []
        try {
          if (!this.fh) throw new Error('outbox file is closed')
          await this.fh.write(lines.join(''))
          await this.fh.datasync()
          for (const w of waiters) w.resolve()
        } catch (err) {
          for (const w of waiters) w.reject(err)
        }
      }
    } finally {
      this.running = null
    }
  }

  async idle(): Promise<void> {
    while (this.running) await this.running
  }

  /** Replaces the file with `records` (temporary file, fsync, rename, fsync of the directory). */
  async rewrite(records: Rec[], dir: string): Promise<void> {
    await this.idle()
    const tmp = `${this.path}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.write(records.map(encode).join(''))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await this.fh?.close()
    this.fh = null
    await rename(tmp, this.path)
    await syncDir(dir)
    await this.open()
  }

  async close(): Promise<void> {
    await this.idle()
    await this.fh?.close()
    this.fh = null
  }
}



const TRANSIENT = /ECONNREFUSED|ECONNRESET|fetch failed|socket hang up|timeout|TIMEOUT|NETWORK_ERROR|SERVER_ERROR|network/i
const KNOWN = /already known|already imported|known transaction|AlreadyKnown/i
const NONCE_USED = /nonce too low|nonce has already been used|NONCE_EXPIRED|replacement transaction underpriced|REPLACEMENT_UNDERPRICED|underpriced/i

function message(err: unknown): string {
  if (err instanceof Error) return (err as { shortMessage?: string }).shortMessage ?? err.message
  return String(err)
}

/** Fee × (1 + pct/100), rounded up, and at least +1 wei. */
function bump(v: bigint, pct: number): bigint {
  const scaled = (v * BigInt(Math.round((100 + pct) * 1000)) + 99_999n) / 100_000n
  return scaled > v ? scaled : v + 1n
}

// ------------------------------------------------------------------ the outbox

class OutboxImpl extends EventEmitter implements Outbox {
  readonly dir: string
  private readonly client: FlyTrapClient
  private readonly signer: Signer
  private readonly provider: Provider
  private readonly log: Logger
  private readonly pollMs: number
  private readonly bumpAfterMs: number
  private readonly feeBump: number
  private readonly feeCap?: bigint
  private readonly maxInFlight: number
  private readonly maxAttempts: number
  private readonly retryBase: number
  private readonly retryMax: number
  private readonly file: AppendLog
  private readonly unlock: () => void

  private readonly entries = new Map<string, Entry>()
  private readonly doneKeys = new Set<string>()
  private nextSeq = 0
  private finishedSinceCompact = 0

  private address: string | null = null
  private chainId: bigint | null = null
  private nonce: number | null = null
  private resumed = false
  private loop: Promise<void> | null = null
  private closing = false
  private closed = false
  private wake: (() => void) | null = null
  private netFailures = 0
  private drainWaiters: (() => void)[] = []

  private counters = { sent: 0, replaced: 0, confirmed: 0, failedAttempts: 0 }
  private lastError: string | null = null

  constructor(opts: OutboxOptions, file: AppendLog, unlock: () => void) {
    super()
    this.dir = opts.dir
    this.client = opts.client
    const runner = opts.client.contract.runner as Signer | null
    if (!runner || typeof (runner as Signer).getAddress !== 'function' || !runner.provider) {
      throw new FlytrapError('the outbox needs a contract client bound to a signer with a provider (the reporter key)', { exit: 'config' })
    }
    this.signer = runner
    this.provider = runner.provider
    this.log = opts.logger ?? silentLogger
    this.pollMs = Math.max(10, opts.pollMs ?? 1_000)
    this.bumpAfterMs = Math.max(0, opts.bumpAfterMs ?? 60_000)
    const pct = opts.feeBumpPercent ?? 12.5
    if (!(pct >= 10)) throw new RangeError('feeBumpPercent must be at least 10 (nodes refuse smaller replacements)')
    this.feeBump = pct
    this.feeCap = opts.maxFeePerGas
    this.maxInFlight = Math.max(1, Math.floor(opts.maxInFlight ?? 4))
    this.maxAttempts = Math.max(1, Math.floor(opts.maxAttempts ?? 10))
    this.retryBase = Math.max(1, opts.retryBaseMs ?? 2_000)
    this.retryMax = Math.max(this.retryBase, opts.retryMaxMs ?? 300_000)
    this.file = file
    this.unlock = unlock
  }

  // ---------------------------------------------------------------- loading

  /** Rebuilds the state from the log. */
  replay(text: string): number {
    let skipped = 0
    for (const line of text.split('\n')) {
      if (!line.trim()) continue
      const rec = decode(line)
      if (!rec || typeof rec !== 'object' || !('t' in rec)) {
        skipped++
        continue
      }
      this.apply(rec)
    }
    return skipped
  }

  private apply(rec: Rec): void {
    switch (rec.t) {
      case 'meta':
        this.nextSeq = Math.max(this.nextSeq, rec.nextSeq)
        return
      case 'key':
        this.rememberKey(rec.key)
        return
      case 'intent': {
        const seq = Number(rec.id)
        this.nextSeq = Math.max(this.nextSeq, seq + 1)
        this.entries.set(rec.id, {
          id: rec.id,
          seq,
          kind: rec.kind,
          method: rec.method,
          args: Array.isArray(rec.args) ? (rec.args as unknown[]) : [],
          key: rec.key,
          at: rec.at,
          state: 'queued',
          attempts: [],
          failures: 0,
          notBefore: 0,
          signedAttempts: 0,
        })
        return
      }
    }
    const e = this.entries.get(rec.id)
    if (!e) return
    switch (rec.t) {
      case 'attempt': {
        const { t: _t, id: _id, ...attempt } = rec
        e.attempts.push(attempt)
        e.signedAttempts++
        e.state = 'inflight'
        return
      }
      case 'void':
        e.attempts = e.attempts.filter((a) => a.hash !== rec.hash)
        if (e.attempts.length === 0 && e.state === 'inflight') e.state = 'queued'
        return
      case 'failure':
        e.failures++
        e.lastError = rec.error
        if (rec.hash) {
          e.attempts = []
          e.state = 'queued'
        }
        return
      case 'done':
        this.entries.delete(rec.id)
        if (e.key) this.rememberKey(e.key)
        return
      case 'parked':
        e.state = 'parked'
        e.attempts = []
        e.lastError = rec.error
        return
      case 'retry':
        e.state = 'queued'
        e.failures = 0
        e.notBefore = 0
        return
    }
  }

  /** Requeues parked intents with a fresh attempt budget (a restart is the operator's retry). */
  unparkAll(): number {
    let n = 0
    for (const e of this.entries.values()) {
      if (e.state !== 'parked') continue
      requeue(e)
      n++
    }
    return n
  }

  private rememberKey(key: string): void {
    this.doneKeys.delete(key)
    this.doneKeys.add(key)
    while (this.doneKeys.size > MAX_DONE_KEYS) this.doneKeys.delete(this.doneKeys.values().next().value as string)
  }

  private snapshot(): Rec[] {
    const out: Rec[] = [{ t: 'meta', nextSeq: this.nextSeq }]
    for (const key of this.doneKeys) out.push({ t: 'key', key })
    for (const e of [...this.entries.values()].sort((a, b) => a.seq - b.seq)) {
      out.push({ t: 'intent', id: e.id, kind: e.kind, method: e.method, args: e.args, key: e.key, at: e.at })
      for (let i = 0; i < e.failures; i++) out.push({ t: 'failure', id: e.id, error: e.lastError ?? 'failed', at: e.at })
      for (const a of e.attempts) out.push({ t: 'attempt', id: e.id, ...a })
      if (e.state === 'parked') out.push({ t: 'parked', id: e.id, error: e.lastError ?? 'failed' })
    }
    return out
  }

  async compact(): Promise<void> {
    this.finishedSinceCompact = 0
    await this.file.rewrite(this.snapshot(), this.dir)
  }

  // ---------------------------------------------------------------- public API

  enqueue(input: IntentInput): Promise<EnqueueResult> {
    if (this.closing) return Promise.resolve({ id: '', deduped: false, durable: false, error: 'the outbox is closed' })
    const key = input.dedupeKey
    if (key !== undefined) {
      if (this.doneKeys.has(key)) return Promise.resolve({ id: '', deduped: true, durable: true })
      for (const e of this.entries.values()) if (e.key === key) return Promise.resolve({ id: e.id, deduped: true, durable: true })
    }
    try {
      this.client.contract.interface.encodeFunctionData(input.method, [...input.args])
    } catch (err) {
      const error = `cannot encode ${input.method}: ${message(err)}`
      this.log.error('outbox refused an intent', { kind: input.kind, method: input.method, error })
      return Promise.resolve({ id: '', deduped: false, durable: false, error })
    }
    const id = String(this.nextSeq++)
    const entry: Entry = { id, seq: Number(id), kind: input.kind, method: input.method, args: [...input.args], key, at: Date.now(), state: 'queued', attempts: [], failures: 0, notBefore: 0, signedAttempts: 0 }
    this.entries.set(id, entry)
    return this.file.append({ t: 'intent', id, kind: entry.kind, method: entry.method, args: entry.args, key, at: entry.at }).then(
      () => {
        this.poke()
        return { id, deduped: false, durable: true }
      },
      (err: unknown) => {
        this.log.error('outbox: could not persist an intent; it is kept in memory and still sent', { id, kind: entry.kind, error: message(err) })
        this.poke()
        return { id, deduped: false, durable: false }
      },
    )
  }

  status(): OutboxStatus {
    let pending = 0
    let inFlight = 0
    let parked = 0
    for (const e of this.entries.values()) {
      if (e.state === 'queued') pending++
      else if (e.state === 'inflight') inFlight++
      else parked++
    }
    return { address: this.address, pending, inFlight, parked, ...this.counters, nextNonce: this.nonce, lastError: this.lastError }
  }

  async reporterAddress(): Promise<string> {
    this.address ??= await this.signer.getAddress()
    return this.address
  }

  private idle(): boolean {
    for (const e of this.entries.values()) if (e.state !== 'parked') return false
    return true
  }

  drain(timeoutMs = 60_000): Promise<boolean> {
    if (this.idle()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.drainWaiters = this.drainWaiters.filter((w) => w !== done)
        resolve(false)
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        resolve(true)
      }
      this.drainWaiters.push(done)
      this.poke()
    })
  }

  private checkDrained(): void {
    if (this.drainWaiters.length === 0 || !this.idle()) return
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
  }

  async retryParked(): Promise<number> {
    let n = 0
    for (const e of this.entries.values()) {
      if (e.state !== 'parked') continue
      requeue(e)
      n++
      await this.persist({ t: 'retry', id: e.id })
    }
    if (n) this.poke()
    return n
  }

  start(): void {
    if (this.loop || this.closing) return
    this.loop = this.run()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closing = true
    this.poke()
    await this.loop
    await this.file.close()
    this.unlock()
    this.closed = true
  }

  // ---------------------------------------------------------------- the sender loop

  private poke(): void {
    const w = this.wake
    this.wake = null
    w?.()
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      let delay = this.pollMs
      try {
        await this.step()
        this.netFailures = 0
      } catch (err) {
        // The loop never throws: an unreachable chain backs off and tries again.
        this.netFailures++
        this.lastError = message(err)
        delay = Math.min(this.retryMax, this.pollMs * 2 ** Math.min(this.netFailures, 10))
        this.log.warn('outbox: chain not reachable; will retry', { error: this.lastError, retryInMs: delay })
      }
      this.checkDrained()
      if (this.closing) break
      if (this.netFailures === 0 && this.inflight().length < this.maxInFlight) delay = Math.min(delay, this.nextReadyIn())
      await new Promise<void>((res) => {
        const timer = setTimeout(res, delay)
        this.wake = () => {
          clearTimeout(timer)
          res()
        }
      })
      this.wake = null
    }
  }

  private nextReadyIn(): number {
    const now = Date.now()
    let min = Infinity
    for (const e of this.entries.values()) if (e.state === 'queued') min = Math.min(min, Math.max(0, e.notBefore - now))
    return Math.max(1, Math.min(min, this.pollMs))
  }

  private async init(): Promise<void> {
    if (this.address === null) this.address = await this.signer.getAddress()
    if (this.chainId === null) this.chainId = (await this.provider.getNetwork()).chainId
    if (this.nonce === null) {
      const pending = await this.provider.getTransactionCount(this.address, 'pending')
      let highest = -1
      for (const e of this.entries.values()) for (const a of e.attempts) highest = Math.max(highest, a.nonce)
      this.nonce = Math.max(pending, highest + 1)
    }
    if (!this.resumed) {
      this.resumed = true
      // After a restart: signed transactions the node may never have seen are broadcast again. The node
      // answers "already known" or "nonce too low" for those it has; both are fine (receipts decide).
      for (const e of this.entries.values()) {
        const last = e.attempts[e.attempts.length - 1]
        if (e.state === 'inflight' && last) {
          await this.provider.broadcastTransaction(last.raw).catch(() => undefined)
          this.log.info('outbox: resumed an in-flight write', { id: e.id, kind: e.kind, nonce: last.nonce, tx: last.hash })
        }
      }
    }
  }

  /** One round: settle what is in flight, then send what is ready. Throws only for an unreachable chain. */
  private async step(): Promise<void> {
    if (this.entries.size === 0) return
    await this.init()
    await this.settle()
    await this.fill()
    if (this.finishedSinceCompact >= COMPACT_AFTER) await this.compact().catch((err: unknown) => this.log.warn('outbox: compaction failed', { error: message(err) }))
  }

  private inflight(): Entry[] {
    return [...this.entries.values()].filter((e) => e.state === 'inflight' && e.attempts.length > 0).sort((a, b) => a.attempts[0]!.nonce - b.attempts[0]!.nonce)
  }

  private async settle(): Promise<void> {
    const flying = this.inflight()
    if (flying.length === 0) return
    const latest = await this.provider.getTransactionCount(this.address!, 'latest')
    for (const e of flying) {
      const nonce = e.attempts[0]!.nonce
      if (nonce < latest) {
        const receipt = await this.findReceipt(e)
        if (receipt) {
          await this.finishMined(e, receipt)
          continue
        }
        // The nonce was used, and not (yet visibly) by one of ours. After a grace period, send again.
        const now = Date.now()
        e.consumedSince ??= now
        if (now - e.consumedSince >= Math.max(2_000, 2 * this.pollMs)) {
          this.log.warn('outbox: nonce consumed by another transaction; sending again with a new nonce', { id: e.id, nonce })
          for (const a of e.attempts) await this.persist({ t: 'void', id: e.id, hash: a.hash })
          e.attempts = []
          e.state = 'queued'
          e.consumedSince = undefined
        }
        continue
      }
      e.consumedSince = undefined
      const last = e.attempts[e.attempts.length - 1]!
      if (nonce === latest && Date.now() - last.at >= this.bumpAfterMs) await this.replace(e, last)
    }
  }

  private async findReceipt(e: Entry): Promise<TransactionReceipt | null> {
    for (const a of [...e.attempts].reverse()) {
      const r = await this.provider.getTransactionReceipt(a.hash)
      if (r && r.blockNumber !== null) return r
    }
    return null
  }

  private async finishMined(e: Entry, receipt: TransactionReceipt): Promise<void> {
    if (receipt.status === 1) {
      await this.persist({ t: 'done', id: e.id, hash: receipt.hash, block: receipt.blockNumber })
      this.entries.delete(e.id)
      if (e.key) this.rememberKey(e.key)
      this.finishedSinceCompact++
      this.counters.confirmed++
      this.log.info('outbox: write confirmed', { id: e.id, kind: e.kind, tx: receipt.hash, block: receipt.blockNumber, gasUsed: receipt.gasUsed })
      this.emitSafely('confirmed', { id: e.id, kind: e.kind, method: e.method, hash: receipt.hash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed, attempts: e.signedAttempts } satisfies ConfirmedWrite)
      return
    }
    await this.fail(e, `${e.method} reverted on chain (tx ${receipt.hash})`, receipt.hash)
  }

  /** A revert: counted, backed off, parked after maxAttempts. The intent never blocks the others. */
  private async fail(e: Entry, error: string, hash?: string): Promise<void> {
    e.failures++
    e.lastError = error
    e.attempts = []
    e.state = 'queued'
    this.counters.failedAttempts++
    this.lastError = error
    await this.persist({ t: 'failure', id: e.id, error, hash: hash ?? '', at: Date.now() })
    if (e.failures >= this.maxAttempts) {
      e.state = 'parked'
      await this.persist({ t: 'parked', id: e.id, error })
      this.log.error(`outbox: gave up on a ${e.kind} write after ${e.failures} failed attempts; parked (it is tried again by retryParked() or a restart)`, { id: e.id, method: e.method, error })
      this.emitSafely('parked', { id: e.id, kind: e.kind, method: e.method, error })
      return
    }
    const backoff = Math.min(this.retryMax, this.retryBase * 2 ** (e.failures - 1))
    e.notBefore = Date.now() + backoff
    this.log.warn('outbox: write failed; will retry', { id: e.id, kind: e.kind, method: e.method, attempt: e.failures, of: this.maxAttempts, retryInMs: backoff, error })
  }

  private async fill(): Promise<void> {
    const now = Date.now()
    const ready = [...this.entries.values()].filter((e) => e.state === 'queued' && e.notBefore <= now).sort((a, b) => a.seq - b.seq)
    for (const e of ready) {
      if (this.closing) return
      if (this.inflight().length >= this.maxInFlight) return
      await this.sendNew(e)
    }
  }

  private async sendNew(e: Entry): Promise<void> {
    let data: string
    try {
      data = this.client.contract.interface.encodeFunctionData(e.method, e.args)
    } catch (err) {
      e.failures = this.maxAttempts - 1
      await this.fail(e, `cannot encode ${e.method}: ${message(err)}`)
      return
    }
    let gas: bigint
    try {
      gas = await this.provider.estimateGas({ from: this.address!, to: this.client.address, data })
    } catch (err) {
      if (isError(err, 'CALL_EXCEPTION')) {
        await this.fail(e, chainError(err, e.method).message)
        return
      }
      throw err
    }
    const fees = await this.fees()
    const nonce = this.nonce!
    const attempt = await this.sign(e, data, nonce, (gas * 125n) / 100n + 5_000n, fees)
    this.nonce = nonce + 1
    await this.broadcast(e, attempt, false)
  }

  private async fees(): Promise<{ maxFeePerGas?: bigint; maxPriorityFeePerGas?: bigint; gasPrice?: bigint }> {
    const f = await this.provider.getFeeData()
    if (f.maxFeePerGas !== null && f.maxPriorityFeePerGas !== null) {
      let maxFee = f.maxFeePerGas
      if (this.feeCap !== undefined && maxFee > this.feeCap) maxFee = this.feeCap
      const prio = f.maxPriorityFeePerGas > maxFee ? maxFee : f.maxPriorityFeePerGas
      return { maxFeePerGas: maxFee, maxPriorityFeePerGas: prio }
    }
    let gasPrice = f.gasPrice ?? 1_000_000_000n
    if (this.feeCap !== undefined && gasPrice > this.feeCap) gasPrice = this.feeCap
    return { gasPrice }
  }

  /** Signs, then records the attempt durably — before anything reaches the network. */
  private async sign(e: Entry, data: string, nonce: number, gasLimit: bigint, fees: { maxFeePerGas?: bigint; maxPriorityFeePerGas?: bigint; gasPrice?: bigint }): Promise<Attempt> {
    const tx =
      fees.gasPrice !== undefined
        ? { type: 0, chainId: this.chainId!, nonce, to: this.client.address, data, gasLimit, gasPrice: fees.gasPrice, value: 0n }
        : { type: 2, chainId: this.chainId!, nonce, to: this.client.address, data, gasLimit, maxFeePerGas: fees.maxFeePerGas!, maxPriorityFeePerGas: fees.maxPriorityFeePerGas!, value: 0n }
    const raw = await this.signer.signTransaction(tx)
    const hash = Transaction.from(raw).hash!
    const attempt: Attempt = {
      nonce,
      hash,
      raw,
      gasLimit: gasLimit.toString(),
      ...(fees.gasPrice !== undefined ? { gasPrice: fees.gasPrice.toString() } : { maxFeePerGas: fees.maxFeePerGas!.toString(), maxPriorityFeePerGas: fees.maxPriorityFeePerGas!.toString() }),
      at: Date.now(),
    }
    await this.persist({ t: 'attempt', id: e.id, ...attempt })
    e.attempts.push(attempt)
    e.signedAttempts++
    e.state = 'inflight'
    return attempt
  }

  private async broadcast(e: Entry, a: Attempt, replacement: boolean): Promise<void> {
    try {
      await this.provider.broadcastTransaction(a.raw)
    } catch (err) {
      const msg = message(err)
      if (KNOWN.test(msg)) return this.sentOk(e, a, replacement)
      if (NONCE_USED.test(msg) || isError(err, 'NONCE_EXPIRED') || isError(err, 'REPLACEMENT_UNDERPRICED')) {
        // The node refused it: this transaction cannot be mined. Forget it and resync the nonce.
        await this.persist({ t: 'void', id: e.id, hash: a.hash })
        e.attempts = e.attempts.filter((x) => x !== a)
        if (e.attempts.length === 0) {
          e.state = 'queued'
          e.notBefore = Date.now() + this.pollMs
        }
        if (!replacement) {
          const pending = await this.provider.getTransactionCount(this.address!, 'pending')
          this.nonce = Math.max(pending, this.highestNonce() + 1)
        } else {
          a.at = Date.now()
          // keep the higher fees as the base of the next bump
          const prev = e.attempts[e.attempts.length - 1]
          if (prev) Object.assign(prev, { maxFeePerGas: a.maxFeePerGas, maxPriorityFeePerGas: a.maxPriorityFeePerGas, gasPrice: a.gasPrice, at: a.at })
        }
        this.log.warn('outbox: the node refused a transaction', { id: e.id, nonce: a.nonce, replacement, error: msg })
        return
      }
      if (isError(err, 'INSUFFICIENT_FUNDS')) {
        this.lastError = msg
        this.log.error('outbox: the reporter account cannot pay for its writes; fund it', { address: this.address, id: e.id })
        // The attempt stays recorded: it is broadcast again on the next bump.
        return
      }
      if (TRANSIENT.test(msg)) throw err
      // Unknown refusal: the recorded attempt is re-broadcast by the next bump or restart.
      this.lastError = msg
      this.log.warn('outbox: broadcast failed; will retry', { id: e.id, nonce: a.nonce, error: msg })
      return
    }
    this.sentOk(e, a, replacement)
  }

  private sentOk(e: Entry, a: Attempt, replacement: boolean): void {
    this.counters.sent++
    if (replacement) this.counters.replaced++
    this.log.info(replacement ? 'outbox: replaced a stuck transaction with a higher fee' : 'outbox: transaction sent', { id: e.id, kind: e.kind, nonce: a.nonce, tx: a.hash })
    this.emitSafely('sent', { id: e.id, kind: e.kind, hash: a.hash, nonce: a.nonce, replacement })
  }

  private highestNonce(): number {
    let h = -1
    for (const e of this.entries.values()) for (const a of e.attempts) h = Math.max(h, a.nonce)
    return h
  }

  /** A same-nonce replacement with fees raised by feeBumpPercent (and at least the network's current ones). */
  private async replace(e: Entry, last: Attempt): Promise<void> {
    const cur = await this.fees()
    let fees: { maxFeePerGas?: bigint; maxPriorityFeePerGas?: bigint; gasPrice?: bigint }
    if (last.gasPrice !== undefined) {
      let gp = bump(BigInt(last.gasPrice), this.feeBump)
      if (cur.gasPrice !== undefined && cur.gasPrice > gp) gp = cur.gasPrice
      if (this.feeCap !== undefined && gp > this.feeCap) gp = this.feeCap
      if (gp < bump(BigInt(last.gasPrice), 10)) return this.capped(e, last)
      fees = { gasPrice: gp }
    } else {
      const prevMax = BigInt(last.maxFeePerGas!)
      const prevPrio = BigInt(last.maxPriorityFeePerGas!)
      let prio = bump(prevPrio, this.feeBump)
      let max = bump(prevMax, this.feeBump)
      if (cur.maxPriorityFeePerGas !== undefined && cur.maxPriorityFeePerGas > prio) prio = cur.maxPriorityFeePerGas
      if (cur.maxFeePerGas !== undefined && cur.maxFeePerGas > max) max = cur.maxFeePerGas
      if (this.feeCap !== undefined && max > this.feeCap) max = this.feeCap
      if (prio > max) prio = max
      if (max < bump(prevMax, 10) || prio < bump(prevPrio, 10)) return this.capped(e, last)
      fees = { maxFeePerGas: max, maxPriorityFeePerGas: prio }
    }
    const data = this.client.contract.interface.encodeFunctionData(e.method, e.args)
    const attempt = await this.sign(e, data, last.nonce, BigInt(last.gasLimit), fees)
    await this.broadcast(e, attempt, true)
  }

  private capped(e: Entry, last: Attempt): void {
    last.at = Date.now()
    // Re-broadcast the last one in case the node dropped it; no higher bid is allowed.
    void this.provider.broadcastTransaction(last.raw).catch(() => undefined)
    this.log.warn('outbox: a transaction is stuck and the fee cap forbids a higher bid', { id: e.id, nonce: last.nonce, tx: last.hash })
  }

  private async persist(rec: Rec): Promise<void> {
    try {
      await this.file.append(rec)
    } catch (err) {
      this.log.error('outbox: could not write to disk', { error: message(err) })
      throw err
    }
  }

  private emitSafely(event: string, payload: unknown): void {
    try {
      this.emit(event, payload)
    } catch (err) {
      this.log.warn('outbox: a listener threw', { event, error: message(err) })
    }
  }
}

/**
 * Opens (or creates) the outbox in `dir`, resumes what an earlier process left and starts the sender.
 * Throws only when the directory cannot be used (or another process holds it).
 */
export async function openOutbox(opts: OutboxOptions): Promise<Outbox> {
  await mkdir(opts.dir, { recursive: true, mode: 0o700 })
  const unlock = takePidLock(join(opts.dir, LOCK), `the outbox in ${opts.dir}`, 'run one proxy per data directory')
  try {
    const path = join(opts.dir, FILE)
    let text = ''
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const file = new AppendLog(path)
    const box = new OutboxImpl(opts, file, unlock)
    const log = opts.logger ?? silentLogger
    const skipped = box.replay(text)
    if (skipped > 0) log.warn('outbox: skipped unreadable records (a torn write from a crash)', { skipped })
    if (opts.retryParkedOnStart !== false) {
      const n = box.unparkAll()
      if (n > 0) log.info('outbox: parked writes are tried again after the restart', { parked: n })
    }
    await box.compact()
    const st = box.status()
    if (st.pending + st.inFlight + st.parked > 0) log.info('outbox: resuming', { pending: st.pending, inFlight: st.inFlight, parked: st.parked })
    if (opts.autoStart !== false) box.start()
    return box
  } catch (err) {
    unlock()
    throw err
  }
}
