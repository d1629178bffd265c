/**
 * Authorisation end to end, through real anvil + contract + mosquitto: refused PUBLISHes at every QoS in both
 * protocol versions, topic aliases (including rebinding after a refusal), wills, shared subscriptions, `$SYS`,
 * wildcard coverage, unregistered topics, and the delivery-side checks (retained messages, revocation after
 * subscribing, dropped QoS 1/2 deliveries acknowledged to the broker). Every refusal is paired with the
 * allowed counterpart on the same connection or topic layout, so each test can fail.
 *
 * "Backend" messages are published straight to mosquitto (bypassing the proxy), so delivery checks are tested
 * on their own, independently of publish checks.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import type { DecisionEvent } from '../../src/lib/policy/types.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import type { Packet, PublishPacket } from '../../src/lib/mqtt/packets.js'
import { ConnackReturnCode, ReasonCode, SUBACK_FAILURE_V4 } from '../../src/lib/mqtt/reason-codes.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { addressOfKey, freshDeviceKey, inbox, publish, publishCode, subscribeCodes } from '../helpers/mqtt.js'
import { rawMqttConnect, type RawConnectOptions, type RawMqtt } from '../helpers/mqtt-raw.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { PUB, SUB, BOTH, topicArgs } from '../helpers/topics.js'

/** Device keys (random, no ETH needed: only the owner, key 0, sends transactions). */
const K = {
  pub: freshDeviceKey(), // publisher: pub on az/pub/ok, az/alias/a, az/alias2/a
  watcher: freshDeviceKey(), // sub on az/pub/#, az/will/#
  sa: freshDeviceKey(), // sub on az/alias/a, az/alias2/a
  sb: freshDeviceKey(), // sub on az/alias/b, az/alias2/b
  will: freshDeviceKey(), // pub on az/will/ok, az/will/rev, az/will/delay (+ expiring ones added in tests)
  shared: freshDeviceKey(), // sub on az/shared/ok
  wa: freshDeviceKey(), // sub on az/wc/sensors/#
  wb: freshDeviceKey(), // sub on az/wc/s2/+/temp
  wc: freshDeviceKey(), // pub+sub on az/wc/allowed
  mix: freshDeviceKey(), // sub on az/mix/a, az/mix/c
  none: freshDeviceKey(), // no grants at all
  r1: freshDeviceKey(), // sub on az/ret/t
  r2: freshDeviceKey(), // nothing on az/ret/t
  r3: freshDeviceKey(), // sub on az/ret/t (revoked in a test)
  drop: freshDeviceKey(), // sub on az/drop/q1, az/drop/q2 (revoked and restored)
  sys: freshDeviceKey(), // sub on # (and for a while on $SYS/#)
}
const A = Object.fromEntries(Object.entries(K).map(([k, v]) => [k, addressOfKey(v)])) as Record<keyof typeof K, string>

const TOPICS: [string, [keyof typeof K, number][]][] = [
  ['az/pub/#', [['watcher', SUB]]],
  ['az/pub/ok', [['pub', PUB]]],
  ['az/pub/no', []],
  ['az/alias/a', [['pub', PUB], ['sa', SUB]]],
  ['az/alias/b', [['sb', SUB]]],
  ['az/alias2/a', [['pub', PUB], ['sa', SUB]]],
  ['az/alias2/b', [['sb', SUB]]],
  ['az/will/#', [['watcher', SUB]]],
  ['az/will/ok', [['will', PUB]]],
  ['az/will/no', []],
  ['az/will/rev', [['will', PUB]]],
  ['az/will/delay', [['will', PUB]]],
  ['az/will/exp', []],
  ['az/will/bye', []],
  ['az/shared/ok', [['shared', SUB]]],
  ['az/shared/no', []],
  ['az/wc/sensors/#', [['wa', SUB]]],
  ['az/wc/s2/+/temp', [['wb', SUB]]],
  ['az/wc/allowed', [['wc', BOTH]]],
  ['az/wc/allowed/secret', []],
  ['az/mix/a', [['mix', SUB]]],
  ['az/mix/b', []],
  ['az/mix/c', [['mix', SUB]]],
  ['az/mix/d', []],
  ['az/ret/t', [['r1', SUB], ['r3', SUB]]],
  ['az/drop/q1', [['drop', SUB]]],
  ['az/drop/q2', [['drop', SUB]]],
]

