/**
 * Unit-test harness for the proxy's per-connection pipeline (src/lib/proxy/session.ts), the way aedes tests
 * its handlers: no broker, no chain. A `Session` gets a fake SessionContext (an in-memory policy, the real
 * credential verification of src/lib/auth, a recorder of everything the session reports) and loopback TCP
 * sockets on 127.0.0.1 stand in for the client and the upstream broker. The test speaks raw MQTT on both ends
 * with mqtt-packet (generate / parse), so every byte the session sends either way can be asserted.
 */
import net, { type AddressInfo, type Server, type Socket } from 'node:net'
import { generate, parser as createParser, type Packet } from 'mqtt-packet'
import type * as mqtt from 'mqtt-packet'
import type { BaseWallet } from 'ethers'
import { signCredential, toUserProperties, toUsernamePassword } from '../../src/lib/auth/index.js'
import { filterCovers, topicMatches } from '../../src/lib/policy/filter.js'
import type { Decision, DecisionEvent, PolicyView } from '../../src/lib/policy/types.js'
import { authenticateFields, type AuthConfig } from '../../src/lib/proxy/authenticate.js'
import { Session, type SessionContext } from '../../src/lib/proxy/session.js'
import { Upstreams } from '../../src/lib/proxy/upstreams.js'

export type Version = 4 | 5

/** The deployment credentials are bound to in these tests (no chain behind it: only the signed text uses it). */
export const AUTH: AuthConfig = { chainId: 31337n, contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3', maxLifetimeSec: 86_400, allowLegacy: false }

export const nowSec = () => Math.floor(Date.now() / 1000)

export interface CredentialFieldsOf {
  properties?: { userProperties: Record<string, string> }
  username?: string
  password?: Buffer
}

/** A v1 credential for `wallet` and `clientId` as CONNECT fields (user properties by default for v5, else username/password). */
export function credentialFields(wallet: BaseWallet, clientId: string, version: Version, opts: { expiresAt?: number; transport?: 'user-properties' | 'username-password' } = {}): CredentialFieldsOf {
  const cred = signCredential({ signer: wallet, chainId: AUTH.chainId, contract: AUTH.contract, clientId, expiresAt: opts.expiresAt ?? nowSec() + 3600 })
  const transport = opts.transport ?? (version === 5 ? 'user-properties' : 'username-password')
  if (transport === 'user-properties') return { properties: { userProperties: toUserProperties(cred) } }
  const up = toUsernamePassword(cred)
  return { username: up.username, password: Buffer.from(up.password) }
}

/** A CONNECT packet (mqtt-packet's shape) carrying a valid credential unless `credential: false`. */
export function connectPacket(wallet: BaseWallet, o: { version: Version; clientId?: string; will?: mqtt.IConnectPacket['will']; properties?: mqtt.IConnectPacket['properties']; credential?: boolean }): mqtt.IConnectPacket {
  const clientId = o.clientId ?? 'dev-1'
  const cred: CredentialFieldsOf = o.credential === false ? {} : credentialFields(wallet, clientId, o.version)
  const p: mqtt.IConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: o.version, clean: true, keepalive: 0, clientId }
  const userProperties = { ...o.properties?.userProperties, ...cred.properties?.userProperties }
  const properties = o.version === 5 ? { ...o.properties, ...(Object.keys(userProperties).length > 0 ? { userProperties } : {}) } : undefined
  if (properties && Object.keys(properties).length > 0) p.properties = properties
  if (cred.username !== undefined) {
    p.username = cred.username
    p.password = cred.password
  }
  if (o.will) p.will = o.will
  return p
}

// ------------------------------------------------------------------ policy

/**
 * An in-memory PolicyView: an address may publish on topics matched by its `pub` filters, subscribe to filters
 * covered by its `sub` filters and receive on topics matched by its `recv` filters (defaults to `sub`). Mutable:
 * tests change rights between packets. Every question asked is recorded.
 */
export class FakePolicy implements PolicyView {
  synced = true
  readonly rights = new Map<string, { pub: string[]; sub: string[]; recv?: string[] }>()
  readonly asked: Array<{ op: 'pub' | 'sub' | 'recv'; address: string; topic: string }> = []

  allow(address: string, r: { pub?: string[]; sub?: string[]; recv?: string[] }): this {
    this.rights.set(address.toLowerCase(), { pub: r.pub ?? [], sub: r.sub ?? [], recv: r.recv })
    return this
  }

  private decide(ok: boolean): Decision {
    return ok ? { allowed: true, reason: 'granted', sensitive: false } : { allowed: false, reason: 'no-grant', sensitive: false }
  }

