// Session (the per-connection pipeline) without broker or chain: a fake context and loopback sockets on both
// sides, raw MQTT bytes through mqtt-packet (test/helpers/session-harness.ts).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Wallet } from 'ethers'
import { generate } from 'mqtt-packet'
import { AUTH_METHOD, connectAuthData, signChallenge } from '../../../src/lib/auth/index.js'
import { AUTH, connectPacket, credentialFields, sessionHarness, settle, socketClosed, type Harness } from '../../helpers/session-harness.js'
import { authenticateFields } from '../../../src/lib/proxy/authenticate.js'
import { waitFor } from '../../helpers/wait.js'

const NOT_AUTHORIZED = 0x87
/** The client id the broker must see: namespaced by the authenticated address (written out, not imported, so a change shows). */
const upstreamClientId = (address: string, clientId: string) => `${address.toLowerCase()}/${clientId}`
const device = Wallet.createRandom()
const stranger = Wallet.createRandom()

let h: Harness
before(async () => {
  h = await sessionHarness()
  h.policy.allow(device.address, { pub: ['allowed/#', 'will/ok'], sub: ['allowed/#', 'shared/+'], recv: ['allowed/#'] })
})
after(() => h.close())

/** The last element matching (Array#findLast is not in this project's lib). */
function lastOf<T>(xs: readonly T[], match: (x: T) => boolean): T | undefined {
  for (let i = xs.length - 1; i >= 0; i--) if (match(xs[i] as T)) return xs[i]
  return undefined
}

const userProps = (p: { properties?: { userProperties?: Record<string, unknown> } }) => Object.keys(p.properties?.userProperties ?? {})

