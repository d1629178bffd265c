/**
 * The brokers behind the proxy and the proxy's own identity towards them: the CONNECT that goes upstream (the
 * device's credential stripped, the proxy's username/password added), which broker a new session goes to (the
 * first healthy one in the configured order; connect failures and refusals of the proxy mark one down for a
 * back-off while a background probe watches it), what a client hears when a broker refuses the proxy, and
 * the CONNECT probe that `proxy start` and `flytrap dev` run before they report "running".
 *
 * The session asks for a connected socket (TCP, and TLS with the proxy's client certificate) and reports back
 * what the broker did with it; this module never reads a session's packets.
 */
import { EventEmitter } from 'node:events'
import net, { type Socket } from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import { FrameReader } from '../mqtt/framing.js'
import { connackRefusal, decodePacket, encodePacket, stripCredentials, type ConnackPacket, type ConnectPacket, type ProtocolVersion } from '../mqtt/packets.js'
import { ReasonCode } from '../mqtt/reason-codes.js'
import { silentLogger, type Logger } from '../log.js'
import { FlytrapError } from '../errors.js'
import type { UpstreamOptions } from './options.js'
import type { ProxyMetrics } from './metrics.js'
import type { Session } from './session.js'

/** Upstream client ids are namespaced by the authenticated address, so no key can take over another's session. */
export function upstreamClientId(address: string, clientId: string): string {
  return `${address.toLowerCase()}/${clientId}`
}

/**
 * The CONNECT the broker sees for a device's accepted CONNECT: the device's credential removed, the upstream
 * client id namespaced by its address, the proxy's identity for this broker (the username is the device's
 * address with `usernameFromAddress`, the password is always the proxy's), no topic aliases towards the proxy,
 * and a will the broker publishes at once (with a delay it could publish it after a revocation the proxy can
 * no longer stop).
 */
export function upstreamConnectPacket(connect: ConnectPacket, address: string, version: ProtocolVersion, o: { usernameFromAddress: boolean; upstream?: Pick<UpstreamOptions, 'username' | 'password'> }): ConnectPacket {
  const username = o.usernameFromAddress ? address : o.upstream?.username
  const password = o.upstream?.password === undefined ? undefined : toBuffer(o.upstream.password)
  const out = stripCredentials(connect, { ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) })
  out.clientId = upstreamClientId(address, connect.clientId)
  if (version === 5) out.properties = { ...out.properties, topicAliasMaximum: 0 }
  if (out.will?.properties?.willDelayInterval) out.will = { ...out.will, properties: { ...out.will.properties, willDelayInterval: 0 } }
  return out
}

/** The upstream socket's error listener until (and after) its session takes it: the session's own handles errors. */
function ignoreError(): void {}

/** v5 CONNACK reason codes a broker answers when it refuses the proxy's identity (3.1.1: return codes 4 and 5). */
const IDENTITY_REFUSALS = new Set<number>([ReasonCode.BadUserNameOrPassword, ReasonCode.NotAuthorized, ReasonCode.BadAuthenticationMethod, ReasonCode.Banned])
/** The broker says it cannot serve anyone right now. */
const UNAVAILABLE = new Set<number>([ReasonCode.ServerUnavailable, ReasonCode.ServerBusy])
/** 3.1.1 CONNACK return codes as their v5 reason codes. */
const V4_AS_V5: Record<number, number> = { 1: ReasonCode.UnsupportedProtocolVersion, 2: ReasonCode.ClientIdentifierNotValid, 3: ReasonCode.ServerUnavailable, 4: ReasonCode.BadUserNameOrPassword, 5: ReasonCode.NotAuthorized }

/** A broker's CONNACK code as a v5 reason code (0 = accepted). */
export function connackCode(connack: ConnackPacket, version: ProtocolVersion): number {
  if (version === 5) return connack.reasonCode ?? 0
  const rc = connack.returnCode ?? 0
  return rc === 0 ? 0 : (V4_AS_V5[rc] ?? ReasonCode.UnspecifiedError)
}

export type UpstreamState = 'up' | 'down'

/** One configured broker and what the proxy knows about its health. */
export class Upstream {
  state: UpstreamState = 'up'
  /** Why it was last marked down. */
  lastError?: string
  /** When a down broker is probed again (ms since the epoch). */
  retryAt = 0
  private backoffMs = 0
  readonly url: string
  constructor(
    readonly index: number,
    readonly options: UpstreamOptions,
  ) {
    this.url = options.url
  }

