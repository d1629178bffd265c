/**
 * Errors pipelined behind CONNECT (in the same write) are the client's: the same answer, the same log line
 * (`"where":"client"`, with the identity) and the same count towards the identity's ban as the same packet
 * sent after the CONNACK. And a broker's error stays the broker's, even when the client pipelined too.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { AUTH_METHOD, connectAuthData, signCredential, toUserProperties, toUsernamePassword } from '../../src/lib/auth/index.js'
import { encodeRemainingLength, FrameReader } from '../../src/lib/mqtt/framing.js'
import { decodePacket, encodePacket, type ConnectPacket, type Packet, type ProtocolVersion } from '../../src/lib/mqtt/packets.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import type { Logger } from '../../src/lib/log.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { addressOfKey, freshDeviceKey } from '../helpers/mqtt.js'
import { waitFor } from '../helpers/wait.js'

const THRESHOLD = 3

/** Log lines the proxy wrote, as objects. */
const logLines: { msg: string; [k: string]: unknown }[] = []
const logger: Logger = {
  debug: () => {},
  info: (msg, fields) => void logLines.push({ msg, ...fields }),
  warn: (msg, fields) => void logLines.push({ msg, ...fields }),
  error: (msg, fields) => void logLines.push({ msg, ...fields }),
  enabled: (l) => l !== 'debug',
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
const frame = (first: number, body: Buffer) => Buffer.concat([Buffer.from([first]), encodeRemainingLength(body.length), body])
const publish = (v: ProtocolVersion, topic: string, properties?: Record<string, unknown>) => encodePacket({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 0, dup: false, retain: false, ...(properties ? { properties } : {}) } as Packet, v)

interface Case {
  name: string
  bytes: (v: ProtocolVersion) => Buffer
  /** What the client sees after its CONNACK: 'disconnect 0x..' (v5), 'suback 0x..', or 'closed'. */
  v5: string
  v4?: string
  only5?: boolean
}

const CASES: Case[] = [
  { name: 'a second CONNECT', bytes: (v) => encodePacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: v, clean: true, keepalive: 0, clientId: 'again' }, v), v5: 'disconnect 0x82' },
  { name: 'PUBLISH with + in its topic', bytes: (v) => publish(v, 'td/+/x'), v5: 'disconnect 0x90' },
  { name: 'PUBLISH with # in its topic', bytes: (v) => publish(v, 'td/#'), v5: 'disconnect 0x90' },
  { name: 'PUBLISH with an alias never bound', bytes: (v) => publish(v, '', { topicAlias: 1 }), v5: 'disconnect 0x82', only5: true },
  { name: 'PUBLISH with an alias above the maximum', bytes: (v) => publish(v, '', { topicAlias: 60_000 }), v5: 'disconnect 0x94', only5: true },
  { name: 'SUBSCRIBE with an invalid filter', bytes: (v) => encodePacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'td/#/x', qos: 0 }] }, v), v5: 'suback 0x8f', v4: 'suback 0x80' },
  { name: 'malformed PUBLISH (topic length past the end)', bytes: () => frame(0x30, Buffer.concat([u16(200), Buffer.from('td')])), v5: 'disconnect 0x81' },
  { name: 'PUBLISH with QoS 3', bytes: () => frame(0x36, Buffer.concat([u16(2), Buffer.from('td'), u16(1), Buffer.from([0]), Buffer.from('x')])), v5: 'disconnect 0x81' },
  { name: 'SUBSCRIBE with reserved flags 0000', bytes: (v) => Buffer.concat([Buffer.from([0x80]), encodePacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'td/x', qos: 0 }] }, v).subarray(1)]), v5: 'disconnect 0x81' },
  { name: 'reserved packet type 0', bytes: () => Buffer.from([0x00, 0x00]), v5: 'disconnect 0x82' },
  { name: 'a CONNACK from the client', bytes: () => Buffer.from([0x20, 0x02, 0x00, 0x00]), v5: 'disconnect 0x82' },
  { name: 'AUTH out of order (no enhanced authentication)', bytes: () => Buffer.from([0xf0, 0x00]), v5: 'disconnect 0x82' },
  { name: 'a packet over the size limit', bytes: () => Buffer.concat([Buffer.from([0x30]), encodeRemainingLength(4 * 1024 * 1024)]), v5: 'disconnect 0x95' },
]