describe('CONNECT', () => {
  test('v5: a valid credential goes upstream without the credential, as address/clientId; the CONNACK is relayed', async () => {
    const conn = await h.connection(5)
    const connect = connectPacket(device, { version: 5, clientId: 'c1', properties: { userProperties: { app: 'x' } } })
    conn.client.send(connect)
    const upstream = await conn.broker()
    const up = await upstream.next('connect')
    assert.equal(up.clientId, upstreamClientId(device.address, 'c1'))
    assert.deepEqual(userProps(up), ['app']) // flytrap-* stripped, the device's own property kept
    assert.equal(up.username, undefined)
    assert.equal(up.properties?.topicAliasMaximum, 0) // the proxy takes no aliases from the broker
    upstream.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { receiveMaximum: 7 } })
    const connack = await conn.client.next('connack')
    assert.equal(connack.reasonCode, 0)
    assert.equal(connack.properties?.receiveMaximum, 7) // the broker's own CONNACK, not one of the proxy's
    assert.equal(conn.session.phase, 'open')
    assert.ok(h.rec.opened.includes(conn.session))
    assert.ok(h.rec.decisions.some((d) => d.kind === 'connect' && d.allowed && d.clientId === 'c1'))
    conn.client.destroy()
  })

  test('3.1.1: username/password credential is removed from the CONNECT upstream', async () => {
    const conn = await h.connection(4)
    conn.client.send(connectPacket(device, { version: 4, clientId: 'c2' }))
    const upstream = await conn.broker()
    const up = await upstream.next('connect')
    assert.equal(up.protocolVersion, 4)
    assert.equal(up.username, undefined)
    assert.equal(up.password, undefined)
    assert.equal(up.clientId, upstreamClientId(device.address, 'c2'))
    upstream.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 })
    assert.equal((await conn.client.next('connack')).returnCode, 0)
    conn.client.destroy()
  })

  for (const [version, field, expected] of [
    [5, 'reasonCode', 0x86],
    [4, 'returnCode', 4],
  ] as const) {
    test(`v${version}: a bad signature gets CONNACK ${expected}, the socket is destroyed, nothing goes upstream`, async () => {
      const before = h.rec.upstreamConnects
      const failures = h.rec.failures.length
      const conn = await h.connection(version, { ip: '10.0.0.9' })
      // signed by someone else for the device's address: decodes fine, recovers to the wrong address
      const good = credentialFields(device, 'c3', version)
      const forged = credentialFields(stranger, 'c3', version)
      const connect = connectPacket(device, { version, clientId: 'c3', credential: false })
      if (version === 5) connect.properties = { userProperties: { ...forged.properties!.userProperties, 'flytrap-address': device.address } }
      else {
        connect.username = good.username
        connect.password = forged.password
      }
      conn.client.send(connect)
      const connack = await conn.client.next('connack')
      assert.equal(connack[field], expected)
      await conn.client.closes()
      await socketClosed(conn.proxySide) // not left paused and open on the proxy's side
      assert.equal(h.rec.upstreamConnects, before)
      assert.deepEqual(h.rec.failures.slice(failures), [{ ip: '10.0.0.9', address: undefined }]) // counted against the IP
      const d = lastOf(h.rec.decisions, (e) => e.kind === 'connect')!
      assert.equal(d.allowed, false)
      assert.equal(d.reason, 'bad-signature')
      assert.equal(d.verified, false)
    })
  }

  test('v5 enhanced authentication: AUTH challenge, signed answer; the broker never sees the method, the CONNACK names it', async () => {
    const before = h.rec.upstreamConnects
    const conn = await h.connection(5)
    conn.client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'ea-1', properties: { authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(device.address) } })
    const challenge = await conn.client.next('auth')
    assert.equal(challenge.reasonCode, 0x18)
    const nonce = challenge.properties?.authenticationData as Buffer
    assert.equal(nonce.length, 32)
    assert.equal(h.rec.upstreamConnects, before) // nothing upstream before the answer
    assert.equal(conn.session.phase, 'auth')
    const signature = signChallenge({ signer: device, chainId: AUTH.chainId, contract: AUTH.contract, clientId: 'ea-1', nonce })
    conn.client.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: AUTH_METHOD, authenticationData: signature } })
    const upstream = await conn.broker()
    const up = await upstream.next('connect')
    assert.equal(up.clientId, upstreamClientId(device.address, 'ea-1'))
    assert.equal(up.properties?.authenticationMethod, undefined)
    assert.equal(up.properties?.authenticationData, undefined)
    upstream.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0 })
    const connack = await conn.client.next('connack')
    assert.deepEqual([connack.reasonCode, connack.properties?.authenticationMethod], [0, AUTH_METHOD])
    conn.client.destroy()
  })

  test('v5 enhanced authentication: an answer signed by another key gets CONNACK 0x87 and nothing goes upstream', async () => {
    const before = h.rec.upstreamConnects
    const conn = await h.connection(5)
    conn.client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'ea-2', properties: { authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(device.address) } })
    const nonce = (await conn.client.next('auth')).properties?.authenticationData as Buffer
    const signature = signChallenge({ signer: stranger, chainId: AUTH.chainId, contract: AUTH.contract, clientId: 'ea-2', nonce })
    conn.client.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: AUTH_METHOD, authenticationData: signature } })
    assert.equal((await conn.client.next('connack')).reasonCode, NOT_AUTHORIZED)
    await conn.client.closes()
    assert.equal(h.rec.upstreamConnects, before)
  })

  test('packets pipelined behind CONNECT wait for the CONNACK, then are decided as the client\'s', async () => {
    const conn = await h.connection(5)
    const publish = (topic: string, id: number) => ({ cmd: 'publish' as const, topic, payload: Buffer.from(topic), qos: 1 as const, messageId: id, retain: false, dup: false })
    // one write: CONNECT, a refused and an allowed PUBLISH
    conn.client.sendRaw(Buffer.concat([generate(connectPacket(device, { version: 5 }), { protocolVersion: 5 }), generate(publish('secret/p', 61), { protocolVersion: 5 }), generate(publish('allowed/p', 62), { protocolVersion: 5 })]))
    const upstream = await conn.broker()
    await upstream.next('connect')
    // and more while the session waits for the broker's CONNACK
    conn.client.send(publish('secret/q', 63))
    conn.client.send(publish('allowed/q', 64))
    await settle()
    assert.deepEqual(upstream.pending(), []) // nothing before the broker accepted the session
    assert.deepEqual(conn.client.pending(), [])
    upstream.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0 })
    assert.equal((await conn.client.next('connack')).reasonCode, 0)
    for (const id of [61, 63]) {
      const refused = await conn.client.next('puback')
      assert.deepEqual([refused.messageId, refused.reasonCode], [id, NOT_AUTHORIZED])
    }
    assert.equal((await upstream.next('publish')).topic, 'allowed/p')
    assert.equal((await upstream.next('publish')).topic, 'allowed/q')
    conn.client.destroy()
  })

  test('a refused CONNECT with bytes sent behind it while it was verified: the paused socket is still destroyed', async () => {
    // Verification takes a while here, so the extra bytes arrive while the session has the socket paused.
    const slow = await sessionHarness({ verify: (f) => new Promise((r) => setTimeout(() => r(authenticateFields(f, AUTH)), 150)) })
    try {
      const conn = await slow.connection(5)
      conn.client.send(connectPacket(device, { version: 5, credential: false }))
      await settle(50)
      conn.client.send({ cmd: 'publish', topic: 'allowed/x', payload: Buffer.from('queued'), qos: 0, retain: false, dup: false })
      assert.equal((await conn.client.next('connack')).reasonCode, NOT_AUTHORIZED) // no credential at all
      await socketClosed(conn.proxySide)
      assert.equal(slow.rec.upstreamConnects, 0)
    } finally {
      await slow.close()
    }
  })

  test('verified inline (a synchronous answer, as the pool gives when it pays): admitted, refused, and pipelined frames wait for the CONNACK', async () => {
    const inline = await sessionHarness({ verify: (f) => authenticateFields(f, AUTH) })
    inline.policy.allow(device.address, { pub: ['allowed/#'], sub: [], recv: [] })
    try {
      const ok = await inline.connection(5)
      ok.client.send(connectPacket(device, { version: 5, clientId: 'sync-1' }))
      ok.client.send({ cmd: 'publish', topic: 'allowed/x', payload: Buffer.from('behind'), qos: 0, retain: false, dup: false })
      const upstream = await ok.broker()
      assert.equal((await upstream.next('connect')).clientId, upstreamClientId(device.address, 'sync-1'))
      await settle(50)
      assert.equal(upstream.received.filter((p) => p.cmd === 'publish').length, 0, 'nothing relayed before the CONNACK')
      upstream.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0 })
      assert.equal((await ok.client.next('connack')).reasonCode, 0)
      assert.equal((await upstream.next('publish')).topic, 'allowed/x')
      ok.client.destroy()

      const bad = await inline.connection(5)
      bad.client.send(connectPacket(device, { version: 5, credential: false }))
      assert.equal((await bad.client.next('connack')).reasonCode, NOT_AUTHORIZED)
      await socketClosed(bad.proxySide)
      assert.equal(inline.rec.upstreamConnects, 1, 'only the admitted client reached the broker')
    } finally {
      await inline.close()
    }
  })

  test('the broker connection opened while a CONNECT is verified: a refused client\'s is closed unused, whenever the refusal comes', async () => {
    // The connection is opened at CONNECT so the TCP handshake overlaps verification. An attacker whose
    // CONNECTs are refused must not leave one broker connection behind per attempt: neither when the refusal
    // comes before that connection is up (inline verification) nor after (a slow verifier: it sits open, unused).
    for (const delayMs of [0, 150]) {
      const hh = await sessionHarness({ verify: (f) => new Promise((r) => setTimeout(() => r(authenticateFields(f, AUTH)), delayMs)) })
      try {
        const conns = await Promise.all(Array.from({ length: 5 }, () => hh.connection(5)))
        for (const c of conns) c.client.send(connectPacket(stranger, { version: 5, credential: false }))
        if (delayMs > 0) await waitFor(() => hh.rec.brokerSocketsOpen() === 5, 2_000, 'the broker connections to be opened during verification')
        for (const c of conns) assert.equal((await c.client.next('connack')).reasonCode, NOT_AUTHORIZED)
        await waitFor(() => hh.rec.brokerSocketsOpen() === 0, 2_000, 'the unused broker connections to be closed')
        assert.equal(hh.rec.upstreamConnects, 0) // no CONNECT ever reached the broker
      } finally {
        await hh.close()
      }
    }
  })

  test('v5 will: one the device may not publish is refused with CONNACK 0x87 before anything goes upstream', async () => {
    const before = h.rec.upstreamConnects
    const conn = await h.connection(5)
    conn.client.send(connectPacket(device, { version: 5, will: { topic: 'secret/lwt', payload: Buffer.from('x'), qos: 0, retain: false } }))
    assert.equal((await conn.client.next('connack')).reasonCode, NOT_AUTHORIZED)
    await conn.client.closes()
    assert.equal(h.rec.upstreamConnects, before)
    const will = lastOf(h.rec.decisions, (e) => e.kind === 'will')!
    assert.deepEqual([will.allowed, will.topic], [false, 'secret/lwt'])
  })

  test('3.1.1 will: refused with return code 5; an allowed will goes upstream unchanged', async () => {
    const refused = await h.connection(4)
    refused.client.send(connectPacket(device, { version: 4, will: { topic: 'secret/lwt', payload: Buffer.from('x'), qos: 1, retain: false } }))
    assert.equal((await refused.client.next('connack')).returnCode, 5)
    await refused.client.closes()

    const ok = await h.connection(4)
    ok.client.send(connectPacket(device, { version: 4, will: { topic: 'will/ok', payload: Buffer.from('bye'), qos: 1, retain: false } }))
    const up = await (await ok.broker()).next('connect')
    assert.equal(up.will?.topic, 'will/ok')
    assert.equal(String(up.will?.payload), 'bye')
    ok.client.destroy()
  })
})