  /** A new TCP (or TLS, with the proxy's client certificate) connection to this broker; not yet connected. */
  connect(): Socket {
    return connectTo(this.options)
  }

  /** Marks it down; returns the back-off until the next probe (doubling from min to max while it stays down). */
  down(why: string, backoff: { minMs: number; maxMs: number }): number {
    this.backoffMs = this.state === 'down' ? Math.min(backoff.maxMs, Math.max(backoff.minMs, this.backoffMs * 2)) : backoff.minMs
    this.state = 'down'
    this.lastError = why
    this.retryAt = Date.now() + this.backoffMs
    return this.backoffMs
  }

  up(): void {
    this.state = 'up'
    this.backoffMs = 0
    this.retryAt = 0
    this.lastError = undefined
  }
}

export interface UpstreamsOptions {
  logger?: Logger
  /** The upstream CONNECT uses the device's address as username (so a refusal may concern one device only). */
  usernameFromAddress: boolean
  /** Back-off of a broker marked down, before the next probe [default: 1 s doubling to 30 s]. */
  backoff?: { minMs: number; maxMs: number }
  /** How long a TCP/TLS connect or a probe's CONNACK may take [default: 5 s]. */
  timeoutMs?: number
  /** Every socket opened, for the server's shutdown to end at its deadline. */
  track?: (socket: Socket) => Socket
  /**
   * Connected sockets kept ready for the next CONNECTs, so the TCP (and TLS) handshake and the socket's set-up
   * are off the CONNECT's path [default: 2; 0: none]. Made only after a CONNECT took one, and each is closed
   * unused after `spareMaxAgeMs` (brokers may drop a connection that sends no CONNECT): an idle proxy holds none.
   */
  spares?: number
  /** How long a spare may wait [default: 5 s]. */
  spareMaxAgeMs?: number
  /** Counters for /metrics. */
  onRefused?: (u: Upstream, code: number) => void
  onFailure?: (u: Upstream, reason: string) => void
}

/**
 * The set of brokers. Emits 'down' (u, why) when a broker is marked down, 'up' (u) when it is back, and
 * 'unreachable' (u) when a probe could not reach it: the server then ends that broker's sessions.
 */
export class Upstreams extends EventEmitter {
  readonly list: Upstream[]
  private readonly log: Logger
  private readonly backoff: { minMs: number; maxMs: number }
  private readonly timeoutMs: number
  private readonly probes = new Map<Upstream, NodeJS.Timeout | 'running'>()
  private closed = false
  private readonly spareTarget: number
  private readonly spareMaxAgeMs: number
  /** Ready connections, oldest first, and how many are being opened. */
  private readonly spares: { socket: Socket; upstream: Upstream; timer: NodeJS.Timeout; drop: () => void }[] = []
  private sparesOpening = 0

  constructor(
    upstreams: UpstreamOptions[],
    private readonly o: UpstreamsOptions,
  ) {
    super()
    if (upstreams.length === 0) throw new Error('at least one upstream broker is needed')
    this.list = upstreams.map((u, i) => new Upstream(i, u))
    this.log = o.logger ?? silentLogger
    this.backoff = o.backoff ?? { minMs: 1_000, maxMs: 30_000 }
    this.timeoutMs = o.timeoutMs ?? 5_000
    this.spareTarget = o.spares ?? 2
    this.spareMaxAgeMs = o.spareMaxAgeMs ?? 5_000
  }

  /** Healthy brokers first, in the configured order; then the down ones, soonest retry first (none is skipped for good). */
  order(): Upstream[] {
    const up = this.list.filter((u) => u.state === 'up')
    const down = this.list.filter((u) => u.state === 'down').sort((a, b) => a.retryAt - b.retryAt)
    return [...up, ...down]
  }

  /**
   * A connected socket to the first broker that accepts one (TCP, and the TLS handshake for mqtts://). A
   * broker that fails is marked down and the next is tried; rejects when none can be reached.
   */
  async open(): Promise<{ socket: Socket; upstream: Upstream }> {
    const spare = this.takeSpare()
    if (spare) {
      // After this turn: making a socket costs ~100 µs of this thread, which the CONNECT should not wait for.
      setImmediate(() => this.refillSpares())
      return spare
    }
    // Spares are made after this one is up, to the broker it found: never racing it over a dead one.
    const fresh = await this.openNew()
    this.refillSpares()
    return fresh
  }

