/**
 * The tests' one raw MQTT client: a bare TCP socket speaking MQTT through the project's own packet library
 * (framing.ts + packets.ts), for packets and sequences MQTT.js cannot produce. `rawMqttClient` gives exact
 * control over every byte sent; `rawMqttConnect` is the same client after a credentialed CONNECT.
 *
 * Not shared with src/lib/bench/raw-client.ts on purpose: the bench client is a load generator (it consumes
 * acknowledgements and auto-acks deliveries on its hot path); a test client must keep and show every packet.
 */
import net from 'node:net'
import { signCredential, toUserProperties, toUsernamePassword } from '../../src/lib/auth/index.js'
import { FrameReader } from '../../src/lib/mqtt/framing.js'
import { decodePacket, encodePacket, type ConnackPacket, type ConnectPacket, type Packet } from '../../src/lib/mqtt/packets.js'
import type { Deployment } from './mqtt.js'
import { waitFor } from './wait.js'

export type { Packet as RawPacket } from '../../src/lib/mqtt/packets.js'

export interface RawReceived {
  packet: Packet
  bytes: Buffer
  /** Set once next() or expect() handed this packet out. */
  taken: boolean
}

/** A bare TCP connection speaking MQTT: exact control over every byte a client sends. */
export interface RawMqttClient {
  socket: net.Socket
  version: 4 | 5
  /** Every packet received so far, in order. */
  received: RawReceived[]
  /** Frames that did not decode as valid MQTT (kept as bytes). */
  malformed: Buffer[]
  send(packet: Packet): void
  /** The next packet not yet taken; rejects on timeout, or (code 'closed') when the connection closes first. */
  next(timeoutMs?: number): Promise<Packet>
  /** The first not yet taken packet that matches (and marks it taken). */
  expect(match: (p: Packet) => boolean, timeoutMs?: number, what?: string): Promise<RawReceived>
  /** Resolves when the peer has closed the connection. */
  closed: Promise<void>
  isClosed(): boolean
  whenClosed(timeoutMs?: number): Promise<void>
  destroy(): void
}

/**
 * Opens a raw MQTT connection to host:port. `prefix` (e.g. a PROXY protocol header) and `first` (e.g. the
 * CONNECT) are written as soon as the socket connects, in one write. `version` selects how packets are
 * encoded and decoded (5 for MQTT 5 properties and reason codes).
 */
export function rawMqttClient(port: number, opts: { host?: string; version?: 4 | 5; prefix?: string | Buffer; first?: Packet } = {}): Promise<RawMqttClient> {
  const version = opts.version ?? 5
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host ?? '127.0.0.1', port, noDelay: true })
    const reader = new FrameReader({ maxPacketSize: 16 * 1024 * 1024 })
    const received: RawReceived[] = []
    const malformed: Buffer[] = []
    let isClosed = false
    let wake: (() => void) | undefined
    let closedResolve!: () => void
    const closed = new Promise<void>((r) => (closedResolve = r))
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of reader.push(chunk)) {
          try {
            received.push({ packet: decodePacket(frame.bytes, version), bytes: frame.bytes, taken: false })
          } catch {
            malformed.push(frame.bytes)
          }
        }
      } catch {
        socket.destroy()
      }
      wake?.()
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      isClosed = true
      closedResolve()
      wake?.()
    })
    const take = (r: RawReceived) => {
      r.taken = true
      return r
    }
    const client: RawMqttClient = {
      socket,
      version,
      received,
      malformed,
      send: (packet) => socket.write(encodePacket(packet, version)),
      next: (timeoutMs = 10_000) =>
        new Promise<Packet>((res, rej) => {
          const timer = setTimeout(() => {
            wake = undefined
            rej(new Error(`no packet within ${timeoutMs} ms (received so far: ${received.map((r) => r.packet.cmd).join(', ') || 'none'})`))
          }, timeoutMs)
          const check = () => {
            const r = received.find((x) => !x.taken)
            if (r) {
              clearTimeout(timer)
              wake = undefined
              res(take(r).packet)
            } else if (isClosed) {
              clearTimeout(timer)
              wake = undefined
              rej(Object.assign(new Error('connection closed before the next packet'), { code: 'closed' }))
            }
          }
          wake = check
          check()
        }),
      expect: async (match, timeoutMs = 5_000, what = 'packet') => {
        let found: RawReceived | undefined
        await waitFor(() => (found = received.find((r) => !r.taken && match(r.packet))) !== undefined, timeoutMs, what)
        return take(found!)
      },
      closed,
      isClosed: () => isClosed,
      whenClosed: (timeoutMs = 5_000) => waitFor(() => isClosed, timeoutMs, 'socket closed'),
      destroy: () => socket.destroy(),
    }
    socket.once('connect', () => {
      socket.off('error', reject)
      const parts = [opts.prefix === undefined ? Buffer.alloc(0) : Buffer.from(opts.prefix), opts.first ? encodePacket(opts.first, version) : Buffer.alloc(0)]
      const bytes = Buffer.concat(parts)
      if (bytes.length > 0) socket.write(bytes)
      resolve(client)
    })
    socket.once('error', reject)
  })
}