describe('PUBLISH from the client', () => {
  test('v5: allowed is forwarded as sent; refused QoS 1 gets PUBACK 0x87 and never reaches the broker', async () => {
    const { client, upstream } = await h.open(device, 5)
    const failures = h.rec.failures.length
    client.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('no'), qos: 1, messageId: 11, retain: false, dup: false })
    client.send({ cmd: 'publish', topic: 'allowed/x', payload: Buffer.from('yes'), qos: 1, messageId: 12, retain: false, dup: false })
    const puback = await client.next('puback')
    assert.deepEqual([puback.messageId, puback.reasonCode], [11, NOT_AUTHORIZED])
    const fwd = await upstream.next('publish')
    assert.deepEqual([fwd.topic, String(fwd.payload), fwd.messageId], ['allowed/x', 'yes', 12])
    await settle()
    assert.deepEqual(upstream.pending(), []) // the refused one never arrived, before or after
    assert.equal(h.rec.failures.length, failures + 1)
    assert.equal(h.rec.failures.at(-1)!.address, device.address) // counted against the identity
    client.destroy()
  })

  test('3.1.1: refused QoS 1 gets a PUBACK; refused QoS 2 gets PUBREC and its PUBREL a local PUBCOMP', async () => {
    const { client, upstream } = await h.open(device, 4)
    client.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('1'), qos: 1, messageId: 21, retain: false, dup: false })
    assert.equal((await client.next('puback')).messageId, 21)
    client.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('2'), qos: 2, messageId: 22, retain: false, dup: false })
    assert.equal((await client.next('pubrec')).messageId, 22)
    client.send({ cmd: 'pubrel', messageId: 22 })
    assert.equal((await client.next('pubcomp')).messageId, 22)
    await settle()
    assert.deepEqual(upstream.pending(), [])
    client.destroy()
  })

  test('topic alias: an alias rebound by a refused PUBLISH stays bound to the refused topic', async () => {
    const { client, upstream } = await h.open(device, 5, { connack: { topicAliasMaximum: 5 } })
    const pub = (topic: string, alias: number, id: number) =>
      client.send({ cmd: 'publish', topic, payload: Buffer.from(String(id)), qos: 1, messageId: id, retain: false, dup: false, properties: { topicAlias: alias } })
    pub('allowed/a', 1, 31) // binds 1 → allowed/a, allowed: the broker sees the binding
    assert.equal((await upstream.next('publish')).topic, 'allowed/a')
    pub('secret/x', 1, 32) // rebinds 1 → secret/x, refused: the broker still has 1 → allowed/a
    assert.equal((await client.next('puback')).reasonCode, NOT_AUTHORIZED)
    pub('', 1, 33) // alias only: means secret/x now, so refused — not published on allowed/a
    const refused = await client.next('puback')
    assert.deepEqual([refused.messageId, refused.reasonCode], [33, NOT_AUTHORIZED])
    assert.equal(lastOf(h.rec.decisions, (e) => e.kind === 'publish')!.topic, 'secret/x')
    await settle()
    assert.deepEqual(upstream.pending(), [])

    // Once secret/x is allowed, the alias-only publish must name its topic: the broker's alias 1 is still allowed/a.
    h.policy.allow(device.address, { pub: ['allowed/#', 'will/ok', 'secret/x'], sub: ['allowed/#', 'shared/+'], recv: ['allowed/#'] })
    try {
      pub('', 1, 34)
      const fwd = await upstream.next('publish')
      assert.deepEqual([fwd.messageId, fwd.topic, fwd.properties?.topicAlias], [34, 'secret/x', 1])
      pub('', 1, 35) // the broker has the binding now: forwarded as the alias alone
      const again = await upstream.next('publish')
      assert.deepEqual([again.messageId, again.topic], [35, ''])
    } finally {
      h.policy.allow(device.address, { pub: ['allowed/#', 'will/ok'], sub: ['allowed/#', 'shared/+'], recv: ['allowed/#'] })
      client.destroy()
    }
  })
})