  /** Spare connections ready now (the tests read it). */
  get spareCount(): number {
    return this.spares.length
  }

  /** A ready connection to the broker a new one would go to now (never to a lower-priority one while it is up). */
  private takeSpare(): { socket: Socket; upstream: Upstream } | undefined {
    const first = this.order()[0]
    while (this.spares.length > 0) {
      const s = this.spares.shift()!
      clearTimeout(s.timer)
      // Taken: the pool's listener goes with it, or every session would keep the pool entry (and its timer) alive.
      s.socket.off('close', s.drop)
      if (s.upstream === first && s.upstream.state === 'up' && !s.socket.destroyed) return { socket: s.socket, upstream: s.upstream }
      s.socket.destroy()
    }
    return undefined
  }

  private refillSpares(): void {
    while (!this.closed && this.spares.length + this.sparesOpening < this.spareTarget) {
      this.sparesOpening++
      this.openNew().then(
        ({ socket, upstream }) => {
          this.sparesOpening--
          if (this.closed || upstream.state !== 'up') return socket.destroy()
          const drop = () => {
            const i = this.spares.indexOf(entry)
            if (i >= 0) this.spares.splice(i, 1)
            clearTimeout(entry.timer)
            socket.destroy()
          }
          const entry = { socket, upstream, timer: setTimeout(drop, this.spareMaxAgeMs).unref(), drop }
          // The broker closed it before anyone took it: it is simply gone from the pool (takeSpare removes it).
          socket.once('close', drop)
          this.spares.push(entry)
        },
        () => {
          this.sparesOpening--
        },
      )
    }
  }

  private dropSpares(u?: Upstream): void {
    for (const s of [...this.spares]) {
      if (u && s.upstream !== u) continue
      this.spares.splice(this.spares.indexOf(s), 1)
      clearTimeout(s.timer)
      s.socket.destroy()
    }
  }

  private async openNew(): Promise<{ socket: Socket; upstream: Upstream }> {
    let last: Error | undefined
    for (const u of this.order()) {
      try {
        const socket = await this.connected(u)
        return { socket, upstream: u }
      } catch (err) {
        last = err as Error
        this.o.onFailure?.(u, 'connect')
        this.markDown(u, `connect failed: ${last.message}`)
      }
    }
    throw last ?? new Error('no broker')
  }

