/** The upstream CONNECT the broker sees, CONNACK codes across versions, and broker choice with back-off (real sockets, loopback). */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { connackCode, describeRefusal, upstreamConnectPacket, Upstreams, validateUpstreams } from '../../../src/lib/proxy/upstreams.js'
import type { ConnectPacket } from '../../../src/lib/mqtt/packets.js'

const ADDRESS = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const device = (version: 4 | 5): ConnectPacket => ({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: version,
  clean: true,
  keepalive: 30,
  clientId: 'dev-1',
  username: 'flytrap-cred',
  password: Buffer.from('0xsignature'),
  will: { topic: 'a/b', payload: Buffer.from('x'), qos: 0, retain: false, ...(version === 5 ? { properties: { willDelayInterval: 60 } } : {}) },
  ...(version === 5 ? { properties: { userProperties: { 'flytrap-sig': '0xsig' }, sessionExpiryInterval: 10 } } : {}),
})

describe('upstreamConnectPacket', () => {
  for (const version of [4, 5] as const) {
    test(`v${version}: the device credential is replaced by the proxy identity; client id namespaced`, () => {
      const out = upstreamConnectPacket(device(version), ADDRESS, version, { usernameFromAddress: false, upstream: { username: 'flytrap-proxy', password: 'pw' } })
      assert.equal(out.username, 'flytrap-proxy')
      assert.deepEqual(out.password, Buffer.from('pw'))
      assert.equal(out.clientId, `${ADDRESS.toLowerCase()}/dev-1`)
      assert.equal(JSON.stringify(out).includes('0xsig'), false, 'no FlyTrap credential upstream')
      if (version === 5) {
        assert.equal(out.properties?.topicAliasMaximum, 0)
        assert.equal(out.properties?.sessionExpiryInterval, 10)
        assert.equal(out.will?.properties?.willDelayInterval, 0)
      }
    })
    test(`v${version}: usernameFromAddress puts the address in the username, with the proxy password`, () => {
      const out = upstreamConnectPacket(device(version), ADDRESS, version, { usernameFromAddress: true, upstream: { username: 'ignored-here', password: Buffer.from('pw') } })
      assert.equal(out.username, ADDRESS)
      assert.deepEqual(out.password, Buffer.from('pw'))
    })
    test(`v${version}: without an identity no username or password goes upstream`, () => {
      const out = upstreamConnectPacket(device(version), ADDRESS, version, { usernameFromAddress: false })
      assert.equal(out.username, undefined)
      assert.equal(out.password, undefined)
    })
  }
})

describe('connackCode / describeRefusal', () => {
  test('3.1.1 return codes become their v5 reason codes', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((rc) => connackCode({ cmd: 'connack', sessionPresent: false, returnCode: rc }, 4)), [0, 0x84, 0x85, 0x88, 0x86, 0x87])
    assert.equal(connackCode({ cmd: 'connack', sessionPresent: false, reasonCode: 0x9f }, 5), 0x9f)
    assert.equal(describeRefusal(0x87), '0x87 (not authorised)')
  })
})

describe('validateUpstreams', () => {
  test('a password needs a username unless the address is the username; cert needs key', () => {
    assert.throws(() => validateUpstreams([{ url: 'mqtt://a:1883', password: 'x' }], false), /needs a username/)
    validateUpstreams([{ url: 'mqtt://a:1883', password: 'x' }], true)
    assert.throws(() => validateUpstreams([{ url: 'mqtts://a:8883', cert: 'C' }], false), /both cert and key/)
    assert.throws(() => validateUpstreams([{ url: 'http://a' }], false), /unsupported broker URL/)
  })
})

describe('Upstreams: choosing a broker', () => {
  test('a broker that refuses connections is marked down and the next one is used; healthy ones come first', async () => {
    const listening = net.createServer((s) => s.destroy())
    await new Promise<void>((r) => listening.listen(0, '127.0.0.1', () => r()))
    const good = `mqtt://127.0.0.1:${(listening.address() as net.AddressInfo).port}`
    const closed = net.createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()))
    const dead = `mqtt://127.0.0.1:${(closed.address() as net.AddressInfo).port}`
    await new Promise<void>((r) => closed.close(() => r()))
    const failures: string[] = []
    const u = new Upstreams([{ url: dead }, { url: good }], { usernameFromAddress: false, spares: 0 /* the choice itself; spares have their own tests */, backoff: { minMs: 60_000, maxMs: 60_000 }, onFailure: (b, why) => failures.push(`${b.url} ${why}`) })
    try {
      const first = await u.open()
      assert.equal(first.upstream.url, good)
      first.socket.destroy()
      assert.deepEqual(failures, [`${dead} connect`])
      assert.deepEqual(u.status().map((s) => s.state), ['down', 'up'])
      // While it is down, the dead one is not tried first again.
      const second = await u.open()
      assert.equal(second.upstream.url, good)
      second.socket.destroy()
      assert.equal(failures.length, 1)
      // Both down: still tried (soonest retry first), and the failure is the last one's.
      await new Promise<void>((r) => listening.close(() => r()))
      await assert.rejects(u.open(), /ECONNREFUSED/)
      assert.deepEqual(u.status().map((s) => s.state), ['down', 'down'])
    } finally {
      u.close()
      listening.close()
    }
  })
})