describe('SUBSCRIBE', () => {
  test('v5: partly allowed goes upstream with the allowed filters only; the SUBACK merges codes per filter', async () => {
    const { client, upstream } = await h.open(device, 5)
    client.send({
      cmd: 'subscribe',
      messageId: 41,
      subscriptions: [
        { topic: 'allowed/+', qos: 1 },
        { topic: 'secret/#', qos: 1 },
        { topic: '$share/g/shared/x', qos: 0 }, // authorised as shared/x
        { topic: 'bad/#/x', qos: 0 },
      ],
    })
    const up = await upstream.next('subscribe')
    assert.deepEqual(
      up.subscriptions.map((s) => s.topic),
      ['allowed/+', '$share/g/shared/x'],
    )
    upstream.send({ cmd: 'suback', messageId: up.messageId, granted: [1, 0] })
    const suback = await client.next('suback')
    assert.equal(suback.messageId, 41)
    assert.deepEqual(suback.granted, [1, NOT_AUTHORIZED, 0, 0x8f])
    client.destroy()
  })

  test('3.1.1: refused filters get 0x80; nothing allowed is answered locally and the broker sees nothing', async () => {
    const { client, upstream } = await h.open(device, 4)
    client.send({ cmd: 'subscribe', messageId: 42, subscriptions: [{ topic: 'secret/#', qos: 0 }, { topic: '#', qos: 0 }] })
    const suback = await client.next('suback')
    assert.deepEqual(suback.granted, [0x80, 0x80])
    client.send({ cmd: 'subscribe', messageId: 43, subscriptions: [{ topic: 'x/y', qos: 0 }, { topic: 'allowed/z', qos: 2 }] })
    const up = await upstream.next('subscribe')
    assert.deepEqual([up.messageId, up.subscriptions.map((s) => s.topic)], [43, ['allowed/z']])
    upstream.send({ cmd: 'suback', messageId: 43, granted: [2] })
    assert.deepEqual((await client.next('suback')).granted, [0x80, 2])
    await settle()
    assert.deepEqual(upstream.pending(), []) // the wholly refused SUBSCRIBE 42 never went up
    client.destroy()
  })
})