  private connected(u: Upstream): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = this.o.track ? this.o.track(u.connect()) : u.connect()
      const ready = socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect'
      const timer = setTimeout(() => fail(new Error(`no connection within ${this.timeoutMs} ms`)), this.timeoutMs)
      const fail = (err: Error) => {
        clearTimeout(timer)
        socket.off(ready, ok)
        socket.destroy()
        reject(err)
      }
      const ok = () => {
        clearTimeout(timer)
        socket.off('error', fail)
        // The session attaches its own handlers next; this one keeps a late error from being unhandled meanwhile
        // (one shared function: a closure here would keep this promise's timer and callbacks for the session's life).
        socket.on('error', ignoreError)
        resolve(socket)
      }
      socket.once(ready, ok)
      socket.once('error', fail)
    })
  }

  /**
   * The broker answered the proxy's CONNECT with a refusal: logged, counted, and turned into what the client
   * hears. A refusal of the proxy's identity (bad username/password, not authorised, bad method, banned) is a
   * server-side failure the device cannot fix: it hears Server unavailable (0x88; 3.1.1: return code 3), never
   * the 0x87 FlyTrap itself uses for a refused credential. Any other refusal passes through unchanged. A broker
   * that refuses everyone (its own unavailable/busy, or the proxy's identity) is marked down.
   */
  refused(u: Upstream, connack: ConnackPacket, bytes: Buffer, version: ProtocolVersion, clientId?: string): Buffer {
    const code = connackCode(connack, version)
    this.o.onRefused?.(u, code)
    const identity = IDENTITY_REFUSALS.has(code)
    this.log.info('broker refused the proxy', { broker: u.url, reasonCode: `0x${code.toString(16)}`, returnCode: version === 4 ? connack.returnCode : undefined, clientId, version })
    // With usernameFromAddress the broker judges the device's address: its refusal says nothing about the others.
    if (UNAVAILABLE.has(code) || (identity && !this.o.usernameFromAddress)) this.markDown(u, `refused with 0x${code.toString(16)}`)
    if (!identity) return bytes
    return encodePacket(connackRefusal(version, ReasonCode.ServerUnavailable), version)
  }

  /** The broker accepted a session: a down broker (tried because none was up) is up again. */
  accepted(u: Upstream): void {
    if (u.state === 'down') this.markUp(u)
  }

  /** A session's broker connection ended without a DISCONNECT: probe the broker now. */
  lost(u: Upstream): void {
    this.o.onFailure?.(u, 'lost')
    this.probeSoon(u, 0)
  }

  markDown(u: Upstream, why: string): void {
    if (this.closed) return
    this.dropSpares(u)
    const wasUp = u.state === 'up'
    const ms = u.down(why, this.backoff)
    if (wasUp) {
      this.log.info('broker down', { broker: u.url, reason: why, retryInMs: ms })
      this.emit('down', u, why)
    }
    this.probeSoon(u, ms)
  }

  private markUp(u: Upstream): void {
    u.up()
    this.log.info('broker up', { broker: u.url })
    this.emit('up', u)
  }

  private probeSoon(u: Upstream, ms: number): void {
    if (this.closed) return
    const pending = this.probes.get(u)
    if (pending === 'running') return
    if (pending) clearTimeout(pending)
    const timer = setTimeout(() => {
      this.probes.set(u, 'running')
      void probeBroker(u.options, { timeoutMs: this.timeoutMs, track: this.o.track }).then((r) => {
        this.probes.delete(u)
        if (this.closed) return
        if (r.ok) return this.accepted(u)
        if (r.kind === 'unreachable') this.emit('unreachable', u)
        this.markDown(u, r.message)
      })
    }, ms)
    timer.unref()
    this.probes.set(u, timer)
  }

  status(): { url: string; state: UpstreamState; lastError?: string; retryAt?: number }[] {
    return this.list.map((u) => ({ url: u.url, state: u.state, ...(u.lastError ? { lastError: u.lastError } : {}), ...(u.state === 'down' ? { retryAt: u.retryAt } : {}) }))
  }

  close(): void {
    this.closed = true
    this.dropSpares()
    for (const t of this.probes.values()) if (t !== 'running') clearTimeout(t)
    this.probes.clear()
  }
}

export type ProbeResult =
  | { ok: true; url: string }
  | { ok: false; url: string; kind: 'unreachable' | 'refused' | 'protocol'; reasonCode?: number; message: string }

/**
 * Connects to the broker as the proxy (its username, password and client certificate), sends an MQTT 5
 * CONNECT (3.1.1 when the broker refuses the protocol version) with a clean session and a throwaway client id,
 * and reports what the broker said; on success it disconnects at once. The start-up check and the back-off
 * probe both use it.
 */
export async function probeBroker(upstream: UpstreamOptions, o: { timeoutMs?: number; track?: (s: Socket) => Socket } = {}): Promise<ProbeResult> {
  const first = await probeOnce(upstream, 5, o)
  if (!first.ok && first.kind === 'refused' && first.reasonCode === ReasonCode.UnsupportedProtocolVersion) return probeOnce(upstream, 4, o)
  // Some 3.1.1-only brokers close the connection on an MQTT 5 CONNECT instead of answering it.
  if (!first.ok && first.kind === 'protocol') {
    const second = await probeOnce(upstream, 4, o)
    return second.ok ? second : first
  }
  return first
}