/** A raw client whose credentialed CONNECT was answered. */
export interface RawMqtt extends RawMqttClient {
  clientId: string
  connack: ConnackPacket
  end(): void
}

export interface RawConnectOptions {
  host?: string
  port: number
  key: string
  chain: Deployment
  version?: 4 | 5
  clientId?: string
  clean?: boolean
  will?: ConnectPacket['will']
  properties?: ConnectPacket['properties']
  /** Written before CONNECT on the same write (e.g. a PROXY protocol header). */
  prefix?: Buffer
  /** Send no credential at all. */
  noCredential?: boolean
}

/** Connects, sends a credentialed CONNECT and resolves with the CONNACK (success or not). Rejects (code 'closed') if the socket closes first. */
export async function rawMqttConnect(o: RawConnectOptions): Promise<RawMqtt> {
  const version = o.version ?? 5
  const clientId = o.clientId ?? `raw-${Math.random().toString(36).slice(2, 10)}`
  const deployment = { chainId: BigInt(o.chain.chainId), contract: o.chain.address }
  const cred = signCredential({ signer: o.key, ...deployment, clientId, expiresAt: Math.floor(Date.now() / 1000) + 3600 })
  const connect: ConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: o.clean ?? true, keepalive: 0, clientId }
  if (o.will) connect.will = o.will
  if (version === 5) {
    connect.properties = { ...o.properties }
    if (!o.noCredential) connect.properties.userProperties = toUserProperties(cred)
  } else if (!o.noCredential) {
    const up = toUsernamePassword(cred)
    connect.username = up.username
    connect.password = Buffer.from(up.password)
  }
  const closedBeforeConnack = () => Object.assign(new Error('connection closed before CONNACK'), { code: 'closed' })
  const client = await rawMqttClient(o.port, { host: o.host, version, prefix: o.prefix, first: connect }).catch(() => {
    throw closedBeforeConnack()
  })
  try {
    await waitFor(() => client.isClosed() || client.received.some((r) => r.packet.cmd === 'connack'), 5_000, 'CONNACK')
    const r = await client.expect((p) => p.cmd === 'connack', 1, 'CONNACK')
    return { ...client, clientId, connack: r.packet as ConnackPacket, end: () => client.destroy() }
  } catch (err) {
    client.destroy()
    if (client.isClosed()) throw closedBeforeConnack()
    throw err
  }
}

/**
 * Decodes a byte stream of whole MQTT packets (e.g. what a tap recorded); throws on a malformed one. Like a
 * broker, a CONNECT's protocol version decides how the packets after it are read; `version` is for a
 * stream without one.
 */
export function decodeMqttStream(bytes: Buffer, version: 4 | 5): Packet[] {
  const reader = new FrameReader({ maxPacketSize: 16 * 1024 * 1024 })
  const out: Packet[] = []
  let v = version
  for (const frame of reader.push(bytes)) {
    const packet = decodePacket(frame.bytes, v)
    if (packet.cmd === 'connect' && (packet.protocolVersion === 4 || packet.protocolVersion === 5)) v = packet.protocolVersion
    out.push(packet)
  }
  return out
}