describe('deliveries from the broker', () => {
  test('one the client may not receive is dropped and still acknowledged upstream (QoS 1 and 2)', async () => {
    const { client, upstream } = await h.open(device, 5)
    upstream.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('s1'), qos: 1, messageId: 51, retain: false, dup: false })
    const ack = await upstream.next('puback')
    assert.equal(ack.messageId, 51)
    upstream.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('s2'), qos: 2, messageId: 52, retain: false, dup: false })
    assert.equal((await upstream.next('pubrec')).messageId, 52)
    upstream.send({ cmd: 'pubrel', messageId: 52 })
    assert.equal((await upstream.next('pubcomp')).messageId, 52)
    upstream.send({ cmd: 'publish', topic: 'allowed/x', payload: Buffer.from('ok'), qos: 1, messageId: 53, retain: false, dup: false })
    const got = await client.next('publish')
    assert.deepEqual([got.topic, String(got.payload)], ['allowed/x', 'ok'])
    await settle()
    assert.deepEqual(client.pending(), []) // neither secret delivery, nor the PUBREL of the dropped QoS 2
    const d = h.rec.decisions.filter((e) => e.kind === 'deliver' && e.topic === 'secret/x')
    assert.equal(d.length, 2)
    assert.ok(d.every((e) => !e.allowed))
    client.destroy()
  })
})