  canPublish(address: string, topic: string): Decision {
    this.asked.push({ op: 'pub', address, topic })
    return this.decide((this.rights.get(address.toLowerCase())?.pub ?? []).some((f) => topicMatches(f, topic)))
  }

  canSubscribe(address: string, filter: string): Decision {
    this.asked.push({ op: 'sub', address, topic: filter })
    return this.decide((this.rights.get(address.toLowerCase())?.sub ?? []).some((g) => filterCovers(g, filter)))
  }

  canReceive(address: string, topic: string): Decision {
    this.asked.push({ op: 'recv', address, topic })
    const r = this.rights.get(address.toLowerCase())
    return this.decide((r?.recv ?? r?.sub ?? []).some((f) => topicMatches(f, topic)))
  }
}

// ------------------------------------------------------------------ MQTT peers

/** One end of a loopback connection that speaks MQTT through mqtt-packet, recording what it receives. */
export class Peer {
  readonly received: Packet[] = []
  /** Bytes of undecodable input, if any. */
  parseError?: Error
  closed = false
  readonly whenClosed: Promise<void>
  private readonly parser: ReturnType<typeof createParser>
  private waiters: Array<() => void> = []

  constructor(
    readonly socket: Socket,
    readonly version: Version,
  ) {
    this.parser = createParser({ protocolVersion: version })
    this.parser.on('packet', (p: Packet) => {
      this.received.push(p)
      this.wake()
    })
    this.parser.on('error', (err: Error) => {
      this.parseError = err
      this.wake()
    })
    socket.on('data', (chunk: Buffer) => this.parser.parse(chunk))
    socket.resume() // a broker-side socket was paused with its first chunk put back (Acceptor)
    socket.on('error', () => {})
    this.whenClosed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true
        this.wake()
        resolve()
      }),
    )
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  send(packet: Packet): void {
    this.socket.write(generate(packet, { protocolVersion: this.version }))
  }

  sendRaw(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes))
  }

  /** The first not yet taken packet of this type (waits for it; fails on timeout or when the socket closes first). */
  async next<C extends Packet['cmd']>(cmd: C, timeoutMs = 2_000): Promise<Extract<Packet, { cmd: C }>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.received.findIndex((p) => p.cmd === cmd)
      if (i >= 0) return this.received.splice(i, 1)[0] as Extract<Packet, { cmd: C }>
      if (this.closed) throw new Error(`closed before ${cmd} (received: ${this.received.map((p) => p.cmd).join(' ') || 'nothing'})`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no ${cmd} within ${timeoutMs} ms (received: ${this.received.map((p) => p.cmd).join(' ') || 'nothing'})`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  /** Resolves once the socket closed; fails after `timeoutMs`. */
  async closes(timeoutMs = 2_000): Promise<void> {
    let t: NodeJS.Timeout | undefined
    await Promise.race([this.whenClosed, new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs)))])
    clearTimeout(t)
  }

  /** What arrived and was not taken by next(), by type. */
  pending(): string[] {
    return this.received.map((p) => p.cmd)
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** Resolves once `socket` is destroyed and closed; fails after `timeoutMs` (a socket left open is a leaked fd). */
export async function socketClosed(socket: Socket, timeoutMs = 2_000): Promise<void> {
  if (socket.destroyed && socket.closed) return
  let t: NodeJS.Timeout | undefined
  await Promise.race([
    new Promise<void>((r) => socket.once('close', () => r())),
    new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`proxy-side socket still open after ${timeoutMs} ms`)), timeoutMs))),
  ])
  clearTimeout(t)
}

/** Waits until the event loop has turned a few times and the loopback has delivered what was written. */
export function settle(ms = 50): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

// ------------------------------------------------------------------ loopback

/**
 * A listener on 127.0.0.1:0 handing out accepted sockets in order. With `onFirstData`, a socket is handed out
 * only once it has sent something (its first chunk is put back for the reader): the broker's side, where the
 * proxy opens a connection while it verifies the CONNECT, and a refused client's connection closes unused.
 */
class Acceptor {
  readonly server: Server
  private readonly queue: Socket[] = []
  private readonly waiting: Array<(s: Socket) => void> = []
  port = 0
  /** Accepted sockets not closed yet. */
  open = 0

  constructor(onFirstData?: (s: Socket) => void) {
    this.server = net.createServer({ noDelay: true }, (s) => {
      this.open++
      s.once('close', () => this.open--)
      if (!onFirstData) return this.handOut(s)
      s.once('data', (chunk: Buffer) => {
        s.pause()
        s.unshift(chunk)
        onFirstData(s)
        this.handOut(s)
      })
    })
  }

  private handOut(s: Socket): void {
    const w = this.waiting.shift()
    if (w) w(s)
    else this.queue.push(s)
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()))
    this.port = (this.server.address() as AddressInfo).port
  }

  accepted(timeoutMs = 2_000): Promise<Socket> {
    const s = this.queue.shift()
    if (s) return Promise.resolve(s)
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('nothing connected')), timeoutMs)
      this.waiting.push((sock) => {
        clearTimeout(t)
        resolve(sock)
      })
    })
  }
}

/** What the session told its context, in order. */
export interface Recorded {
  decisions: DecisionEvent[]
  failures: Array<{ ip: string; address?: string }>
  protocolErrors: Array<{ where: 'client' | 'broker'; err: Error; session: Session }>
  opened: Session[]
  closed: Session[]
  /** Upstream connections on which the broker received something (the CONNECT): what went upstream. */
  upstreamConnects: number
  /** Upstream connections the broker has accepted and that are still open (used or not). */
  brokerSocketsOpen(): number
}

/** One connection under test: the test's client end, the session, and (once it connects upstream) the broker end. */
export interface Conn {
  client: Peer
  session: Session
  /** The proxy's end of the client connection (to check it is destroyed). */
  proxySide: Socket
  /** The upstream connection as the broker sees it; waits for the session to open it. */
  broker(timeoutMs?: number): Promise<Peer>
}

export interface Harness {
  ctx: SessionContext
  policy: FakePolicy
  rec: Recorded
  /** A new loopback client connection with a Session on the proxy end. */
  connection(version: Version, opts?: { ip?: string }): Promise<Conn>
  /**
   * connection() + CONNECT with a valid credential of `wallet` + the broker's CONNACK (with `connack` properties
   * for v5): an open session.
   */
  open(wallet: BaseWallet, version: Version, opts?: { clientId?: string; connack?: mqtt.IConnackPacket['properties'] }): Promise<Conn & { upstream: Peer }>
  close(): Promise<void>
}

export async function sessionHarness(overrides: Partial<SessionContext> = {}): Promise<Harness> {
  const sockets = new Set<Socket>()
  const track = (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
    return s
  }
  const clients = new Acceptor()
  const brokers = new Acceptor((s) => {
    rec.upstreamConnects++
    track(s)
  })
  await Promise.all([clients.listen(), brokers.listen()])
  const policy = new FakePolicy()
  const rec: Recorded = { decisions: [], failures: [], protocolErrors: [], opened: [], closed: [], upstreamConnects: 0, brokerSocketsOpen: () => brokers.open }
  const ctx: SessionContext = {
    auth: AUTH,
    verify: async (fields) => authenticateFields(fields, AUTH),
    policy,
    failOpen: false,
    usernameFromAddress: false,
    maxPacketSize: 64 * 1024,
    connectTimeoutMs: 5_000,
    drainTimeoutMs: 5_000,
    // The real broker chooser over the one fake broker: every socket it opens is tracked.
    // No spare connections: each upstream socket here is the session's own (the pool is tested in upstreams.test.ts).
    upstreams: new Upstreams([{ url: `mqtt://127.0.0.1:${brokers.port}` }], { usernameFromAddress: false, track, spares: 0 }),
    countryOf: () => null,
    isBanned: () => false,
    recordFailure: (ip, address) => void rec.failures.push({ ip, address }),
    onDecision: (e) => void rec.decisions.push(e),
    onOpen: (s) => void rec.opened.push(s),
    onClose: (s) => void rec.closed.push(s),
    onProtocolError: (session, where, err) => void rec.protocolErrors.push({ session, where, err }),
    ...overrides,
  }

  const connection = async (version: Version, opts: { ip?: string } = {}): Promise<Conn> => {
    const clientSocket = track(net.connect({ host: '127.0.0.1', port: clients.port, noDelay: true }))
    const proxySide = track(await clients.accepted())
    const client = new Peer(clientSocket, version)
    const session = new Session(proxySide, opts.ip ?? '127.0.0.1', ctx)
    let broker: Promise<Peer> | undefined
    return {
      client,
      session,
      proxySide,
      broker: (timeoutMs?: number) => (broker ??= brokers.accepted(timeoutMs).then((s) => new Peer(track(s), version))),
    }
  }

  return {
    ctx,
    policy,
    rec,
    connection,
    open: async (wallet, version, opts = {}) => {
      const conn = await connection(version)
      conn.client.send(connectPacket(wallet, { version, clientId: opts.clientId }))
      const upstream = await conn.broker()
      await upstream.next('connect')
      upstream.send({ cmd: 'connack', sessionPresent: false, ...(version === 5 ? { reasonCode: 0, properties: opts.connack } : { returnCode: 0 }) })
      await conn.client.next('connack')
      return { ...conn, upstream }
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await Promise.all([new Promise((r) => clients.server.close(r)), new Promise((r) => brokers.server.close(r))])
    },
  }
}
