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
    const u = new Upstreams([{ url: dead }, { url: good }], { usernameFromAddress: false, backoff: { minMs: 60_000, maxMs: 60_000 }, onFailure: (b, why) => failures.push(`${b.url} ${why}`) })
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