function probeOnce(upstream: UpstreamOptions, version: ProtocolVersion, o: { timeoutMs?: number; track?: (s: Socket) => Socket }): Promise<ProbeResult> {
  const url = upstream.url
  const timeoutMs = o.timeoutMs ?? 5_000
  return new Promise((resolve) => {
    let socket: Socket
    try {
      socket = connectTo(upstream)
    } catch (err) {
      return resolve({ ok: false, url, kind: 'unreachable', message: (err as Error).message })
    }
    o.track?.(socket)
    let connected = false
    let done = false
    const finish = (r: ProbeResult) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (r.ok) socket.end(encodePacket({ cmd: 'disconnect' }, version))
      else socket.destroy()
      setTimeout(() => socket.destroy(), 500).unref()
      resolve(r)
    }
    const timer = setTimeout(() => finish({ ok: false, url, kind: connected ? 'protocol' : 'unreachable', message: connected ? `no CONNACK within ${timeoutMs} ms` : `no connection within ${timeoutMs} ms` }), timeoutMs)
    const ready = socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect'
    socket.once(ready, () => {
      connected = true
      const clientId = `flytrap-probe-${Math.random().toString(36).slice(2, 10)}`
      const password = upstream.password === undefined ? undefined : toBuffer(upstream.password)
      // 3.1.1 allows no password without a username (§3.1.2.9).
      const packet: ConnectPacket = {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: version,
        clean: true,
        keepalive: 10,
        clientId,
        ...(upstream.username !== undefined ? { username: upstream.username } : {}),
        ...(password !== undefined && (version === 5 || upstream.username !== undefined) ? { password } : {}),
      }
      socket.write(encodePacket(packet, version))
    })
    const reader = new FrameReader({ maxPacketSize: 65_536 })
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of reader.push(chunk)) {
          if (frame.type !== 2) return finish({ ok: false, url, kind: 'protocol', message: `the broker answered CONNECT with packet type ${frame.type}` })
          const connack = decodePacket(frame.bytes, version) as ConnackPacket
          const code = connackCode(connack, version)
          if (code === 0) return finish({ ok: true, url })
          return finish({ ok: false, url, kind: 'refused', reasonCode: code, message: `the broker refused the proxy's CONNECT with ${describeRefusal(code)}` })
        }
      } catch (err) {
        finish({ ok: false, url, kind: 'protocol', message: `unreadable answer to CONNECT: ${(err as Error).message}` })
      }
    })
    socket.on('error', (err) => finish({ ok: false, url, kind: connected ? 'protocol' : 'unreachable', message: connected ? `connection failed after connect: ${err.message}` : err.message }))
    socket.on('close', () => finish({ ok: false, url, kind: connected ? 'protocol' : 'unreachable', message: connected ? 'the broker closed the connection without a CONNACK' : 'connection closed' }))
  })
}

const REFUSAL_NAMES: Record<number, string> = {
  [ReasonCode.UnsupportedProtocolVersion]: 'unsupported protocol version',
  [ReasonCode.ClientIdentifierNotValid]: 'client identifier not valid',
  [ReasonCode.BadUserNameOrPassword]: 'bad user name or password',
  [ReasonCode.NotAuthorized]: 'not authorised',
  [ReasonCode.ServerUnavailable]: 'server unavailable',
  [ReasonCode.ServerBusy]: 'server busy',
  [ReasonCode.Banned]: 'banned',
  [ReasonCode.BadAuthenticationMethod]: 'bad authentication method',
}

export function describeRefusal(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')} (${REFUSAL_NAMES[code] ?? 'refused'})`
}

/** A socket to the broker, not yet connected: plain TCP, or TLS (verified, with the proxy's client certificate). */
export function connectTo(upstream: UpstreamOptions): Socket {
  const url = new URL(upstream.url)
  const secure = ['mqtts:', 'ssl:', 'tls:'].includes(url.protocol)
  if (!secure && url.protocol !== 'mqtt:' && url.protocol !== 'tcp:') throw new Error(`unsupported broker URL ${upstream.url}`)
  const port = Number(url.port || (secure ? 8883 : 1883))
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (!secure) return net.connect({ host, port, noDelay: true })
  return tls.connect({
    host,
    port,
    ca: upstream.ca ? readMaybe(upstream.ca) : undefined,
    cert: upstream.cert ? readMaybe(upstream.cert) : undefined,
    key: upstream.key ? readMaybe(upstream.key) : undefined,
    servername: upstream.servername ?? (net.isIP(host) ? undefined : host),
    rejectUnauthorized: !upstream.insecure,
  })
}

/** Checks a broker list before the proxy starts (a usable URL each; a password for 3.1.1 needs a username). */
export function validateUpstreams(list: UpstreamOptions[], usernameFromAddress: boolean): void {
  if (list.length === 0) throw new Error('at least one upstream broker is needed')
  for (const u of list) {
    connectTarget(u.url)
    if (u.password !== undefined && u.username === undefined && !usernameFromAddress) {
      throw new Error(`broker ${u.url}: a password needs a username (MQTT 3.1.1 sends no password without one): set username, or usernameFromAddress`)
    }
    if ((u.cert === undefined) !== (u.key === undefined)) throw new Error(`broker ${u.url}: a client certificate needs both cert and key`)
  }
}

