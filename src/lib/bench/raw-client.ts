/**
 * A minimal MQTT client for measurements: one socket, the project's packet library, precomputed packet
 * bytes. It does only what the benchmarks time (CONNECT, SUBSCRIBE, QoS 1 PUBLISH, DISCONNECT), so the
 * load generator adds as little of its own cost as possible.
 */
import net, { type Socket } from 'node:net'
import tls from 'node:tls'
import { FrameReader, type Frame } from '../mqtt/framing.js'
import { decodePacket, encodePacket, type ConnackPacket, type ConnectPacket, type ProtocolVersion } from '../mqtt/packets.js'

export interface Target {
  host: string
  port: number
  tls?: { ca?: string | Buffer; servername?: string; rejectUnauthorized?: boolean }
}

export class RawClient {
  private reader = new FrameReader({ maxPacketSize: 16 * 1024 * 1024 })
  private waiting = new Map<number, () => void>()
  private nextId = 1
  private onFrame?: (f: Frame) => void
  private closed: Promise<void>

  private constructor(
    readonly socket: Socket,
    readonly version: ProtocolVersion,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.reader.push(chunk)) this.dispatch(frame)
    })
    this.closed = new Promise((r) => socket.once('close', () => r()))
    socket.on('error', () => {})
  }

  /** Opens the socket (TCP or TLS) and resolves once it is connected (before MQTT CONNECT). */
  static open(target: Target, version: ProtocolVersion = 5, localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const opts = { host: target.host, port: target.port, localAddress }
      const socket = target.tls
        ? tls.connect({ ...opts, ca: target.tls.ca, servername: target.tls.servername, rejectUnauthorized: target.tls.rejectUnauthorized ?? true })
        : net.connect(opts)
      socket.once(target.tls ? 'secureConnect' : 'connect', () => {
        socket.off('error', reject)
        resolve(new RawClient(socket, version))
      })
      socket.once('error', reject)
    })
  }

  /**
   * Sends CONNECT and resolves with the CONNACK reason/return code (0 = accepted). Keep-alive is off: a
   * connection waits idle while the other targets run (minutes on a loaded machine), and this client sends
   * no PINGREQ, so a keep-alive would let the broker close it in the middle of a benchmark.
   */
  async connect(packet: Omit<ConnectPacket, 'cmd' | 'protocolVersion' | 'protocolId'>): Promise<number> {
    const connack = await this.request(encodePacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.version, clean: true, keepalive: 0, ...packet }, this.version), 2)
    const p = decodePacket(connack.bytes, this.version) as ConnackPacket
    return (this.version === 5 ? p.reasonCode : p.returnCode) ?? 0
  }

  /** SUBSCRIBE one filter at QoS 1; resolves with the granted code. */
  async subscribe(filter: string): Promise<number> {
    const id = this.id()
    const done = new Promise<void>((r) => this.waiting.set(id, r))
    let code = 0x80
    const prev = this.onFrame
    this.onFrame = (f) => {
      if (f.type === 9) code = f.bytes[f.bytes.length - 1]!
    }
    this.socket.write(encodePacket({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic: filter, qos: 1 }] }, this.version))
    await done
    this.onFrame = prev
    return code
  }

  /** Precomputed QoS 1 PUBLISH bytes whose packet id can be patched in place. */
  publishTemplate(topic: string, payload: Buffer): { bytes: Buffer; idOffset: number } {
    const bytes = encodePacket({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false, messageId: 0xabcd }, this.version)
    // Fixed header, then 2-byte topic length + topic, then the packet id.
    let i = 1
    while (bytes[i]! & 0x80) i++
    const idOffset = i + 1 + 2 + Buffer.byteLength(topic)
    return { bytes, idOffset }
  }

  /** One QoS 1 PUBLISH → PUBACK round trip; resolves with its duration in microseconds. */
  async publishRtt(template: { bytes: Buffer; idOffset: number }): Promise<number> {
    const id = this.id()
    template.bytes.writeUInt16BE(id, template.idOffset)
    const acked = new Promise<void>((r) => this.waiting.set(id, r))
    const t0 = process.hrtime.bigint()
    this.socket.write(template.bytes)
    await acked
    return Number(process.hrtime.bigint() - t0) / 1000
  }

  /** Sends `count` QoS 1 publishes with at most `window` unacknowledged; resolves with messages per second. */
  async pipelined(template: { bytes: Buffer; idOffset: number }, count: number, window = 64): Promise<number> {
    let sent = 0
    let acked = 0
    const t0 = process.hrtime.bigint()
    await new Promise<void>((resolve, reject) => {
      // A connection closed under the run would leave it waiting forever.
      void this.closed.then(() => reject(new Error(`connection closed after ${acked} of ${count} pipelined PUBACKs`)))
      const sendOne = () => {
        const id = this.id()
        const bytes = Buffer.from(template.bytes)
        bytes.writeUInt16BE(id, template.idOffset)
        this.waiting.set(id, () => {
          acked++
          if (acked === count) return resolve()
          if (sent < count) sendOne()
        })
        sent++
        this.socket.write(bytes)
      }
      for (let i = 0; i < Math.min(window, count); i++) sendOne()
    })
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    return count / seconds
  }

  /** Resolves when a PUBLISH arrives (for end-to-end delivery timing). */
  nextPublish(): Promise<Frame> {
    return new Promise((resolve) => {
      const prev = this.onFrame
      this.onFrame = (f) => {
        if (f.type === 3) {
          this.onFrame = prev
          resolve(f)
        }
      }
    })
  }

  async disconnect(): Promise<void> {
    if (!this.socket.destroyed) this.socket.end(encodePacket({ cmd: 'disconnect' }, this.version))
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1_000))])
    this.socket.destroy()
  }

  destroy(): void {
    this.socket.destroy()
  }

  private id(): number {
    const id = this.nextId
    this.nextId = id === 0xffff ? 1 : id + 1
    return id
  }

  private pendingType?: { type: number; resolve: (f: Frame) => void }

  private request(bytes: Buffer, replyType: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      this.pendingType = { type: replyType, resolve }
      this.socket.once('close', () => reject(new Error('connection closed')))
      this.socket.write(bytes)
    })
  }

  private endWaiters: ((e: { at: number; disconnect: boolean }) => void)[] = []

  /**
   * The end of the session as the client sees it: the first DISCONNECT from the server (MQTT 5), or the socket
   * closing without one; `at` is performance.now() when it arrived.
   */
  ended(): Promise<{ at: number; disconnect: boolean }> {
    return new Promise((resolve) => {
      this.endWaiters.push(resolve)
      void this.closed.then(() => this.finish(false))
    })
  }

  private finish(disconnect: boolean): void {
    const at = performance.now()
    for (const w of this.endWaiters.splice(0)) w({ at, disconnect })
  }

  private dispatch(frame: Frame): void {
    if (frame.type === 14) this.finish(true)
    if (this.pendingType && frame.type === this.pendingType.type) {
      const p = this.pendingType
      this.pendingType = undefined
      return p.resolve(frame)
    }
    this.onFrame?.(frame)
    if (frame.type === 4 || frame.type === 9) {
      const id = frame.bytes.readUInt16BE(frame.headerLength)
      const done = this.waiting.get(id)
      if (done) {
        this.waiting.delete(id)
        done()
      }
    } else if (frame.type === 3) {
      // QoS 1 deliveries are acknowledged so the broker keeps sending.
      const qos = (frame.flags >> 1) & 3
      if (qos === 1) {
        let i = frame.headerLength
        const topicLen = frame.bytes.readUInt16BE(i)
        i += 2 + topicLen
        const id = frame.bytes.readUInt16BE(i)
        this.socket.write(encodePacket({ cmd: 'puback', messageId: id }, this.version))
      }
    }
  }
}
