/**
 * Policy changes on OPEN sessions: every change is a real transaction on anvil, picked up by the proxy's
 * policy sync (poll interval 100 ms), and must take effect on connections that are already open, without
 * reconnecting: revoke, allow, setCountries (clients behind a PROXY-protocol listener), removeTopic,
 * transferTopic, a grant that expires, and a paid join. The time from the transaction receipt to the first
 * packet that shows the new policy is measured and printed (not asserted beyond a generous timeout).
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import { encodeCountries } from '../../src/lib/chain/codec.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import type { DecisionEvent } from '../../src/lib/policy/types.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import { ReasonCode } from '../../src/lib/mqtt/reason-codes.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { addressOfKey, freshDeviceKey, inbox, publishCode, subscribeCodes } from '../helpers/mqtt.js'
import { proxyProtocolRelay, type ProxyProtocolRelay } from '../helpers/taps.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { PUB, SUB, BOTH, topicArgs } from '../helpers/topics.js'

/** Generous bound for "one block + the poll interval"; the measured value is printed. */
const EFFECT_TIMEOUT_MS = 3_000
const GWEI = 10n ** 9n

const K = { p: freshDeviceKey(), s: freshDeviceKey(), geo: freshDeviceKey() }
const A = { p: addressOfKey(K.p), s: addressOfKey(K.s), geo: addressOfKey(K.geo) }

const latencies: string[] = []
function report(t: TestContext, what: string, ms: number): void {
  const line = `${what}: ${ms} ms`
  latencies.push(line)
  t.diagnostic(line)
  console.log(`# latency ${line}`)
}