describe('errors pipelined behind CONNECT are the client’s', () => {
  let e: E2E
  let p: ProxyHandle

  const connectFor = (key: string, v: ProtocolVersion): ConnectPacket => {
    const clientId = `pl-${Math.random().toString(36).slice(2, 10)}`
    const cred = signCredential({ signer: key, chainId: BigInt(e.chain.chainId), contract: e.chain.address, clientId, expiresAt: Math.floor(Date.now() / 1000) + 600 })
    const base: ConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: v, clean: true, keepalive: 0, clientId }
    if (v === 5) return { ...base, properties: { userProperties: toUserProperties(cred) } }
    const { username, password } = toUsernamePassword(cred)
    return { ...base, username, password: Buffer.from(password) }
  }

  /**
   * One connection: CONNECT, then `extra` in the same write (pipelined) or once the CONNACK arrived.
   * Returns the CONNACK code and what followed it.
   */
  const attempt = (port: number, v: ProtocolVersion, key: string, extra: Buffer | null, when: 'pipelined' | 'after-connack'): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' })
      const reader = new FrameReader({ maxPacketSize: 1 << 20 })
      const seen: string[] = []
      const connect = encodePacket(connectFor(key, v), v)
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`no outcome within 10 s (saw: ${seen.join(', ')})`))
      }, 10_000)
      const done = () => {
        clearTimeout(timer)
        socket.destroy()
        resolve(seen.join(', '))
      }
      socket.on('data', (chunk: Buffer) => {
        for (const f of reader.push(chunk)) {
          const packet = decodePacket(f.bytes, v) as Packet & { reasonCode?: number; returnCode?: number; granted?: number[] }
          const code = packet.cmd === 'suback' ? packet.granted![0]! : v === 5 ? packet.reasonCode : packet.returnCode
          seen.push(`${packet.cmd} 0x${(code ?? 0).toString(16)}`)
          if (packet.cmd === 'connack' && when === 'after-connack' && extra && code === 0) socket.write(extra)
          if (packet.cmd === 'connack' && (code !== 0 || !extra)) return done()
          if (packet.cmd === 'suback') return done()
        }
      })
      socket.on('error', () => {})
      socket.on('close', () => {
        seen.push('closed')
        done()
      })
      socket.on('connect', () => socket.write(when === 'pipelined' && extra ? Buffer.concat([connect, extra]) : connect))
    })

  before(async () => {
    e = await e2eFixture()
    p = await e.startProxy({ logger, bans: { ...DEFAULTS.bans, threshold: THRESHOLD, windowMs: 10 * 60_000 } })
  })
  after(async () => {
    await e?.close()
  })

  for (const v of [5, 4] as const) {
    for (const c of CASES) {
      if (c.only5 && v === 4) continue
      const expected = v === 5 ? c.v5 : (c.v4 ?? 'closed')
      test(`v${v}: ${c.name} pipelined behind CONNECT → CONNACK 0, ${expected}; blamed on the client and counted like after the CONNACK`, async () => {
        const reference = freshDeviceKey()
        const pipelined = freshDeviceKey()
        const from = logLines.length
        const outcomes = { reference: [] as string[], pipelined: [] as string[] }
        for (let i = 0; i < THRESHOLD; i++) outcomes.reference.push(await attempt(p.address.port, v, reference, c.bytes(v), 'after-connack'))
        for (let i = 0; i < THRESHOLD; i++) outcomes.pipelined.push(await attempt(p.address.port, v, pipelined, c.bytes(v), 'pipelined'))
        const want = `connack 0x0, ${expected}${expected.startsWith('suback') ? '' : v === 5 ? ', closed' : ''}`
        assert.deepEqual(outcomes.reference, Array(THRESHOLD).fill(want), 'after the CONNACK')
        assert.deepEqual(outcomes.pipelined, outcomes.reference, 'pipelined: exactly what the same packet gets after the CONNACK')

        // Logged against the client and its identity, never the broker.
        const lines = logLines.slice(from).filter((l) => l.msg === 'protocol error')
        assert.deepEqual(lines.filter((l) => l.where !== 'client'), [], 'no error is blamed on the broker')
        if (!expected.startsWith('suback')) {
          for (const key of [reference, pipelined]) assert.equal(lines.filter((l) => String(l.address).toLowerCase() === addressOfKey(key).toLowerCase()).length, THRESHOLD, 'each error logged with the identity')
        }
        // Both identities reached the threshold: banned alike.
        await waitFor(() => logLines.slice(from).filter((l) => l.msg === 'banned').length >= 2, 5_000, 'two bans')
        const banned = v === 5 ? 'connack 0x8a' : 'connack 0x5'
        assert.equal(await attempt(p.address.port, v, reference, null, 'pipelined'), banned, 'the reference identity is banned')
        assert.equal(await attempt(p.address.port, v, pipelined, null, 'pipelined'), banned, 'the pipelining identity is banned just the same')
      })
    }
  }

  test('enhanced authentication: a PUBLISH pipelined instead of the AUTH answer → CONNACK 0x82; counted against the IP (no identity yet)', async () => {
    const from = '127.0.0.9'
    const outcome = () =>
      new Promise<string>((resolve) => {
        const socket = net.connect({ port: p.address.port, host: '127.0.0.1', localAddress: from })
        const reader = new FrameReader({ maxPacketSize: 1 << 20 })
        const seen: string[] = []
        socket.on('data', (chunk: Buffer) => {
          for (const f of reader.push(chunk)) {
            const packet = decodePacket(f.bytes, 5) as Packet & { reasonCode?: number }
            seen.push(`${packet.cmd} 0x${(packet.reasonCode ?? 0).toString(16)}`)
          }
        })
        socket.on('error', () => {})
        socket.on('close', () => resolve([...seen, 'closed'].join(', ')))
        const connect = encodePacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: `pl-ea-${Math.random()}`, properties: { authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(addressOfKey(freshDeviceKey())) } }, 5)
        socket.on('connect', () => socket.write(Buffer.concat([connect, publish(5, 'td/x')])))
      })
    const start = logLines.length
    for (let i = 0; i < THRESHOLD; i++) assert.equal(await outcome(), 'auth 0x18, connack 0x82, closed')
    const lines = logLines.slice(start).filter((l) => l.msg === 'protocol error')
    assert.deepEqual(lines.map((l) => [l.where, l.ip]), Array(THRESHOLD).fill(['client', from]))
    await waitFor(() => logLines.slice(start).some((l) => l.msg === 'banned' && l.ip === from), 5_000, 'the IP ban')
  })

  test('a broker error stays the broker’s when the client pipelined a valid packet (DISCONNECT 0x83, nothing counted)', async () => {
    // A broker that answers CONNACK and, in the same write, a malformed PUBLISH.
    const fake = net.createServer((s) => {
      s.on('error', () => {})
      s.once('data', () => s.write(Buffer.concat([encodePacket({ cmd: 'connack', sessionPresent: false, reasonCode: 0 }, 5), frame(0x30, Buffer.concat([u16(200), Buffer.from('td')]))])))
    })
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()))
    try {
      const q = await e.startProxy({ logger, upstream: { url: `mqtt://127.0.0.1:${(fake.address() as net.AddressInfo).port}` }, bans: { ...DEFAULTS.bans, threshold: THRESHOLD, windowMs: 10 * 60_000 } })
      const key = freshDeviceKey()
      const from = logLines.length
      for (let i = 0; i < THRESHOLD + 1; i++) assert.equal(await attempt(q.address.port, 5, key, Buffer.from([0xc0, 0x00]), 'pipelined'), 'connack 0x0, disconnect 0x83, closed')
      const lines = logLines.slice(from)
      assert.equal(lines.filter((l) => l.msg === 'protocol error' && l.where === 'broker').length, THRESHOLD + 1)
      assert.deepEqual(lines.filter((l) => (l.msg === 'protocol error' && l.where !== 'broker') || l.msg === 'banned'), [], 'nothing blamed on or counted against the client')
    } finally {
      fake.close()
    }
  })
})