describe('protocol errors are blamed on the side that sent them', () => {
  test('a malformed packet from the client (bad reserved flags): DISCONNECT 0x81, only that connection ends', async () => {
    const bystander = await h.open(device, 5, { clientId: 'bystander' })
    const { client, upstream, session } = await h.open(device, 5, { clientId: 'culprit' })
    const failures = h.rec.failures.length
    // PINGREQ with reserved flags 0001: it would pass through to the broker as it is without the flags check
    client.sendRaw([0xc1, 0x00])
    const disconnect = await client.next('disconnect')
    assert.equal(disconnect.reasonCode, 0x81)
    await client.closes()
    await upstream.closes()
    assert.deepEqual(upstream.pending(), [])
    const err = lastOf(h.rec.protocolErrors, (e) => e.session === session)!
    assert.equal(err.where, 'client')
    assert.equal(h.rec.failures.length, failures + 1) // counted towards a ban
    // the other session is untouched
    bystander.client.send({ cmd: 'publish', topic: 'allowed/still', payload: Buffer.from('1'), qos: 0, retain: false, dup: false })
    assert.equal((await bystander.upstream.next('publish')).topic, 'allowed/still')
    assert.equal(bystander.session.phase, 'open')
    bystander.client.destroy()
  })

  test('a second CONNECT from the client: DISCONNECT 0x82 (protocol error), blamed on the client', async () => {
    const { client, session } = await h.open(device, 5, { clientId: 'twice' })
    client.send(connectPacket(device, { version: 5, clientId: 'twice' }))
    assert.equal((await client.next('disconnect')).reasonCode, 0x82)
    await client.closes()
    assert.equal(lastOf(h.rec.protocolErrors, (e) => e.session === session)!.where, 'client')
  })

  test('a protocol error from the broker (a second CONNACK): the client gets 0x83, the broker is blamed, nothing counted', async () => {
    const { client, upstream, session } = await h.open(device, 5, { clientId: 'victim' })
    const failures = h.rec.failures.length
    upstream.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0 })
    assert.equal((await client.next('disconnect')).reasonCode, 0x83)
    await client.closes()
    const err = lastOf(h.rec.protocolErrors, (e) => e.session === session)!
    assert.equal(err.where, 'broker')
    assert.equal(h.rec.failures.length, failures) // the client is not punished for the broker's fault
    assert.equal(session.closeReason, 'broker-protocol-error')
  })
})
