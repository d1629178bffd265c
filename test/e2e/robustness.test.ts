/**
 * Robustness against hostile or broken peers, on raw sockets with real credentials: protocol violations,
 * oversize and malformed packets, bad credentials, CONNECT timeouts, connection limits and slow readers.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { valueOf } from '../../src/lib/proxy/metrics.js'
import net, { type Socket } from 'node:net'
import { signCredential, toUserProperties, toUsernamePassword } from '../../src/lib/auth/index.js'
import { encodeRemainingLength, FrameReader } from '../../src/lib/mqtt/framing.js'
import { decodePacket, encodePacket, type ConnectPacket, type Packet, type ProtocolVersion } from '../../src/lib/mqtt/packets.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { waitFor } from '../helpers/wait.js'
import { BOTH, registerTopics } from '../helpers/topics.js'

const TOPIC = 'sensors/temp'
const FLOOD = 'flood/data'

/** A raw MQTT peer: what it received (decoded), and whether/when the other side closed. */
class Raw {
  readonly packets: Packet[] = []
  closed = false
  bytesIn = 0
  private readonly reader = new FrameReader({ maxPacketSize: 268_435_460 })

  private constructor(
    readonly socket: Socket,
    public version: ProtocolVersion,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length
      for (const f of this.reader.push(chunk)) this.packets.push(decodePacket(f.bytes, this.version))
    })
    socket.on('error', () => {})
    socket.on('close', () => (this.closed = true))
  }

  static open(port: number, opts: { host?: string; localAddress?: string; version?: ProtocolVersion } = {}): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress })
      socket.once('connect', () => resolve(new Raw(socket, opts.version ?? 5)))
      socket.once('error', reject)
    })
  }

  send(bytes: Buffer | Packet): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : encodePacket(bytes, this.version))
  }

  async waitClosed(timeoutMs = 5_000, what = 'the proxy to close the connection'): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, what)
  }

  async next<C extends Packet['cmd']>(cmd: C, timeoutMs = 5_000): Promise<Extract<Packet, { cmd: C }>> {
    await waitFor(() => this.packets.some((p) => p.cmd === cmd), timeoutMs, `a ${cmd} packet`)
    const i = this.packets.findIndex((p) => p.cmd === cmd)
    return this.packets.splice(i, 1)[0] as Extract<Packet, { cmd: C }>
  }

  destroy(): void {
    this.socket.destroy()
  }
}