function connectTarget(value: string): void {
  const url = new URL(value)
  if (!['mqtt:', 'tcp:', 'mqtts:', 'ssl:', 'tls:'].includes(url.protocol)) throw new Error(`unsupported broker URL ${value}`)
}

function readMaybe(v: string | Buffer): Buffer {
  return Buffer.isBuffer(v) ? v : v.includes('-----BEGIN') ? Buffer.from(v) : readFileSync(v)
}

function toBuffer(v: string | Buffer): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8')
}

// ------------------------------------------------------------------ wiring into startProxy

/** The configured brokers as a list (ProxyOptions.upstream is one or several). */
export function brokerList(options: { upstream: UpstreamOptions | UpstreamOptions[] }): UpstreamOptions[] {
  return Array.isArray(options.upstream) ? options.upstream : [options.upstream]
}

/**
 * The brokers of one proxy, with its metrics: a broker a probe cannot reach has its sessions ended (v5:
 * DISCONNECT Server busy, 3.1.1: closed), so their clients reconnect to a healthy one and none is left hanging.
 */
export function startUpstreams(
  options: { upstream: UpstreamOptions | UpstreamOptions[]; usernameFromAddress: boolean; upstreamBackoff?: { minMs: number; maxMs: number } },
  o: { logger: Logger; metrics: ProxyMetrics; track: (s: Socket) => Socket; sessions: () => Iterable<Session> },
): Upstreams & { refreshMetrics(): void } {
  const list = brokerList(options)
  validateUpstreams(list, options.usernameFromAddress)
  const m = o.metrics
  const upstreams = new Upstreams(list, {
    logger: o.logger,
    usernameFromAddress: options.usernameFromAddress,
    backoff: options.upstreamBackoff,
    track: o.track,
    onRefused: (u, code) => m.upstreamRefusals.inc({ broker: u.url, code: `0x${code.toString(16).padStart(2, '0')}` }),
    onFailure: (u, reason) => m.upstreamFailures.inc({ broker: u.url, reason }),
  })
  upstreams.on('unreachable', (u: Upstream) => {
    for (const s of [...o.sessions()]) if (s.broker === u) s.kick(ReasonCode.ServerBusy, 'broker-unreachable')
  })
  return Object.assign(upstreams, {
    refreshMetrics: () => {
      const counts = new Map<Upstream, number>()
      for (const s of o.sessions()) if (s.broker) counts.set(s.broker, (counts.get(s.broker) ?? 0) + 1)
      for (const u of upstreams.list) {
        m.upstreamUp.set({ broker: u.url }, u.state === 'up' ? 1 : 0)
        m.upstreamSessions.set({ broker: u.url }, counts.get(u) ?? 0)
      }
    },
  })
}

/**
 * The start-up check of `proxy start` and `flytrap dev`: every broker is probed with the proxy's own identity.
 * Throws (exit code 4, unreachable) when none accepts; returns the failures of the others, for a warning.
 */
export async function checkBrokers(list: UpstreamOptions[], o: { timeoutMs?: number } = {}): Promise<Extract<ProbeResult, { ok: false }>[]> {
  const results = await Promise.all(list.map((u) => probeBroker(u, o)))
  const failed = results.filter((r): r is Extract<ProbeResult, { ok: false }> => !r.ok)
  if (failed.length < results.length) return failed
  const lines = failed.map((r) => `${r.url}: ${r.message}`)
  const refused = failed.some((r) => r.kind === 'refused')
  throw new FlytrapError(`${list.length > 1 ? 'no broker accepts' : 'the broker does not accept'} the proxy's CONNECT:\n  ${lines.join('\n  ')}`, {
    exit: 'unreachable',
    code: 'FLYTRAP_BROKER_CHECK',
    suggestions: refused
      ? ["check the proxy's identity for the broker: --broker-username with --broker-password-file, or --broker-cert/--broker-key (docs/deploy.md)"]
      : ['start the broker, or fix --broker (mqtt://host:port)', '`proxy start --no-broker-check` starts before the broker is up'],
  })
}