describe('authorisation', () => {
  let e: E2E
  let backend: MqttClient
  const raws = new Set<RawMqtt>()

  const owner = () => e.chain.as(0)
  const rawConnect = async (o: Omit<RawConnectOptions, 'port' | 'chain'> & { port?: number }) => {
    const r = await rawMqttConnect({ port: e.proxy.address.port, chain: e.chain, ...o })
    raws.add(r)
    return r
  }
  /** Publishes straight to mosquitto, as a trusted backend service would. */
  const direct = (topic: string, payload: string, qos: 0 | 1 | 2 = 1, retain = false) => publish(backend, topic, payload, { qos, retain })
  const decisionsOf = (p: ProxyHandle = e.proxy) => {
    const list: DecisionEvent[] = []
    p.on('decision', (d: DecisionEvent) => list.push(d))
    return list
  }

  before(async () => {
    e = await e2eFixture({
      // Refusals are what these tests are about: keep them from turning into bans of 127.0.0.1.
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 } },
      mosquitto: { configExtra: ['sys_interval 1'] },
      setup: async (chain) => {
        const o = chain.as(0)
        for (const [name, grants] of TOPICS) {
          await o.addTopic(topicArgs(name))
          for (const [who, roles] of grants) await o.allow(name, A[who], roles as 1 | 2 | 3, 0, 'e2e')
        }
      },
    })
    backend = await mqtt.connectAsync(e.mosquitto.url, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'backend' })
  })
  after(async () => {
    for (const r of raws) r.end()
    backend?.end(true)
    await e?.close()
  })

  // ---------------------------------------------------------------- PUBLISH refusals

  describe('PUBLISH refusals', () => {
    test('v5 QoS 0: a refused publish is dropped silently; the allowed one reaches a subscriber with a wildcard right', async () => {
      const w = await e.connect({ key: K.watcher })
      const box = inbox(w)
      assert.deepEqual(await subscribeCodes(w, 'az/pub/#', 2), [2])
      const p = await e.connect({ key: K.pub })
      await publish(p, 'az/pub/no', 'q0-refused', { qos: 0 })
      await publish(p, 'az/pub/ok', 'q0-allowed', { qos: 0 })
      await waitFor(() => box.has('az/pub/ok', 'q0-allowed'), 5_000, 'allowed QoS 0 delivery')
      await sleep(300)
      assert.equal(box.has('az/pub/no'), false, 'the refused QoS 0 publish reached the broker')
      assert.equal(p.connected, true, 'a refused QoS 0 publish does not end the session')
      p.end(true)
      w.end(true)
    })

    test('v5 QoS 1 → PUBACK 0x87, QoS 2 → PUBREC 0x87; allowed ones succeed; refused ones never reach the broker', async () => {
      const w = await e.connect({ key: K.watcher })
      const box = inbox(w)
      assert.deepEqual(await subscribeCodes(w, 'az/pub/#', 2), [2])
      const p = await e.connect({ key: K.pub })
      assert.equal(await publishCode(p, 'az/pub/no', 'q1-refused', { qos: 1 }), ReasonCode.NotAuthorized)
      assert.equal(await publishCode(p, 'az/pub/no', 'q2-refused', { qos: 2 }), ReasonCode.NotAuthorized)
      assert.equal(await publishCode(p, 'az/pub/ok', 'q1-allowed', { qos: 1 }), 0)
      assert.equal(await publishCode(p, 'az/pub/ok', 'q2-allowed', { qos: 2 }), 0)
      await waitFor(() => box.has('az/pub/ok', 'q1-allowed') && box.has('az/pub/ok', 'q2-allowed'), 5_000, 'allowed deliveries')
      await sleep(300)
      assert.equal(box.has('az/pub/no'), false)
      p.end(true)
      w.end(true)
    })

    test('v5 raw: PUBREC 0x87 ends the QoS 2 exchange; the same connection then completes an allowed QoS 2 exchange', async () => {
      const r = await rawConnect({ key: K.pub })
      assert.equal(r.connack.reasonCode, 0)
      r.send({ cmd: 'publish', topic: 'az/pub/no', payload: Buffer.from('raw-q2-refused'), qos: 2, messageId: 7, dup: false, retain: false })
      const rec = await r.expect((p) => p.cmd === 'pubrec' && p.messageId === 7)
      assert.equal((rec.packet as { reasonCode?: number }).reasonCode, ReasonCode.NotAuthorized)
      r.send({ cmd: 'publish', topic: 'az/pub/ok', payload: Buffer.from('raw-q2-allowed'), qos: 2, messageId: 8, dup: false, retain: false })
      const ok = await r.expect((p) => p.cmd === 'pubrec' && p.messageId === 8)
      assert.ok(((ok.packet as { reasonCode?: number }).reasonCode ?? 0) < 0x80, 'allowed QoS 2 publish accepted')
      r.send({ cmd: 'pubrel', messageId: 8, reasonCode: 0 })
      await r.expect((p) => p.cmd === 'pubcomp' && p.messageId === 8)
      r.end()
    })

    test('3.1.1: PUBACK without a code, PUBREC then PUBCOMP for the PUBREL (answered by the proxy); nothing reaches the broker', async () => {
      const w = await e.connect({ key: K.watcher })
      const box = inbox(w)
      assert.deepEqual(await subscribeCodes(w, 'az/pub/#', 2), [2])
      const r = await rawConnect({ key: K.pub, version: 4 })
      assert.equal(r.connack.returnCode, 0)

      r.send({ cmd: 'publish', topic: 'az/pub/no', payload: Buffer.from('v4-q1-refused'), qos: 1, messageId: 11, dup: false, retain: false })
      const ack = await r.expect((p) => p.cmd === 'puback' && p.messageId === 11)
      assert.deepEqual(ack.bytes, Buffer.from([0x40, 0x02, 0x00, 11]), 'a 3.1.1 PUBACK is exactly 4 bytes')

      r.send({ cmd: 'publish', topic: 'az/pub/no', payload: Buffer.from('v4-q2-refused'), qos: 2, messageId: 12, dup: false, retain: false })
      const rec = await r.expect((p) => p.cmd === 'pubrec' && p.messageId === 12)
      assert.deepEqual(rec.bytes, Buffer.from([0x50, 0x02, 0x00, 12]))
      r.send({ cmd: 'pubrel', messageId: 12 })
      const comp = await r.expect((p) => p.cmd === 'pubcomp' && p.messageId === 12)
      assert.deepEqual(comp.bytes, Buffer.from([0x70, 0x02, 0x00, 12]))

      // The allowed counterpart on the same connection goes through the broker.
      r.send({ cmd: 'publish', topic: 'az/pub/ok', payload: Buffer.from('v4-q2-allowed'), qos: 2, messageId: 13, dup: false, retain: false })
      await r.expect((p) => p.cmd === 'pubrec' && p.messageId === 13)
      r.send({ cmd: 'pubrel', messageId: 13 })
      await r.expect((p) => p.cmd === 'pubcomp' && p.messageId === 13)
      r.send({ cmd: 'publish', topic: 'az/pub/ok', payload: Buffer.from('v4-q1-allowed'), qos: 1, messageId: 14, dup: false, retain: false })
      await r.expect((p) => p.cmd === 'puback' && p.messageId === 14)

      await waitFor(() => box.has('az/pub/ok', 'v4-q2-allowed') && box.has('az/pub/ok', 'v4-q1-allowed'), 5_000, 'allowed 3.1.1 deliveries')
      await sleep(300)
      assert.equal(box.has('az/pub/no'), false, 'a refused 3.1.1 publish reached the broker')
      assert.equal(r.isClosed(), false)
      r.end()
      w.end(true)
    })

    test('3.1.1 with MQTT.js: refused QoS 0/1/2 publishes complete for the client but are never delivered', async () => {
      const w = await e.connect({ key: K.watcher })
      const box = inbox(w)
      assert.deepEqual(await subscribeCodes(w, 'az/pub/#', 2), [2])
      const p = await e.connect({ key: K.pub, version: 4 })
      for (const qos of [0, 1, 2] as const) await publish(p, 'az/pub/no', `v4-js-refused-${qos}`, { qos })
      await publish(p, 'az/pub/ok', 'v4-js-allowed', { qos: 2 })
      await waitFor(() => box.has('az/pub/ok', 'v4-js-allowed'), 5_000, 'allowed delivery')
      await sleep(300)
      assert.equal(box.has('az/pub/no'), false)
      p.end(true)
      w.end(true)
    })
  })

  // ---------------------------------------------------------------- topic aliases, client → broker

  describe('topic aliases (client → broker)', () => {
    let nextId = 100
    const rawPublish = async (r: RawMqtt, topic: string, payload: string, alias?: number): Promise<number> => {
      const messageId = nextId++
      const packet: PublishPacket = { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId, dup: false, retain: false }
      if (alias !== undefined) packet.properties = { topicAlias: alias }
      r.send(packet)
      const ack = await r.expect((p) => p.cmd === 'puback' && p.messageId === messageId, 5_000, `PUBACK ${messageId}`)
      const code = (ack.packet as { reasonCode?: number }).reasonCode ?? 0
      return code >= 0x80 ? code : 0 // 0x10 "no matching subscribers" is a success
    }

    test('an alias rebound to a forbidden topic is refused, by name and alias-only; rebinding to the allowed topic works again', async () => {
      const sa = await e.connect({ key: K.sa })
      const sb = await e.connect({ key: K.sb })
      const boxA = inbox(sa)
      const boxB = inbox(sb)
      assert.deepEqual(await subscribeCodes(sa, 'az/alias/a'), [1])
      assert.deepEqual(await subscribeCodes(sb, 'az/alias/b'), [1])
      const r = await rawConnect({ key: K.pub })
      assert.ok((r.connack.properties?.topicAliasMaximum ?? 0) >= 1, 'the broker offers topic aliases')

      assert.equal(await rawPublish(r, 'az/alias/a', 'a-bound', 1), 0)
      assert.equal(await rawPublish(r, '', 'a-alias-only', 1), 0)
      await waitFor(() => boxA.has('az/alias/a', 'a-alias-only'), 5_000, 'alias-only delivery to A')

      assert.equal(await rawPublish(r, 'az/alias/b', 'b-named', 1), ReasonCode.NotAuthorized)
      // Alias 1 now means az/alias/b for the client (the broker still has az/alias/a): refused.
      assert.equal(await rawPublish(r, '', 'b-alias-only', 1), ReasonCode.NotAuthorized)

      assert.equal(await rawPublish(r, 'az/alias/a', 'a-rebound', 1), 0)
      assert.equal(await rawPublish(r, '', 'a-alias-only-2', 1), 0)
      await waitFor(() => boxA.has('az/alias/a', 'a-alias-only-2'), 5_000, 'alias-only delivery after rebinding')
      await sleep(300)
      assert.deepEqual(boxA.messages.map((m) => m.payload), ['a-bound', 'a-alias-only', 'a-rebound', 'a-alias-only-2'], 'nothing refused reached A')
      assert.deepEqual(boxB.messages, [], 'nothing reached B')
      r.end()
      sa.end(true)
      sb.end(true)
    })

    test('rebinding after a refusal: once B is allowed and A revoked, an alias-only publish goes to B at the broker, never to A', async () => {
      const sa = await e.connect({ key: K.sa })
      const sb = await e.connect({ key: K.sb })
      const boxA = inbox(sa)
      const boxB = inbox(sb)
      assert.deepEqual(await subscribeCodes(sa, 'az/alias2/a'), [1])
      assert.deepEqual(await subscribeCodes(sb, 'az/alias2/b'), [1])
      const r = await rawConnect({ key: K.pub })

      assert.equal(await rawPublish(r, 'az/alias2/a', 'x1-A', 1), 0) // broker: alias 1 → A
      await waitFor(() => boxA.has('az/alias2/a', 'x1-A'), 5_000, 'A bound and forwarded')
      assert.equal(await rawPublish(r, 'az/alias2/b', 'x2-B-refused', 1), ReasonCode.NotAuthorized) // client: alias 1 → B

      await owner().allow('az/alias2/b', A.pub, PUB, 0, 'e2e')
      await owner().revoke('az/alias2/a', A.pub, PUB, 'e2e')
      await e.synced()

      assert.equal(await rawPublish(r, '', 'x3-alias-only', 1), 0, 'alias 1 means B, which is allowed now')
      await waitFor(() => boxB.has('az/alias2/b', 'x3-alias-only'), 5_000, 'alias-only publish delivered on B')
      assert.equal(await rawPublish(r, 'az/alias2/a', 'x4-A-revoked', 1), ReasonCode.NotAuthorized, 'A is revoked')
      await sleep(300)
      assert.deepEqual(boxA.messages.map((m) => m.payload), ['x1-A'], 'the alias-only publish must not reach A')
      assert.deepEqual(boxB.messages.map((m) => m.payload), ['x3-alias-only'])
      r.end()
      sa.end(true)
      sb.end(true)
    })

    test('alias 0, an alias above the maximum → DISCONNECT 0x94; an alias never bound → DISCONNECT 0x82; alias = maximum works', async () => {
      const probe = await rawConnect({ key: K.pub })
      const max = probe.connack.properties?.topicAliasMaximum ?? 0
      assert.ok(max >= 1)
      assert.equal(await rawPublish(probe, 'az/alias/a', 'max-alias', max), 0)
      assert.equal(await rawPublish(probe, '', 'max-alias-only', max), 0)
      probe.end()

      for (const [alias, topic, code] of [[0, 'az/alias/a', ReasonCode.TopicAliasInvalid], [max + 1, 'az/alias/a', ReasonCode.TopicAliasInvalid], [2, '', ReasonCode.ProtocolError]] as const) {
        const r = await rawConnect({ key: K.pub })
        r.send({ cmd: 'publish', topic, payload: Buffer.from('bad-alias'), qos: 1, messageId: 1, dup: false, retain: false, properties: { topicAlias: alias } })
        const d = await r.expect((p) => p.cmd === 'disconnect', 5_000, `DISCONNECT for alias ${alias}`)
        assert.equal((d.packet as { reasonCode?: number }).reasonCode, code, `alias ${alias} topic "${topic}"`)
        await r.whenClosed()
        assert.equal(r.received.some((x) => x.packet.cmd === 'puback'), false)
      }
    })
  })

  // ---------------------------------------------------------------- wills

  describe('will messages', () => {
    const will = (topic: string, payload: string, properties?: Record<string, number>) => ({ topic, payload: Buffer.from(payload), qos: 1 as const, retain: false, ...(properties ? { properties } : {}) })
    const watch = async () => {
      const w = await e.connect({ key: K.watcher })
      const box = inbox(w)
      assert.deepEqual(await subscribeCodes(w, 'az/will/#'), [1])
      return { w, box }
    }

    test('a will on a forbidden topic is refused with CONNACK 0x87 (v5) / 5 (3.1.1); an allowed will connects', async () => {
      await assert.rejects(e.connect({ key: K.will, will: will('az/will/no', 'forbidden') }), (err: { code?: unknown }) => err.code === ReasonCode.NotAuthorized)
      await assert.rejects(e.connect({ key: K.will, version: 4, will: will('az/will/no', 'forbidden') }), (err: { code?: unknown }) => err.code === ConnackReturnCode.NotAuthorized)
      const ok5 = await e.connect({ key: K.will, will: will('az/will/ok', 'fine') })
      const ok4 = await e.connect({ key: K.will, version: 4, will: will('az/will/ok', 'fine') })
      ok5.end()
      ok4.end()
    })

    test('an allowed will is published by the broker when the client socket is destroyed', async () => {
      const { w, box } = await watch()
      const c = await e.connect({ key: K.will, will: will('az/will/ok', 'abrupt-allowed') })
      c.stream.destroy()
      await waitFor(() => box.has('az/will/ok', 'abrupt-allowed'), 5_000, 'will published')
      w.end(true)
    })

    test('a will revoked mid-session: the proxy ends the session (v5 DISCONNECT 0x87, 3.1.1 close) and the will is never published', async () => {
      const { w, box } = await watch()
      const c5 = await e.connect({ key: K.will, will: will('az/will/rev', 'revoked-v5') })
      const c4 = await e.connect({ key: K.will, version: 4, will: will('az/will/rev', 'revoked-v4') })
      let disconnectCode: number | undefined
      c5.on('disconnect', (p) => (disconnectCode = p.reasonCode))
      let closed5 = false
      let closed4 = false
      c5.on('close', () => (closed5 = true))
      c4.on('close', () => (closed4 = true))

      await owner().revoke('az/will/rev', A.will, PUB, 'e2e')
      await waitFor(() => closed5 && closed4, 5_000, 'sessions ended by the proxy')
      assert.equal(disconnectCode, ReasonCode.NotAuthorized)
      c5.stream.destroy() // and an abrupt end on the client side afterwards changes nothing
      c4.stream.destroy()
      // Counterpart: an allowed will published now arrives, so the broker is delivering wills to the watcher.
      const ok = await e.connect({ key: K.will, will: will('az/will/ok', 'control') })
      ok.stream.destroy()
      await waitFor(() => box.has('az/will/ok', 'control'), 5_000, 'control will')
      await sleep(300)
      assert.equal(box.has('az/will/rev'), false, 'a revoked will was published')
      await owner().allow('az/will/rev', A.will, PUB, 0, 'e2e') // restore for later tests
      w.end(true)
    })

    test('a will whose right lapsed (expiry, no chain event) is not published after an abrupt disconnect', async () => {
      const { w, box } = await watch()
      const expiry = Math.floor(Date.now() / 1000) + 3
      await owner().allow('az/will/exp', A.will, PUB, expiry, 'e2e')
      await e.synced()
      const c = await e.connect({ key: K.will, will: will('az/will/exp', 'lapsed-abrupt') })
      await waitFor(() => Date.now() >= expiry * 1000 + 200, 6_000, 'grant expiry')
      assert.equal(await publishCode(c, 'az/will/exp', 'after-lapse'), ReasonCode.NotAuthorized, 'the right has lapsed')
      c.stream.destroy()
      const ok = await e.connect({ key: K.will, will: will('az/will/ok', 'control-exp') })
      ok.stream.destroy()
      await waitFor(() => box.has('az/will/ok', 'control-exp'), 5_000, 'control will')
      await sleep(300)
      assert.equal(box.has('az/will/exp'), false, 'a lapsed will was published')
      w.end(true)
    })

    test(
      'a will whose right lapsed is not published when the client sends DISCONNECT 0x04 (disconnect with will)',
      async () => {
        const { w, box } = await watch()
        // Counterpart: DISCONNECT 0x04 with an allowed will does publish it.
        const ok = await e.connect({ key: K.will, will: will('az/will/ok', 'bye-allowed') })
        ok.end(false, { reasonCode: 4 })
        await waitFor(() => box.has('az/will/ok', 'bye-allowed'), 5_000, 'will after DISCONNECT 0x04')

        const expiry = Math.floor(Date.now() / 1000) + 3
        await owner().allow('az/will/bye', A.will, PUB, expiry, 'e2e')
        await e.synced()
        const c = await e.connect({ key: K.will, will: will('az/will/bye', 'bye-lapsed') })
        await waitFor(() => Date.now() >= expiry * 1000 + 200, 6_000, 'grant expiry')
        assert.equal(await publishCode(c, 'az/will/bye', 'after-lapse'), ReasonCode.NotAuthorized, 'the right has lapsed')
        c.end(false, { reasonCode: 4 })
        const ctl = await e.connect({ key: K.will, will: will('az/will/ok', 'control-bye') })
        ctl.stream.destroy()
        await waitFor(() => box.has('az/will/ok', 'control-bye'), 5_000, 'control will')
        await sleep(300)
        assert.equal(box.has('az/will/bye'), false, 'a will without publish right was published after DISCONNECT 0x04')
        w.end(true)
      },
    )

    test(
      'a Will Delay Interval is not passed to the broker: the will is decided at disconnect, never published after a revocation',
      async () => {
        const { w, box } = await watch()
        const arrived: number[] = []
        w.on('message', (topic) => {
          if (topic === 'az/will/delay') arrived.push(Date.now())
        })
        const c = await e.connect({ key: K.will, will: will('az/will/delay', 'delayed-revoked', { willDelayInterval: 2 }), extra: { properties: { sessionExpiryInterval: 30 } } })
        c.stream.destroy()
        // Allowed at the moment of disconnect: published then, not 2 s later.
        await waitFor(() => box.has('az/will/delay', 'delayed-revoked'), 5_000, 'will at disconnect')
        await owner().revoke('az/will/delay', A.will, PUB, 'e2e')
        await e.synced()
        await sleep(2_500) // past the delay the client asked for: nothing more may arrive
        assert.equal(arrived.length, 1, 'the will was published exactly once, at disconnect')
        await owner().allow('az/will/delay', A.will, PUB, 0, 'e2e')
        w.end(true)
      },
    )
  })

  // ---------------------------------------------------------------- shared subscriptions

  describe('shared subscriptions', () => {
    for (const version of [5, 4] as const) {
      test(`v${version}: $share/g/<filter> is authorised as <filter>; refused ones are not added; $share//x is malformed`, async () => {
        const refused = version === 5 ? ReasonCode.NotAuthorized : SUBACK_FAILURE_V4
        const malformed = version === 5 ? ReasonCode.TopicFilterInvalid : SUBACK_FAILURE_V4
        const group = `g${version}`
        const c = await e.connect({ key: K.shared, version })
        const box = inbox(c)
        assert.deepEqual(await subscribeCodes(c, `$share/${group}/az/shared/ok`), [1])
        assert.deepEqual(await subscribeCodes(c, `$share/${group}/az/shared/no`), [refused])
        assert.deepEqual(await subscribeCodes(c, '$share//x'), [malformed])
        assert.deepEqual(await subscribeCodes(c, `$share/${group}/#`), [refused])
        assert.deepEqual(await subscribeCodes(c, [`$share/${group}x/az/shared/no`, `$share/${group}x/az/shared/ok`, '$share//x']), [refused, 1, malformed])

        await direct('az/shared/no', `no-${version}`)
        await direct('az/shared/ok', `ok-${version}`)
        await waitFor(() => box.has('az/shared/ok', `ok-${version}`), 5_000, 'shared delivery')
        await sleep(200)
        assert.equal(box.has('az/shared/no'), false)

        // Not added at the broker: granting the right now does not make the refused shared subscription deliver.
        await owner().allow('az/shared/no', A.shared, SUB, 0, 'e2e')
        await e.synced()
        await direct('az/shared/no', `no-after-grant-${version}`)
        await direct('az/shared/ok', `ok-2-${version}`)
        await waitFor(() => box.messages.filter((m) => m.payload === `ok-2-${version}`).length >= 1, 5_000, 'sentinel')
        await sleep(300)
        assert.equal(box.has('az/shared/no'), false, 'a refused $share subscription was added at the broker')
        // Counterpart: subscribing now works and delivers.
        assert.deepEqual(await subscribeCodes(c, `$share/${group}/az/shared/no`), [1])
        await direct('az/shared/no', `no-subscribed-${version}`)
        await waitFor(() => box.has('az/shared/no', `no-subscribed-${version}`), 5_000, 'delivery after subscribing')
        await owner().revoke('az/shared/no', A.shared, SUB, 'e2e')
        await e.synced()
        c.end(true)
      })
    }
  })

  // ---------------------------------------------------------------- wildcards

  describe('wildcards', () => {
    test('a grant on sensors/# allows subscribing sensors/+/temp', async () => {
      const c = await e.connect({ key: K.wa })
      const box = inbox(c)
      assert.deepEqual(await subscribeCodes(c, 'az/wc/sensors/+/temp'), [1])
      await direct('az/wc/sensors/k1/temp', 't1')
      await waitFor(() => box.has('az/wc/sensors/k1/temp', 't1'), 5_000, 'delivery')
      c.end(true)
    })

    test('a grant on sensors/+/temp refuses sensors/# (not added), allows sensors/+/temp', async () => {
      const c = await e.connect({ key: K.wb })
      const box = inbox(c)
      assert.deepEqual(await subscribeCodes(c, 'az/wc/s2/#'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/wc/s2/k/#'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/wc/s2/+/+'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/wc/s2/+/temp'), [1])
      assert.deepEqual(await subscribeCodes(c, 'az/wc/s2/k9/temp'), [1])
      await direct('az/wc/s2/k/hum', 'hum')
      await direct('az/wc/s2/k/temp', 'temp')
      await waitFor(() => box.has('az/wc/s2/k/temp', 'temp'), 5_000, 'delivery')
      await sleep(200)
      assert.equal(box.has('az/wc/s2/k/hum'), false)
      c.end(true)
    })

    test('a grant on "allowed" does not cover "allowed/secret" (publish and subscribe)', async () => {
      const c = await e.connect({ key: K.wc })
      const box = inbox(c)
      assert.equal(await publishCode(c, 'az/wc/allowed', 'fine'), 0)
      assert.equal(await publishCode(c, 'az/wc/allowed/secret', 'nope'), ReasonCode.NotAuthorized)
      assert.deepEqual(await subscribeCodes(c, 'az/wc/allowed/secret'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/wc/allowed/#'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/wc/allowed/+'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/wc/+'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/wc/allowed'), [1])
      await direct('az/wc/allowed/secret', 'secret')
      await direct('az/wc/allowed', 'public')
      await waitFor(() => box.has('az/wc/allowed', 'public'), 5_000, 'delivery')
      await sleep(200)
      assert.equal(box.has('az/wc/allowed/secret'), false)
      c.end(true)
    })

    for (const version of [5, 4] as const) {
      test(`v${version}: a mixed SUBSCRIBE gets per-filter codes in order; only allowed filters are added and deliver`, async () => {
        const refused = version === 5 ? ReasonCode.NotAuthorized : SUBACK_FAILURE_V4
        const c = await e.connect({ key: K.mix, version })
        const box = inbox(c)
        const codes = await subscribeCodes(c, { 'az/mix/a': { qos: 0 }, 'az/mix/b': { qos: 1 }, 'az/mix/c': { qos: 2 }, 'az/mix/d': { qos: 1 } })
        assert.deepEqual(codes, [0, refused, 2, refused])
        for (const t of ['a', 'b', 'c', 'd']) await direct(`az/mix/${t}`, `${t}-${version}`)
        await waitFor(() => box.has('az/mix/a', `a-${version}`) && box.has('az/mix/c', `c-${version}`), 5_000, 'allowed deliveries')
        await sleep(200)
        assert.deepEqual(box.messages.map((m) => m.topic).sort(), ['az/mix/a', 'az/mix/c'])

        // The refused filter was removed from the SUBSCRIBE the broker saw: a grant now does not revive it.
        await owner().allow('az/mix/b', A.mix, SUB, 0, 'e2e')
        await e.synced()
        await direct('az/mix/b', `b2-${version}`)
        await direct('az/mix/a', `a2-${version}`)
        await waitFor(() => box.has('az/mix/a', `a2-${version}`), 5_000, 'sentinel')
        await sleep(300)
        assert.equal(box.has('az/mix/b'), false, 'a refused filter was added at the broker')
        await owner().revoke('az/mix/b', A.mix, SUB, 'e2e')
        await e.synced()
        c.end(true)
      })
    }
  })

  // ---------------------------------------------------------------- unregistered topics

  describe('unregistered topics', () => {
    test('denied by default (publish and subscribe); registered and granted works on the same connection', async () => {
      const c = await e.connect({ key: K.pub })
      assert.equal(await publishCode(c, 'az/unreg/x', 'u'), ReasonCode.NotAuthorized)
      assert.deepEqual(await subscribeCodes(c, 'az/unreg/#'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/unreg/x'), [ReasonCode.NotAuthorized])
      assert.equal(await publishCode(c, 'az/pub/ok', 'registered'), 0)
      c.end(true)
    })

    test("with unregisteredTopics 'allow' they pass, but filters overlapping registered topics without rights are refused", async () => {
      const p = await e.startProxy({ unregisteredTopics: 'allow' })
      const url = `mqtt://127.0.0.1:${p.address.port}`
      const c = await e.connect({ key: K.none, url })
      const box = inbox(c)
      assert.deepEqual(await subscribeCodes(c, 'az/unreg/#'), [1])
      assert.equal(await publishCode(c, 'az/unreg/x', 'via-proxy'), 0)
      await waitFor(() => box.has('az/unreg/x', 'via-proxy'), 5_000, 'unregistered delivery')
      assert.deepEqual(await subscribeCodes(c, '#'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/#'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/+/ok'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'az/pub/ok'), [ReasonCode.NotAuthorized])
      assert.equal(await publishCode(c, 'az/pub/ok', 'registered-no-right'), ReasonCode.NotAuthorized)
      assert.equal(await publishCode(c, 'az/wc/allowed/secret', 'registered-no-right'), ReasonCode.NotAuthorized)
      // A client with rights on every registered topic a filter overlaps may subscribe it.
      const w = await e.connect({ key: K.watcher, url })
      assert.deepEqual(await subscribeCodes(w, 'az/pub/+'), [1])
      assert.deepEqual(await subscribeCodes(w, '#'), [ReasonCode.NotAuthorized])
      // Nothing registered leaks through the allowed unregistered subscription.
      await direct('az/pub/no', 'registered')
      await direct('az/unreg/y', 'unregistered')
      await waitFor(() => box.has('az/unreg/y', 'unregistered'), 5_000, 'delivery')
      await sleep(200)
      assert.equal(box.messages.some((m) => m.topic.startsWith('az/pub')), false)
      c.end(true)
      w.end(true)
    })
  })

  // ---------------------------------------------------------------- delivery-side checks

  describe('defence in depth on deliveries', () => {
    test('a retained message does not reach a client without subscribe rights; it does reach one with them', async () => {
      const o = await e.connect({ key: 0 })
      assert.equal(await publishCode(o, 'az/ret/t', 'retained-1', { qos: 1, retain: true }), 0)
      const r1 = await e.connect({ key: K.r1 })
      const box1 = inbox(r1)
      assert.deepEqual(await subscribeCodes(r1, 'az/ret/t'), [1])
      await waitFor(() => box1.messages.some((m) => m.payload === 'retained-1' && m.retain), 5_000, 'retained delivery with rights')
      const r2 = await e.connect({ key: K.r2 })
      const box2 = inbox(r2)
      assert.deepEqual(await subscribeCodes(r2, 'az/ret/t'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(r2, 'az/ret/+'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(r2, 'az/ret/#'), [ReasonCode.NotAuthorized])
      await sleep(400)
      assert.deepEqual(box2.messages, [])
      o.end(true)
      r1.end(true)
      r2.end(true)
    })

    test('a subscriber whose right is revoked after subscribing stops receiving (live and retained)', async () => {
      const r1 = await e.connect({ key: K.r1 })
      const r3 = await e.connect({ key: K.r3 })
      const box1 = inbox(r1)
      const box3 = inbox(r3)
      assert.deepEqual(await subscribeCodes(r1, 'az/ret/t'), [1])
      assert.deepEqual(await subscribeCodes(r3, 'az/ret/t'), [1])
      await direct('az/ret/t', 'live-1')
      await waitFor(() => box3.has('az/ret/t', 'live-1') && box1.has('az/ret/t', 'live-1'), 5_000, 'delivery before revocation')

      await owner().revoke('az/ret/t', A.r3, SUB, 'e2e')
      await e.synced()
      await direct('az/ret/t', 'live-2', 1, true)
      await waitFor(() => box1.has('az/ret/t', 'live-2'), 5_000, 'sentinel')
      await sleep(300)
      assert.equal(box3.has('az/ret/t', 'live-2'), false, 'delivered after revocation')
      assert.deepEqual(await subscribeCodes(r3, 'az/ret/t'), [ReasonCode.NotAuthorized], 'resubscribing is refused')
      await sleep(300)
      assert.equal(box3.has('az/ret/t', 'live-2'), false, 'retained message delivered after revocation')
      await owner().allow('az/ret/t', A.r3, SUB, 0, 'e2e')
      r1.end(true)
      r3.end(true)
    })

    test('dropped QoS 1/2 deliveries are acknowledged to the broker: never redelivered to the resumed session', async () => {
      const decisions = decisionsOf()
      const clientId = `drop-${Math.random().toString(36).slice(2, 8)}`
      const persistent = { clean: false, properties: { sessionExpiryInterval: 600 } }
      const c = await e.connect({ key: K.drop, clientId, extra: persistent })
      const box = inbox(c)
      assert.deepEqual(await subscribeCodes(c, { 'az/drop/q1': { qos: 1 }, 'az/drop/q2': { qos: 2 } }), [1, 2])
      await direct('az/drop/q1', 'pre', 1)
      await waitFor(() => box.has('az/drop/q1', 'pre'), 5_000, 'delivery with rights')

      await owner().revoke('az/drop/q1', A.drop, SUB, 'e2e')
      await owner().revoke('az/drop/q2', A.drop, SUB, 'e2e')
      await e.synced()
      for (let i = 1; i <= 3; i++) await direct('az/drop/q1', `dropped-q1-${i}`, 1)
      for (let i = 1; i <= 3; i++) await direct('az/drop/q2', `dropped-q2-${i}`, 2)
      const denied = () => decisions.filter((d) => d.kind === 'deliver' && !d.allowed && d.address?.toLowerCase() === A.drop.toLowerCase())
      await waitFor(() => denied().length >= 6, 5_000, 'six deliveries dropped by the proxy')
      await sleep(300) // let the broker's PUBREL / our PUBCOMP for the QoS 2 ones complete
      assert.equal(box.messages.some((m) => m.payload.startsWith('dropped')), false)

      await owner().allow('az/drop/q1', A.drop, SUB, 0, 'e2e')
      await owner().allow('az/drop/q2', A.drop, SUB, 0, 'e2e')
      await e.synced()
      await c.endAsync() // normal DISCONNECT: the session (and anything still in flight) stays at the broker
      await direct('az/drop/q1', 'queued-while-offline', 1)

      const r = await rawConnect({ key: K.drop, clientId, clean: false, properties: { sessionExpiryInterval: 600 } })
      assert.equal(r.connack.reasonCode, 0)
      assert.equal(r.connack.sessionPresent, true, 'the persistent session was resumed')
      const queued = await r.expect((p) => p.cmd === 'publish' && p.payload.toString() === 'queued-while-offline', 5_000, 'queued message')
      r.send({ cmd: 'puback', messageId: (queued.packet as PublishPacket).messageId!, reasonCode: 0 })
      await sleep(500)
      const publishes = r.received.filter((x) => x.packet.cmd === 'publish').map((x) => (x.packet as PublishPacket).payload.toString())
      assert.deepEqual(publishes, ['queued-while-offline'], 'dropped deliveries were redelivered')
      assert.equal(r.received.some((x: { packet: Packet }) => x.packet.cmd === 'pubrel'), false, 'a QoS 2 exchange was left open at the broker')
      await direct('az/drop/q2', 'after', 2)
      await r.expect((p) => p.cmd === 'publish' && p.payload.toString() === 'after', 5_000, 'live delivery after resuming')
      r.end()
    })

    test('broker → client: deliveries to a client that offers Topic Aliases still name their topic and are still checked', async () => {
      const r = await rawConnect({ key: K.r1, properties: { topicAliasMaximum: 10 } })
      r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'az/ret/t', qos: 0 }] })
      const suback = await r.expect((p) => p.cmd === 'suback')
      assert.deepEqual((suback.packet as { granted: number[] }).granted, [0])
      for (let i = 0; i < 3; i++) await direct('az/ret/t', `named-${i}`, 0)
      await waitFor(() => r.received.filter((x) => x.packet.cmd === 'publish' && !(x.packet as PublishPacket).retain).length >= 3, 5_000, 'three deliveries')
      for (const x of r.received.filter((y) => y.packet.cmd === 'publish')) {
        const p = x.packet as PublishPacket
        assert.equal(p.topic, 'az/ret/t', 'a delivery relied on a broker → client alias')
        assert.equal(p.properties?.topicAlias, undefined)
      }
      r.end()
    })

    test('session takeover: another identity using the same client id gets a fresh session, not the queued messages', async () => {
      const clientId = `shared-id/${Math.random().toString(36).slice(2, 8)}`
      const persistent = { clean: false, properties: { sessionExpiryInterval: 600 } }
      const x = await e.connect({ key: K.r1, clientId, extra: persistent })
      assert.deepEqual(await subscribeCodes(x, 'az/ret/t', 1), [1])
      await x.endAsync()
      await direct('az/ret/t', 'queued-for-r1', 1)

      // K.r3 holds the same subscribe right, so only the client-id binding keeps it out of r1's session.
      const y = await rawConnect({ key: K.r3, clientId, clean: false, properties: { sessionExpiryInterval: 600 } })
      assert.equal(y.connack.reasonCode, 0)
      assert.equal(y.connack.sessionPresent, false, "another identity resumed r1's session")
      await sleep(400)
      assert.equal(y.received.some((p) => p.packet.cmd === 'publish'), false, "another identity received r1's queued messages")
      y.end()

      const back = await rawConnect({ key: K.r1, clientId, clean: false, properties: { sessionExpiryInterval: 600 } })
      assert.equal(back.connack.sessionPresent, true)
      await back.expect((p) => p.cmd === 'publish' && p.payload.toString() === 'queued-for-r1', 5_000, 'queued message for the owner of the session')
      back.end()
    })
  })

  // ---------------------------------------------------------------- $SYS (last: it registers '#', which overlaps everything)

  describe('$SYS', () => {
    test('a grant on # does not allow subscribing $SYS/#, and $SYS deliveries stop when only # is left', async () => {
      const o = owner()
      await o.addTopic(topicArgs('#'))
      await o.addTopic(topicArgs('$SYS/#'))
      await o.allow('#', A.sys, SUB, 0, 'e2e')
      await e.synced()
      try {
        const y = await e.connect({ key: 0 }) // owner of $SYS/#: the reference receiver
        const boxY = inbox(y)
        assert.deepEqual(await subscribeCodes(y, '$SYS/#', 0), [0])
        const x = await e.connect({ key: K.sys })
        const boxX = inbox(x)
        const sysX = () => boxX.messages.filter((m) => m.topic.startsWith('$')).length
        assert.deepEqual(await subscribeCodes(x, '$SYS/#', 0), [ReasonCode.NotAuthorized])
        assert.deepEqual(await subscribeCodes(x, '$SYS/broker/uptime', 0), [ReasonCode.NotAuthorized])
        assert.deepEqual(await subscribeCodes(x, '$share/g/$SYS/#', 0), [ReasonCode.NotAuthorized])
        assert.deepEqual(await subscribeCodes(x, '#', 0), [0])
        assert.deepEqual(await subscribeCodes(x, '+/broker/uptime', 0), [0])
        await direct('az/any/thing', 'hash-grant')
        await waitFor(() => boxX.has('az/any/thing', 'hash-grant'), 5_000, '# grant delivers ordinary topics')
        const seen = boxY.messages.length
        await waitFor(() => boxY.messages.filter((m) => m.topic === '$SYS/broker/uptime').length >= 2 && boxY.messages.length > seen + 1, 5_000, 'two $SYS rounds at the reference receiver')
        assert.equal(sysX(), 0, 'a $SYS message reached a client with a grant on # only')

        // Counterpart: with a grant on $SYS/# the client gets $SYS messages...
        await o.allow('$SYS/#', A.sys, SUB, 0, 'e2e')
        await e.synced()
        assert.deepEqual(await subscribeCodes(x, '$SYS/#', 0), [0])
        await waitFor(() => sysX() > 0, 5_000, '$SYS delivery with a grant on $SYS/#')
        // ...and once it is revoked (# still granted), $SYS deliveries on the live subscription stop.
        await o.revoke('$SYS/#', A.sys, SUB, 'e2e')
        await e.synced()
        const before = sysX()
        const uptimeY = () => boxY.messages.filter((m) => m.topic === '$SYS/broker/uptime').length
        const u0 = uptimeY()
        await waitFor(() => uptimeY() >= u0 + 2, 5_000, 'two more $SYS rounds')
        assert.equal(sysX(), before, '$SYS delivered to a client whose only remaining grant is #')
        x.end(true)
        y.end(true)
      } finally {
        await o.removeTopic('#', 'e2e')
        await o.removeTopic('$SYS/#', 'e2e')
      }
    })
  })
})