describe('Upstreams: spare connections', () => {
  /** A broker stand-in that counts the connections it holds open and what they sent. */
  const fakeBroker = async () => {
    const open = new Set<net.Socket>()
    let bytes = 0
    const server = net.createServer((s) => {
      open.add(s)
      s.on('data', (c) => (bytes += c.length))
      s.on('close', () => open.delete(s))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    return { server, open, bytes: () => bytes, url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}` }
  }
  const until = async (cond: () => boolean, what: string) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
    assert.ok(cond(), what)
  }

  test('made after a CONNECT takes one, bounded, closed unused when they age, none for a broker marked down', async () => {
    const b = await fakeBroker()
    const u = new Upstreams([{ url: b.url }], { usernameFromAddress: false, spares: 2, spareMaxAgeMs: 300 })
    try {
      assert.equal(u.spareCount, 0, 'an idle proxy holds none')
      const first = await u.open()
      await until(() => u.spareCount === 2, 'two spares ready after the first CONNECT')
      // A burst takes the spares and the pool refills, but never holds more than its target: a flood of
      // CONNECTs (refused or not) cannot make the proxy hold extra broker connections beyond one per client.
      const taken = await Promise.all(Array.from({ length: 10 }, () => u.open()))
      await until(() => u.spareCount === 2 && b.open.size === 1 + 10 + 2, 'refilled, and nothing more held at the broker')
      await new Promise((r) => setTimeout(r, 50))
      assert.equal(b.open.size, 1 + 10 + 2)
      for (const t of [first, ...taken]) t.socket.destroy()
      // Unused spares are closed once they are spareMaxAgeMs old, and not replaced without demand.
      await until(() => b.open.size === 0, 'aged spares closed at the broker')
      assert.equal(u.spareCount, 0)
      assert.equal(b.bytes(), 0, 'a spare never sends anything by itself')

      // A spare the broker closed is not handed out.
      const again = await u.open()
      await until(() => u.spareCount === 2, 'spares again')
      for (const s of [...b.open]) if (s.remotePort !== again.socket.localPort) s.destroy()
      await until(() => u.spareCount === 0, 'spares the broker closed leave the pool')
      again.socket.destroy()

      // Marked down: its spares are dropped at once.
      const next = await u.open()
      await until(() => u.spareCount === 2, 'spares before the broker is marked down')
      u.markDown(u.list[0]!, 'test')
      assert.equal(u.spareCount, 0)
      next.socket.destroy()
    } finally {
      u.close()
      for (const s of b.open) s.destroy()
      b.server.close()
    }
  })

  test('a spare of a lower-priority broker is not used once the preferred one is up again; close() drops them all', async () => {
    const a = await fakeBroker()
    const b = await fakeBroker()
    const u = new Upstreams([{ url: a.url }, { url: b.url }], { usernameFromAddress: false, spares: 2, spareMaxAgeMs: 10_000, backoff: { minMs: 60_000, maxMs: 60_000 } })
    try {
      u.markDown(u.list[0]!, 'test') // a is down: new connections and spares go to b
      const one = await u.open()
      assert.equal(one.upstream.url, b.url)
      await until(() => u.spareCount === 2, 'spares on b')
      ;(u as unknown as { markUp(x: unknown): void }).markUp(u.list[0]!)
      const two = await u.open()
      assert.equal(two.upstream.url, a.url, 'the preferred broker, not a spare to the other')
      for (const t of [one, two]) t.socket.destroy()
      await until(() => u.spareCount === 2, 'spares refilled')
      u.close()
      assert.equal(u.spareCount, 0)
      await until(() => a.open.size + b.open.size === 0, 'every spare closed at close()')
    } finally {
      u.close()
      for (const s of [...a.open, ...b.open]) s.destroy()
      a.server.close()
      b.server.close()
    }
  })
})