/** Runs `probe` until it answers true; the ms from `t0` to that answer. Fails after EFFECT_TIMEOUT_MS. */
async function probeUntil(t0: number, what: string, probe: () => Promise<boolean>, timeoutMs = EFFECT_TIMEOUT_MS): Promise<number> {
  for (;;) {
    if (await probe()) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: no effect within ${timeoutMs} ms of the receipt`)
    await sleep(5)
  }
}

describe('live policy changes on open sessions', () => {
  let e: E2E
  let backend: MqttClient
  let pp: ProxyHandle
  let gb: ProxyProtocolRelay
  let us: ProxyProtocolRelay
  const decisions: { at: number; d: DecisionEvent }[] = []

  const owner = () => e.chain.as(0)
  const direct = (topic: string, payload: string) => backend.publishAsync(topic, payload, { qos: 1 })
  /** Publishes to the broker every 10 ms until stopped (a steady stream of deliveries). */
  const stream = (topic: string) => {
    let n = 0
    const timer = setInterval(() => void backend.publishAsync(topic, `stream-${n++}`, { qos: 0 }), 10)
    return () => clearInterval(timer)
  }

  before(async () => {
    e = await e2eFixture({
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 }, pollIntervalMs: 100 },
      setup: async (chain) => {
        const o = chain.as(0)
        for (const name of ['lv/rev', 'lv/rm']) {
          await o.addTopic(topicArgs(name))
          await o.allow(name, A.p, PUB, 0, 'e2e')
          await o.allow(name, A.s, SUB, 0, 'e2e')
        }
        await o.addTopic(topicArgs('lv/allow'))
        await o.addTopic(topicArgs('lv/exp'))
        await o.addTopic(topicArgs('lv/geo'))
        await o.allow('lv/geo', A.geo, BOTH, 0, 'e2e')
        await o.addTopic(topicArgs('lv/join', { pubFee: 1000n * GWEI, subFee: 2000n * GWEI, open: true }))
        await chain.as(1).addTopic(topicArgs('lv/xfer'))
      },
    })
    e.proxy.on('decision', (d: DecisionEvent) => decisions.push({ at: Date.now(), d }))
    pp = await e.startProxy({ listeners: [{ listen: '127.0.0.1:0', proxyProtocol: true, trustedProxies: ['127.0.0.1'] }] })
    gb = await proxyProtocolRelay({ port: pp.address.port }, '81.2.69.142', 1)
    us = await proxyProtocolRelay({ port: pp.address.port }, '8.8.8.8', 2)
    backend = await mqtt.connectAsync(e.mosquitto.url, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'backend-live' })
  })
  after(async () => {
    if (latencies.length) console.log(`# latency summary\n${latencies.map((l) => `#   ${l}`).join('\n')}`)
    backend?.end(true)
    await gb?.close()
    await us?.close()
    await e?.close()
  })

  test('revoke stops publishes (PUBACK 0x87) and deliveries on open sessions; allowing again resumes them without resubscribing', async (t) => {
    const p = await e.connect({ key: K.p })
    const s = await e.connect({ key: K.s })
    const o = await e.connect({ key: 0 })
    const boxS = inbox(s)
    const boxO = inbox(o)
    assert.deepEqual(await subscribeCodes(s, 'lv/rev'), [1])
    assert.deepEqual(await subscribeCodes(o, 'lv/rev'), [1])
    assert.equal(await publishCode(p, 'lv/rev', 'before'), 0)
    await waitFor(() => boxS.has('lv/rev', 'before'), 5_000, 'delivery before revocation')

    await owner().revoke('lv/rev', A.p, PUB, 'e2e')
    let t0 = Date.now()
    report(t, 'revoke publish → first PUBACK 0x87 (from tx receipt)', await probeUntil(t0, 'revoke publish', async () => (await publishCode(p, 'lv/rev', 'probe')) === ReasonCode.NotAuthorized))
    assert.equal(p.connected, true, 'the publisher stays connected')

    const stop = stream('lv/rev')
    try {
      await waitFor(() => boxS.messages.some((m) => m.payload.startsWith('stream-')), 5_000, 'stream flowing')
      await owner().revoke('lv/rev', A.s, SUB, 'e2e')
      t0 = Date.now()
      const denied = () => decisions.find((x) => x.at >= t0 && x.d.kind === 'deliver' && !x.d.allowed && x.d.address?.toLowerCase() === A.s.toLowerCase() && x.d.topic === 'lv/rev')
      await waitFor(() => denied() !== undefined, EFFECT_TIMEOUT_MS, 'first refused delivery')
      report(t, 'revoke subscribe → first dropped delivery (from tx receipt)', denied()!.at - t0)
    } finally {
      stop()
    }
    await e.synced()
    await sleep(100)
    const seen = boxS.messages.length
    await direct('lv/rev', 'after-revoke')
    await waitFor(() => boxO.has('lv/rev', 'after-revoke'), 5_000, 'sentinel')
    await sleep(300)
    assert.equal(boxS.messages.length, seen, 'delivered after revocation')
    assert.deepEqual(await subscribeCodes(s, 'lv/rev'), [ReasonCode.NotAuthorized], 'a new subscription is refused')

    // Allowed again: the subscription the broker kept delivers again, no resubscribe, no reconnect.
    await owner().allow('lv/rev', A.s, SUB, 0, 'e2e')
    t0 = Date.now()
    const stop2 = stream('lv/rev')
    try {
      const firstAfter = () => boxS.messages.length > seen
      await waitFor(firstAfter, EFFECT_TIMEOUT_MS, 'deliveries resumed')
      report(t, 're-allow subscribe → first delivery (from tx receipt)', Date.now() - t0)
    } finally {
      stop2()
    }
    p.end(true)
    s.end(true)
    o.end(true)
  })

  test('allow makes publish and subscribe work on open sessions without reconnecting', async (t) => {
    const p = await e.connect({ key: K.p })
    const s = await e.connect({ key: K.s })
    const boxS = inbox(s)
    assert.equal(await publishCode(p, 'lv/allow', 'refused'), ReasonCode.NotAuthorized)
    assert.deepEqual(await subscribeCodes(s, 'lv/allow'), [ReasonCode.NotAuthorized])

    await owner().allow('lv/allow', A.p, PUB, 0, 'e2e')
    let t0 = Date.now()
    report(t, 'allow publish → first accepted PUBACK (from tx receipt)', await probeUntil(t0, 'allow publish', async () => (await publishCode(p, 'lv/allow', 'probe')) === 0))
    await owner().allow('lv/allow', A.s, SUB, 0, 'e2e')
    t0 = Date.now()
    report(t, 'allow subscribe → first granted SUBACK (from tx receipt)', await probeUntil(t0, 'allow subscribe', async () => (await subscribeCodes(s, 'lv/allow'))[0] === 1))
    assert.equal(await publishCode(p, 'lv/allow', 'now-allowed'), 0)
    await waitFor(() => boxS.has('lv/allow', 'now-allowed'), 5_000, 'delivery on the same connections')
    p.end(true)
    s.end(true)
  })

  test('setCountries takes effect on open sessions behind a PROXY-protocol listener (GB stays, US is cut off, then restored)', async (t) => {
    const g = await e.connect({ key: K.geo, url: gb.url })
    const u = await e.connect({ key: K.geo, url: us.url })
    const boxG = inbox(g)
    const boxU = inbox(u)
    assert.deepEqual(await subscribeCodes(g, 'lv/geo'), [1])
    assert.deepEqual(await subscribeCodes(u, 'lv/geo'), [1])
    assert.equal(await publishCode(u, 'lv/geo', 'from-us'), 0)
    assert.equal(await publishCode(g, 'lv/geo', 'from-gb'), 0)
    await waitFor(() => boxU.has('lv/geo', 'from-gb') && boxG.has('lv/geo', 'from-us'), 5_000, 'both countries before the change')

    await owner().setCountries('lv/geo', encodeCountries(['GB']), 'e2e')
    let t0 = Date.now()
    report(t, 'setCountries GB → first PUBACK 0x87 from US (from tx receipt)', await probeUntil(t0, 'setCountries', async () => (await publishCode(u, 'lv/geo', 'probe-us')) === ReasonCode.NotAuthorized))
    assert.equal(await publishCode(g, 'lv/geo', 'gb-still'), 0)
    await e.synced()
    const seenU = boxU.messages.length
    await direct('lv/geo', 'gb-only')
    await waitFor(() => boxG.has('lv/geo', 'gb-only'), 5_000, 'GB delivery')
    await sleep(300)
    assert.equal(boxU.messages.length, seenU, 'delivered to US after the restriction')
    assert.deepEqual(await subscribeCodes(u, 'lv/geo'), [ReasonCode.NotAuthorized])

    await owner().setCountries('lv/geo', '0x', 'e2e')
    t0 = Date.now()
    report(t, 'setCountries (none) → first accepted PUBACK from US (from tx receipt)', await probeUntil(t0, 'clear countries', async () => (await publishCode(u, 'lv/geo', 'probe-us-2')) === 0))
    await direct('lv/geo', 'anywhere-again')
    await waitFor(() => boxU.has('lv/geo', 'anywhere-again'), 5_000, 'US delivery restored')
    g.end(true)
    u.end(true)
  })

  test('removeTopic removes every right at once (owner included); registering it again does not bring grants back', async (t) => {
    const p = await e.connect({ key: K.p })
    const s = await e.connect({ key: K.s })
    const o = await e.connect({ key: 0 })
    const boxS = inbox(s)
    assert.deepEqual(await subscribeCodes(s, ['lv/rm', 'lv/rev']), [1, 1])
    assert.equal(await publishCode(p, 'lv/rm', 'before'), 0)
    await waitFor(() => boxS.has('lv/rm', 'before'), 5_000, 'delivery before removal')

    await owner().removeTopic('lv/rm', 'e2e')
    const t0 = Date.now()
    report(t, 'removeTopic → first PUBACK 0x87 (from tx receipt)', await probeUntil(t0, 'removeTopic', async () => (await publishCode(p, 'lv/rm', 'probe')) === ReasonCode.NotAuthorized))
    await e.synced()
    assert.equal(await publishCode(o, 'lv/rm', 'owner-after-removal'), ReasonCode.NotAuthorized, 'the former owner lost it too')
    await direct('lv/rm', 'after-removal')
    await direct('lv/rev', 'sentinel')
    await waitFor(() => boxS.has('lv/rev', 'sentinel'), 5_000, 'sentinel')
    await sleep(300)
    assert.equal(boxS.has('lv/rm', 'after-removal'), false, 'delivered after removal')

    await owner().addTopic(topicArgs('lv/rm'))
    await e.synced()
    assert.equal(await publishCode(o, 'lv/rm', 'owner-again'), 0)
    assert.equal(await publishCode(p, 'lv/rm', 'old-grant'), ReasonCode.NotAuthorized, 'grants of the old generation came back')
    p.end(true)
    s.end(true)
    o.end(true)
  })

  test('transferTopic moves the owner rights on open sessions', async (t) => {
    const a = await e.connect({ key: 1 })
    const b = await e.connect({ key: 2 })
    const boxA = inbox(a)
    const boxB = inbox(b)
    assert.deepEqual(await subscribeCodes(a, 'lv/xfer'), [1])
    assert.deepEqual(await subscribeCodes(b, 'lv/xfer'), [ReasonCode.NotAuthorized])
    assert.equal(await publishCode(a, 'lv/xfer', 'old-owner'), 0)
    assert.equal(await publishCode(b, 'lv/xfer', 'new-owner-early'), ReasonCode.NotAuthorized)

    await e.chain.as(1).transferTopic('lv/xfer', e.address(2), 'e2e')
    const t0 = Date.now()
    report(t, 'transferTopic → old owner refused (from tx receipt)', await probeUntil(t0, 'transfer (old owner)', async () => (await publishCode(a, 'lv/xfer', 'probe-a')) === ReasonCode.NotAuthorized))
    report(t, 'transferTopic → new owner accepted (from tx receipt)', await probeUntil(t0, 'transfer (new owner)', async () => (await publishCode(b, 'lv/xfer', 'probe-b')) === 0))
    assert.deepEqual(await subscribeCodes(b, 'lv/xfer'), [1])
    const seenA = boxA.messages.length
    await direct('lv/xfer', 'after-transfer')
    await waitFor(() => boxB.has('lv/xfer', 'after-transfer'), 5_000, 'delivery to the new owner')
    await sleep(300)
    assert.equal(boxA.messages.length, seenA, 'delivered to the former owner')
    a.end(true)
    b.end(true)
  })

  test('a grant with an expiry stops working when it lapses (publish and delivery), with no transaction', async (t) => {
    const expiry = Math.floor(Date.now() / 1000) + 4
    await owner().allow('lv/exp', A.p, PUB, expiry, 'e2e')
    await owner().allow('lv/exp', A.s, SUB, expiry, 'e2e')
    await e.synced()
    const p = await e.connect({ key: K.p })
    const s = await e.connect({ key: K.s })
    const o = await e.connect({ key: 0 })
    const boxS = inbox(s)
    const boxO = inbox(o)
    assert.deepEqual(await subscribeCodes(s, 'lv/exp'), [1])
    assert.deepEqual(await subscribeCodes(o, 'lv/exp'), [1])
    assert.equal(await publishCode(p, 'lv/exp', 'before-expiry'), 0)
    await waitFor(() => boxS.has('lv/exp', 'before-expiry'), 5_000, 'delivery before expiry')

    let lastAllowedAt = 0
    const refusedAfter = await probeUntil(
      Date.now(),
      'expiry',
      async () => {
        const code = await publishCode(p, 'lv/exp', 'probe')
        if (code === 0) lastAllowedAt = Date.now()
        return code === ReasonCode.NotAuthorized
      },
      10_000,
    )
    const refusedAt = Date.now()
    assert.ok(refusedAfter > 0)
    assert.ok(lastAllowedAt > 0 && lastAllowedAt < expiry * 1000 + 50, 'allowed until the expiry')
    assert.ok(refusedAt >= expiry * 1000 - 50, `refused ${expiry * 1000 - refusedAt} ms before the expiry`)
    report(t, 'grant expiry → first PUBACK 0x87, after the expiry instant', refusedAt - expiry * 1000)

    const seenS = boxS.messages.length
    await direct('lv/exp', 'after-expiry')
    await waitFor(() => boxO.has('lv/exp', 'after-expiry'), 5_000, 'sentinel')
    await sleep(300)
    assert.equal(boxS.messages.length, seenS, 'delivered after the grant lapsed')
    p.end(true)
    s.end(true)
    o.end(true)
  })

  test('join with payment grants rights live', async (t) => {
    const j = await e.connect({ key: 3 })
    const boxJ = inbox(j)
    assert.equal(await publishCode(j, 'lv/join', 'before-join'), ReasonCode.NotAuthorized)
    assert.deepEqual(await subscribeCodes(j, 'lv/join'), [ReasonCode.NotAuthorized])

    const receipt = await e.chain.as(3).join('lv/join', BOTH, 1, 3000n * GWEI)
    assert.ok(receipt.events.some((ev) => ev.name === 'Joined'))
    const t0 = Date.now()
    report(t, 'join → first accepted PUBACK (from tx receipt)', await probeUntil(t0, 'join', async () => (await publishCode(j, 'lv/join', 'probe')) === 0))
    assert.deepEqual(await subscribeCodes(j, 'lv/join'), [1])
    assert.equal(await publishCode(j, 'lv/join', 'member'), 0)
    await waitFor(() => boxJ.has('lv/join', 'member'), 5_000, 'delivery to the new member')
    j.end(true)
  })
})