describe('robustness against hostile and broken peers', () => {
  let e: E2E
  const raws = new Set<Raw>()
  const open = async (port: number, opts: Parameters<typeof Raw.open>[1] = {}) => {
    const r = await Raw.open(port, opts)
    raws.add(r)
    return r
  }
  /** A CONNECT carrying a valid credential for dev key `key`. */
  const connectFor = (key: number, version: ProtocolVersion = 5, clientId = `raw-${Math.random().toString(36).slice(2, 10)}`): ConnectPacket => {
    const cred = signCredential({ signer: e.key(key), chainId: BigInt(e.chain.chainId), contract: e.chain.address, clientId, expiresAt: Math.floor(Date.now() / 1000) + 600 })
    const base: ConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 60, clientId }
    if (version === 5) return { ...base, properties: { userProperties: toUserProperties(cred) } }
    const { username, password } = toUsernamePassword(cred)
    return { ...base, username, password: Buffer.from(password) }
  }
  /** An open, authenticated v5 session on a raw socket. */
  const session = async (port: number, key = 1): Promise<Raw> => {
    const r = await open(port)
    r.send(connectFor(key))
    const connack = await r.next('connack')
    assert.equal(connack.reasonCode, 0, 'valid credentials are accepted')
    return r
  }
  const closeReasons = (p: ProxyHandle): string[] => {
    const out: string[] = []
    p.on('session-close', (ev) => out.push(ev.reason ?? ''))
    return out
  }
  /** The proxy still serves: a fresh, valid client completes CONNECT and a PINGREQ; waits until it is gone again. */
  const stillServing = async (port: number, p: ProxyHandle = e.proxy) => {
    const r = await session(port)
    r.send({ cmd: 'pingreq' })
    await r.next('pingresp')
    const n = p.sessionCount()
    r.destroy()
    await waitFor(() => p.sessionCount() < n, 5_000, 'the probe session to close')
  }

  before(async () => {
    e = await e2eFixture({
      // Failures from 127.0.0.1 are the point here: they must not get the test's own address banned.
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 } },
      setup: async (chain) => {
        const owner = chain.as(0)
        await registerTopics(owner, [TOPIC, FLOOD], { [chain.wallet(1).address]: BOTH })
      },
    })
  })
  after(async () => {
    for (const r of raws) r.destroy()
    await e?.close()
  })

  const port = () => e.proxy.address.port

  test('the first packet is not CONNECT → closed without an answer', async () => {
    const reasons = closeReasons(e.proxy)
    for (const first of [encodePacket({ cmd: 'pingreq' }, 5), encodePacket({ cmd: 'publish', topic: TOPIC, payload: Buffer.from('x'), qos: 0, dup: false, retain: false }, 5)]) {
      const r = await open(port())
      r.send(first)
      await r.waitClosed()
      assert.deepEqual(r.packets, [], 'nothing is answered before CONNECT')
    }
    assert.deepEqual(reasons, ['client-protocol-error', 'client-protocol-error'])
    await stillServing(port())
  })

  test('garbage bytes → closed (an HTTP request, random bytes, a CONNECT with a garbage body)', async () => {
    const reasons = closeReasons(e.proxy)
    const garbage = [
      // 'G' reads as a PUBACK header declaring 69 bytes; a real request is longer than that.
      Buffer.from('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:1883\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n'),
      Buffer.from([0x00, 0x00, 0xde, 0xad, 0xbe, 0xef]),
      Buffer.concat([Buffer.from([0x10, 12]), Buffer.from('\x00\x04XQTT\x05\xff\x00\x3c\x00\x00')]),
    ]
    for (const bytes of garbage) {
      const r = await open(port())
      r.send(bytes)
      await r.waitClosed()
      assert.ok(r.packets.every((p) => p.cmd === 'connack' && (p.reasonCode ?? p.returnCode ?? 0) !== 0), 'at most a refusal')
    }
    assert.equal(reasons.length, 3)
    assert.ok(reasons.every((x) => x === 'client-protocol-error'), reasons.join())
    await stillServing(port())
  })

  test('a remaining-length field with a 5th byte → closed at once', async () => {
    const reasons = closeReasons(e.proxy)
    const r = await open(port())
    // Every byte carries 0 with the continuation bit: only the 5th byte would say anything.
    r.send(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x01]))
    await r.waitClosed()
    assert.deepEqual(reasons, ['client-protocol-error'])
  })

  test('declared packet size over maxPacketSize → closed after only the header (no waiting for the body)', async () => {
    const p = await e.startProxy({ limits: { ...DEFAULTS.limits, maxPacketSize: 1024, connectTimeoutMs: 60_000 } })
    const reasons = closeReasons(p)
    for (const declared of [1025, 268_435_455]) {
      const r = await open(p.address.port)
      const before = process.memoryUsage().arrayBuffers
      r.send(Buffer.concat([Buffer.from([0x10]), encodeRemainingLength(declared)]))
      // The connect timeout is a minute: only the size check can close it this soon.
      await r.waitClosed(5_000)
      assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'no allocation for the declared body')
    }
    assert.deepEqual(reasons, ['client-protocol-error', 'client-protocol-error'])
    // A CONNECT under the limit is still read.
    const ok = await open(p.address.port)
    ok.send(connectFor(1))
    assert.equal((await ok.next('connack')).reasonCode, 0)
    ok.destroy()
  })

  test('open v5 session: an oversize PUBLISH header → DISCONNECT 0x95 (Packet too large), then closed', async () => {
    const p = await e.startProxy({ limits: { ...DEFAULTS.limits, maxPacketSize: 1024 } })
    const r = await session(p.address.port)
    // Only the fixed header of a 4 KB PUBLISH: the proxy must decide on it without the body.
    r.send(Buffer.concat([Buffer.from([0x30]), encodeRemainingLength(4096)]))
    const d = await r.next('disconnect')
    assert.equal(d.reasonCode, 0x95)
    await r.waitClosed()
    // A PUBLISH under the limit on a new session still flows.
    const s = await session(p.address.port)
    s.send({ cmd: 'publish', topic: TOPIC, payload: Buffer.alloc(900), qos: 1, messageId: 1, dup: false, retain: false })
    assert.ok(((await s.next('puback')).reasonCode ?? 0) < 0x80, 'accepted (0x10 "no matching subscribers" is a success)')
    s.destroy()
  })

  test('open v5 session: malformed PUBLISH → DISCONNECT with a failure code (0x81 malformed, 0x82 protocol error)', async () => {
    const topic = Buffer.from(TOPIC)
    const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
    const publishBytes = (flags: number, body: Buffer) => Buffer.concat([Buffer.from([0x30 | flags]), encodeRemainingLength(body.length), body])
    const cases: [string, Buffer, number][] = [
      // QoS bits 11 (§3.3.1.2): malformed.
      ['QoS 3', publishBytes(0x06, Buffer.concat([u16(topic.length), topic, u16(1), Buffer.from([0]), Buffer.from('x')])), 0x81],
      // Topic length runs past the end of the packet.
      ['topic length past the end', publishBytes(0x00, Buffer.concat([u16(200), topic])), 0x81],
      // Property length claims more bytes than the packet has.
      ['property length past the end', publishBytes(0x00, Buffer.concat([u16(topic.length), topic, Buffer.from([0x7f])])), 0x81],
      // QoS 1 with packet identifier 0 (§2.2.1).
      ['packet identifier 0', publishBytes(0x02, Buffer.concat([u16(topic.length), topic, u16(0), Buffer.from([0]), Buffer.from('x')])), 0x82],
      // Invalid UTF-8 in the topic name (§1.5.4).
      ['invalid UTF-8 topic', publishBytes(0x00, Buffer.concat([u16(3), Buffer.from([0x61, 0xff, 0x62]), Buffer.from([0]), Buffer.from('x')])), 0x81],
    ]
    for (const [what, bytes, expected] of cases) {
      const r = await session(port())
      r.send(bytes)
      const d = await r.next('disconnect')
      assert.ok((d.reasonCode ?? 0) >= 0x80, `${what}: DISCONNECT ${d.reasonCode} is a failure code`)
      assert.equal(d.reasonCode, expected, `${what}: DISCONNECT 0x${d.reasonCode?.toString(16)}`)
      await r.waitClosed(5_000, `${what}: closed`)
    }
    await stillServing(port())
  })

  /**
   * Sends each CONNECT on its own socket (all at once) and waits up to 3 s for every socket to be closed;
   * returns what went wrong (a refusal must be a CONNACK with a failure code, then the close).
   */
  const refusals = async (version: ProtocolVersion, cases: [string, ConnectPacket][]): Promise<{ failures: string[]; refusedDecisions: number }> => {
    let refusedDecisions = 0
    const onDecision = (d: { kind: string; allowed: boolean }) => void (d.kind === 'connect' && !d.allowed && refusedDecisions++)
    e.proxy.on('decision', onDecision)
    const failures: string[] = []
    try {
      const sockets = await Promise.all(
        cases.map(async ([what, connect]) => {
          const r = await open(port(), { version })
          r.send(connect)
          return [what, r] as const
        }),
      )
      await waitFor(() => sockets.every(([, r]) => r.closed), 3_000, 'every refused socket to be closed').catch(() => {})
      for (const [what, r] of sockets) {
        const connack = r.packets.find((x) => x.cmd === 'connack') as Extract<Packet, { cmd: 'connack' }> | undefined
        if (!connack) failures.push(`${what}: no CONNACK${r.closed ? ' (closed)' : ', and still open after 3 s'}`)
        else if (version === 5 && !(connack.reasonCode! >= 0x80)) failures.push(`${what}: CONNACK reason ${connack.reasonCode}`)
        else if (version === 4 && ![4, 5].includes(connack.returnCode!)) failures.push(`${what}: CONNACK return code ${connack.returnCode}`)
        else if (!r.closed) failures.push(`${what}: not closed after the refusal`)
      }
    } finally {
      e.proxy.off('decision', onDecision as never)
    }
    return { failures, refusedDecisions }
  }
  const bare = (version: ProtocolVersion): ConnectPacket => ({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 30, clientId: 'bad-cred' })

  test('v5: empty or garbage credentials → a clean CONNACK refusal (≥ 0x80), and the proxy keeps serving', async () => {
    const garbageProps = { 'flytrap-address': 'not-an-address', 'flytrap-expires': 'soon', 'flytrap-sig': '0x00', 'flytrap-v': '1' }
    const otherChain = toUserProperties(signCredential({ signer: e.key(1), chainId: 1n, contract: e.chain.address, clientId: 'bad-cred', expiresAt: Math.floor(Date.now() / 1000) + 600 }))
    const cases: [string, ConnectPacket][] = [
      ['no credential at all', bare(5)],
      ['empty user properties', { ...bare(5), properties: { userProperties: { 'flytrap-address': '', 'flytrap-expires': '', 'flytrap-sig': '' } } }],
      ['garbage user properties', { ...bare(5), properties: { userProperties: garbageProps } }],
      ['signature for another chain', { ...bare(5), properties: { userProperties: otherChain } }],
      ['empty username and password', { ...bare(5), username: '', password: Buffer.alloc(0) }],
      ['garbage username and binary password', { ...bare(5), username: 'x'.repeat(300), password: Buffer.from([0xff, 0x00, 0x01]) }],
    ]
    const { failures, refusedDecisions } = await refusals(5, cases)
    assert.deepEqual(failures, [])
    assert.equal(refusedDecisions, cases.length, 'each refusal is a recorded decision')
    await stillServing(port())
  })

  test(
    'v4: empty or garbage credentials → a clean CONNACK refusal (return code 4 or 5), and the proxy keeps serving',
    async () => {
      // The bug surfaces as an unhandled rejection; capture it here (and keep it from failing the whole file).
      const saved = process.listeners('unhandledRejection')
      const unhandled: unknown[] = []
      process.removeAllListeners('unhandledRejection')
      process.on('unhandledRejection', (err) => unhandled.push(err))
      try {
        const cases: [string, ConnectPacket][] = [
          ['no credential at all', bare(4)],
          ['empty username and password', { ...bare(4), username: '', password: Buffer.alloc(0) }],
          ['garbage username and binary password', { ...bare(4), username: 'x'.repeat(300), password: Buffer.from([0xff, 0x00, 0x01]) }],
          ['v1 password with a bad signature', { ...bare(4), username: e.address(1), password: Buffer.from(`v1:${Math.floor(Date.now() / 1000) + 60}:0x${'ab'.repeat(65)}`) }],
        ]
        const { failures, refusedDecisions } = await refusals(4, cases)
        await stillServing(port())
        assert.deepEqual(unhandled.map((x) => String(x)), [], 'no unhandled rejection (it would end the proxy process)')
        assert.equal(refusedDecisions, cases.length)
        assert.deepEqual(failures, [])
      } finally {
        process.removeAllListeners('unhandledRejection')
        for (const l of saved) process.on('unhandledRejection', l)
      }
    },
  )

  test('CONNECT timeout: a silent socket, and one that stops half way through CONNECT, are closed', async () => {
    const p = await e.startProxy({ limits: { ...DEFAULTS.limits, connectTimeoutMs: 500 } })
    const reasons = closeReasons(p)
    const silent = await open(p.address.port)
    const partial = await open(p.address.port)
    partial.send(encodePacket(connectFor(1), 5).subarray(0, 20))
    const started = Date.now()
    await silent.waitClosed(5_000, 'silent socket closed')
    await partial.waitClosed(5_000, 'half-CONNECT socket closed')
    assert.ok(Date.now() - started >= 400, 'not closed before the timeout')
    assert.deepEqual(reasons, ['connect-timeout', 'connect-timeout'])
    assert.equal(p.sessionCount(), 0)
  })

  test('connection limits: maxConnectionsPerIp 2 closes the third connection from one IP', async () => {
    const p = await e.startProxy({ limits: { ...DEFAULTS.limits, maxConnectionsPerIp: 2 } })
    const a = await session(p.address.port)
    const b = await open(p.address.port)
    const c = await open(p.address.port)
    await c.waitClosed(5_000, 'third connection closed')
    assert.equal(a.closed || b.closed, false, 'the first two stay open')
    assert.equal(await valueOf(p.metrics.connections, { outcome: 'limit' }), 1)
    // Another IP is not affected by 127.0.0.1's count.
    const other = await open(p.address.port, { localAddress: '127.0.0.2' })
    other.send(connectFor(1))
    assert.equal((await other.next('connack')).reasonCode, 0)
    // Closing one frees its slot.
    b.destroy()
    await waitFor(() => p.sessionCount() === 2, 5_000, 'slot freed')
    const d = await session(p.address.port)
    d.send({ cmd: 'pingreq' })
    await d.next('pingresp')
  })

  test('connection limits: maxConnections 2 closes the third connection whatever its IP', async () => {
    const p = await e.startProxy({ limits: { ...DEFAULTS.limits, maxConnections: 2, maxConnectionsPerIp: 2 } })
    const a = await open(p.address.port, { localAddress: '127.0.0.1' })
    const b = await open(p.address.port, { localAddress: '127.0.0.2' })
    const c = await open(p.address.port, { localAddress: '127.0.0.3' })
    await c.waitClosed(5_000, 'third connection closed')
    assert.equal(a.closed || b.closed, false)
    a.destroy()
    await waitFor(() => p.sessionCount() === 1, 5_000, 'slot freed')
    await session(p.address.port)
  })

  /**
   * A counting TCP relay between the proxy and mosquitto: per upstream connection, the bytes mosquitto→proxy
   * that the proxy actually accepted (written minus still queued in the relay). pipe() honours back-pressure,
   * so if the proxy stops reading, the relay stops reading from mosquitto too.
   */
  async function countingRelay(): Promise<{ url: string; down: () => number[]; close: () => Promise<void> }> {
    const conns: { toProxy: Socket; toBroker: Socket }[] = []
    const server = net.createServer((toProxy) => {
      const toBroker = net.connect({ host: e.mosquitto.host, port: e.mosquitto.port })
      toProxy.on('error', () => toBroker.destroy())
      toBroker.on('error', () => toProxy.destroy())
      toProxy.pipe(toBroker)
      toBroker.pipe(toProxy)
      conns.push({ toProxy, toBroker })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    return {
      url: `mqtt://127.0.0.1:${port}`,
      down: () => conns.map((c) => c.toProxy.bytesWritten - c.toProxy.writableLength),
      close: async () => {
        for (const c of conns) {
          c.toProxy.destroy()
          c.toBroker.destroy()
        }
        await new Promise((r) => server.close(r))
      },
    }
  }

  /** Floods `total` bytes of QoS 0 PUBLISHes on FLOOD from `pub`, honouring the socket's back-pressure. */
  async function flood(pub: Raw, total: number, size = 64 * 1024): Promise<void> {
    const packet = encodePacket({ cmd: 'publish', topic: FLOOD, payload: Buffer.alloc(size, 0x61), qos: 0, dup: false, retain: false }, 5)
    for (let sent = 0; sent < total; sent += packet.length) {
      if (pub.closed) throw new Error('publisher was closed during the flood')
      if (!pub.socket.write(packet)) await new Promise((r) => pub.socket.once('drain', r))
    }
  }

  test('slow reader: the proxy stops reading the broker for a subscriber that does not read (bounded memory)', async () => {
    const relay = await countingRelay()
    try {
      const p = await e.startProxy({ upstream: { url: relay.url }, limits: { ...DEFAULTS.limits, drainTimeoutMs: 60_000 } })
      const reasons = closeReasons(p)
      const sub = await session(p.address.port)
      sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: FLOOD, qos: 0 }] })
      assert.deepEqual((await sub.next('suback')).granted, [0])
      sub.socket.pause() // stops reading: the kernel buffers fill, then the proxy's writes back up

      const pub = await session(p.address.port)
      const total = 256 * 1024 * 1024
      await flood(pub, total)
      // Let the pipeline settle: the relay's count for the subscriber's upstream stops growing.
      let last = -1
      await waitFor(
        () => {
          const now = Math.max(...relay.down())
          const stable = now === last
          last = now
          return stable
        },
        20_000,
        'delivery to the proxy to stop',
      )
      await waitFor(async () => {
        const a = Math.max(...relay.down())
        await new Promise((r) => setTimeout(r, 300))
        return Math.max(...relay.down()) === a
      }, 20_000, 'a stable count')
      const accepted = Math.max(...relay.down())
      // Only socket buffers (kernel, a few MB per hop) may hold data; the proxy itself must not queue the flood.
      assert.ok(accepted < total / 4, `the proxy accepted ${(accepted / 2 ** 20).toFixed(1)} MiB from the broker for a subscriber that reads nothing (flood: ${total / 2 ** 20} MiB)`)
      assert.equal(sub.closed, false, 'paused, not dropped, within the drain timeout')
      assert.deepEqual(reasons, [])

      // Reading again resumes the flow: fresh messages reach the subscriber.
      const seenBefore = sub.bytesIn
      sub.socket.resume()
      await waitFor(() => sub.bytesIn > seenBefore + 1024 * 1024, 20_000, 'the backlog to drain after resume')
      const marker = encodePacket({ cmd: 'publish', topic: FLOOD, payload: Buffer.from('marker'), qos: 0, dup: false, retain: false }, 5)
      await waitFor(
        () => {
          pub.send(marker)
          return sub.packets.some((x) => x.cmd === 'publish' && x.payload.toString() === 'marker')
        },
        20_000,
        'a fresh message after resume',
      )
      sub.destroy()
      pub.destroy()
    } finally {
      await relay.close()
    }
  })

  test('slow reader: with a small drainTimeoutMs the stuck subscriber is disconnected; others keep working', async () => {
    const p = await e.startProxy({ limits: { ...DEFAULTS.limits, drainTimeoutMs: 300 } })
    const reasons = closeReasons(p)
    const sub = await session(p.address.port)
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: FLOOD, qos: 0 }] })
    await sub.next('suback')
    sub.socket.pause()
    const pub = await session(p.address.port)
    // Flood until the proxy gives up on the subscriber (bounded, so a proxy that never does fails the test).
    const packet = encodePacket({ cmd: 'publish', topic: FLOOD, payload: Buffer.alloc(64 * 1024), qos: 0, dup: false, retain: false }, 5)
    const deadline = Date.now() + 20_000
    while (!reasons.includes('drain-timeout') && Date.now() < deadline) {
      if (!pub.socket.write(packet)) await new Promise((r) => pub.socket.once('drain', r))
      else await new Promise((r) => setImmediate(r))
    }
    assert.deepEqual(reasons, ['drain-timeout'])
    assert.equal(pub.closed, false, 'the publisher is not affected')
    assert.equal(p.sessionCount(), 1)
    pub.send({ cmd: 'pingreq' })
    await pub.next('pingresp')
    pub.destroy()
  })
})
