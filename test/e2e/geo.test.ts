/**
 * Country limits and client addresses behind a load balancer, end to end: a proxy listener with PROXY
 * protocol (v1 and v2, IPv4 and IPv6 sources) fed by a local TCP relay that plays the load balancer, a topic
 * limited to GB (allowed from 81.2.69.142, refused from 8.8.8.8 for publish, subscribe and delivery), topics
 * without a country list, PROXY headers from untrusted peers or on listeners without PROXY protocol, and bans
 * keyed by the PROXY source address rather than the relay's 127.0.0.1.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import { encodeCountries } from '../../src/lib/chain/codec.js'
import { countryOf } from '../../src/lib/geo/lookup.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import { encodeProxyV1, encodeProxyV2 } from '../../src/lib/proxy/proxy-protocol.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import { ReasonCode } from '../../src/lib/mqtt/reason-codes.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { addressOfKey, freshDeviceKey, inbox, publishCode, subscribeCodes } from '../helpers/mqtt.js'
import { rawMqttConnect } from '../helpers/mqtt-raw.js'
import { proxyProtocolRelay, type ProxyProtocolRelay } from '../helpers/taps.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { BOTH, topicArgs } from '../helpers/topics.js'

const GB4 = '81.2.69.142'
const US4 = '8.8.8.8'
const GB6 = '2a02:c7f::1'
const US6 = '2001:4860:4860::8888'
const PP_LISTENER = { listen: '127.0.0.1:0', proxyProtocol: true, trustedProxies: ['127.0.0.1'] }

const KEY = freshDeviceKey()
const ADDR = addressOfKey(KEY)

describe('geo: countries and addresses behind PROXY protocol', () => {
  let e: E2E
  let pp: ProxyHandle
  let backend: MqttClient
  const relays: ProxyProtocolRelay[] = []
  const opened: { ip: string; clientId?: string }[] = []
  const relay = async (port: number, source: string, version: 1 | 2) => {
    const r = await proxyProtocolRelay({ port }, source, version)
    relays.push(r)
    return r
  }
  const direct = (topic: string, payload: string) => backend.publishAsync(topic, payload, { qos: 1 })
  let via: Record<'gb4v1' | 'gb4v2' | 'gb6v2' | 'gb6v1' | 'us4v1' | 'us4v2' | 'us6v1', ProxyProtocolRelay>

  before(async () => {
    e = await e2eFixture({
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 } },
      setup: async (chain) => {
        const o = chain.as(0)
        for (const [name, countries] of [['geo/gb', ['GB']], ['geo/any', []], ['geo/live', []]] as const) {
          await o.addTopic(topicArgs(name, { countries }))
          await o.allow(name, ADDR, BOTH, 0, 'e2e')
        }
      },
    })
    pp = await e.startProxy({ listeners: [PP_LISTENER] })
    pp.on('session-open', (ev) => opened.push(ev))
    via = {
      gb4v1: await relay(pp.address.port, GB4, 1),
      gb4v2: await relay(pp.address.port, GB4, 2),
      gb6v2: await relay(pp.address.port, GB6, 2),
      gb6v1: await relay(pp.address.port, GB6, 1),
      us4v1: await relay(pp.address.port, US4, 1),
      us4v2: await relay(pp.address.port, US4, 2),
      us6v1: await relay(pp.address.port, US6, 1),
    }
    backend = await mqtt.connectAsync(e.mosquitto.url, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'backend-geo' })
  })
  after(async () => {
    backend?.end(true)
    for (const r of relays) await r.close()
    await e?.close()
  })

  test('the bundled GeoIP data places the test addresses', () => {
    assert.equal(countryOf(GB4), 'GB')
    assert.equal(countryOf(US4), 'US')
    assert.equal(countryOf(GB6), 'GB')
    assert.equal(countryOf(US6), 'US')
    assert.equal(countryOf('127.0.0.1'), null)
  })

  for (const [name, source] of [['gb4v1', GB4], ['gb4v2', GB4], ['gb6v2', GB6], ['gb6v1', GB6]] as const) {
    test(`GB-only topic from ${source} (PROXY ${name.slice(-2)}): publish, subscribe and delivery allowed; the session carries the source address`, async () => {
      const clientId = `gb-${name}-${Math.random().toString(36).slice(2, 6)}`
      const c = await e.connect({ key: KEY, url: via[name].url, clientId })
      const box = inbox(c)
      assert.equal(opened.find((o) => o.clientId === clientId)?.ip, source)
      assert.deepEqual(await subscribeCodes(c, 'geo/gb'), [1])
      assert.equal(await publishCode(c, 'geo/gb', `hello-${name}`), 0)
      await waitFor(() => box.has('geo/gb', `hello-${name}`), 5_000, 'delivery from GB')
      c.end(true)
    })
  }

  for (const [name, source] of [['us4v1', US4], ['us4v2', US4], ['us6v1', US6]] as const) {
    test(`GB-only topic from ${source} (PROXY ${name.slice(-2)}): publish and subscribe refused; geo/any allowed on the same session`, async () => {
      const clientId = `us-${name}-${Math.random().toString(36).slice(2, 6)}`
      const c = await e.connect({ key: KEY, url: via[name].url, clientId })
      const box = inbox(c)
      assert.equal(opened.find((o) => o.clientId === clientId)?.ip, source)
      assert.equal(await publishCode(c, 'geo/gb', 'from-us'), ReasonCode.NotAuthorized)
      assert.deepEqual(await subscribeCodes(c, 'geo/gb'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'geo/+'), [ReasonCode.NotAuthorized])
      assert.deepEqual(await subscribeCodes(c, 'geo/any'), [1])
      assert.equal(await publishCode(c, 'geo/any', `us-${name}`), 0)
      await waitFor(() => box.has('geo/any', `us-${name}`), 5_000, 'geo/any from US')
      await direct('geo/gb', 'gb-backend')
      await sleep(200)
      assert.equal(box.has('geo/gb'), false)
      c.end(true)
    })
  }

  test('deliveries of a GB-only topic are refused to a US session subscribed before the restriction', async () => {
    const g = await e.connect({ key: KEY, url: via.gb4v1.url })
    const u = await e.connect({ key: KEY, url: via.us4v1.url })
    const boxG = inbox(g)
    const boxU = inbox(u)
    assert.deepEqual(await subscribeCodes(g, 'geo/live'), [1])
    assert.deepEqual(await subscribeCodes(u, 'geo/live'), [1])
    await direct('geo/live', 'unrestricted')
    await waitFor(() => boxG.has('geo/live', 'unrestricted') && boxU.has('geo/live', 'unrestricted'), 5_000, 'both receive while unrestricted')

    await e.chain.as(0).setCountries('geo/live', encodeCountries(['GB']), 'e2e')
    await e.synced()
    await direct('geo/live', 'gb-only')
    await waitFor(() => boxG.has('geo/live', 'gb-only'), 5_000, 'GB delivery')
    await sleep(300)
    assert.equal(boxU.has('geo/live', 'gb-only'), false, 'delivered to a US session')
    await e.chain.as(0).setCountries('geo/live', '0x', 'e2e')
    await e.synced()
    await direct('geo/live', 'anywhere')
    await waitFor(() => boxU.has('geo/live', 'anywhere'), 5_000, 'US delivery once unrestricted again')
    g.end(true)
    u.end(true)
  })

  test('no country list = anywhere (GB, US, IPv6, and a loopback client with no country); a country list needs a known country', async () => {
    const clients = [
      await e.connect({ key: KEY, url: via.gb4v1.url }),
      await e.connect({ key: KEY, url: via.us4v2.url }),
      await e.connect({ key: KEY, url: via.us6v1.url }),
      await e.connect({ key: KEY }), // straight to the fixture proxy from 127.0.0.1
    ]
    for (const [i, c] of clients.entries()) {
      const box = inbox(c)
      assert.deepEqual(await subscribeCodes(c, 'geo/any'), [1])
      assert.equal(await publishCode(c, 'geo/any', `any-${i}`), 0)
      await waitFor(() => box.has('geo/any', `any-${i}`), 5_000, `geo/any via client ${i}`)
    }
    const loopback = clients[3]!
    assert.equal(await publishCode(loopback, 'geo/gb', 'no-country'), ReasonCode.NotAuthorized)
    assert.deepEqual(await subscribeCodes(loopback, 'geo/gb'), [ReasonCode.NotAuthorized])
    for (const c of clients) c.end(true)
  })

  test('a PROXY header from an untrusted peer is refused: the connection is closed', async () => {
    const strict = await e.startProxy({ listeners: [{ listen: '127.0.0.1:0', proxyProtocol: true, trustedProxies: ['10.0.0.0/8'] }] })
    const untrusted = await relay(strict.address.port, GB4, 1)
    await assert.rejects(e.connect({ key: KEY, url: untrusted.url }), (err: { code?: unknown }) => err.code === 'closed' || err.code === 'ECONNRESET')
    for (const header of [encodeProxyV1({ address: GB4, port: 40000 }, { address: '127.0.0.1', port: strict.address.port }), encodeProxyV2({ address: GB4, port: 40000 }, { address: '127.0.0.1', port: strict.address.port })]) {
      await assert.rejects(rawMqttConnect({ port: strict.address.port, key: KEY, chain: e.chain, prefix: header }), (err: { code?: unknown }) => err.code === 'closed')
    }
    assert.equal(strict.sessionCount(), 0)
    // Counterpart: the same relay in front of a listener that trusts 127.0.0.1 works.
    const ok = await e.connect({ key: KEY, url: via.gb4v1.url })
    assert.equal(await publishCode(ok, 'geo/gb', 'trusted'), 0)
    ok.end(true)
  })

  test('without proxyProtocol a PROXY header is a malformed MQTT packet: closed without CONNACK', async () => {
    const plainPort = e.proxy.address.port
    const badRelay = await relay(plainPort, GB4, 1)
    await assert.rejects(e.connect({ key: KEY, url: badRelay.url }), (err: { code?: unknown }) => err.code === 'closed' || err.code === 'ECONNRESET')
    for (const header of [encodeProxyV1({ address: GB4, port: 40000 }, { address: '127.0.0.1', port: plainPort }), encodeProxyV2({ address: GB4, port: 40000 }, { address: '127.0.0.1', port: plainPort })]) {
      await assert.rejects(rawMqttConnect({ port: plainPort, key: KEY, chain: e.chain, prefix: header }), (err: { code?: unknown }) => err.code === 'closed')
    }
    // Counterpart: plain MQTT on the same listener works (and from 127.0.0.1 it has no country).
    const ok = await e.connect({ key: KEY })
    assert.equal(await publishCode(ok, 'geo/any', 'plain'), 0)
    ok.end(true)
    // ...and a PROXY listener without a header refuses plain MQTT the same way.
    await assert.rejects(rawMqttConnect({ port: pp.address.port, key: KEY, chain: e.chain }), (err: { code?: unknown }) => err.code === 'closed')
  })

  test('bans use the PROXY source address: the banned source is refused and its session ended; another source through the same relay host still connects', async () => {
    const bp = await e.startProxy({ listeners: [PP_LISTENER], bans: { ...DEFAULTS.bans, threshold: 2, windowMs: 60_000, durationMs: 60_000 } })
    const bans: { subject: string; ip?: string }[] = []
    bp.on('ban', (ev) => bans.push(ev))
    const bad = await relay(bp.address.port, US4, 1)
    const good = await relay(bp.address.port, GB4, 2)

    // A legitimate session from the soon-banned source, and one from another source.
    const victim = await rawMqttConnect({ port: bad.port, key: KEY, chain: e.chain })
    assert.equal(victim.connack.reasonCode, 0)
    const bystander = await e.connect({ key: freshDeviceKey(), url: good.url })

    for (let i = 0; i < 2; i++) {
      const r = await rawMqttConnect({ port: bad.port, key: freshDeviceKey(), chain: e.chain, noCredential: true })
      assert.ok((r.connack.reasonCode ?? 0) >= 0x80, 'a CONNECT without credential is refused')
      r.end()
    }
    await waitFor(() => bans.some((b) => b.ip === US4), 5_000, `ban of ${US4}`)
    assert.equal(bans.some((b) => b.ip === '127.0.0.1' || b.subject === '127.0.0.1'), false, 'the relay address was banned')
    await victim.whenClosed()
    assert.ok([...victim.received.map((x) => x.bytes), ...victim.malformed].some((b) => b[0] === 0xe0), 'the banned session was told with a DISCONNECT')

    await assert.rejects(e.connect({ key: KEY, url: bad.url }), (err: { code?: unknown }) => err.code === ReasonCode.Banned)
    const other = await e.connect({ key: KEY, url: good.url })
    assert.equal(await publishCode(other, 'geo/gb', 'not-banned'), 0)
    assert.equal(bystander.connected, true, 'a session from another source was ended')
    other.end(true)
    bystander.end(true)
  })

  test(
    'a v5 session ended because its source was banned gets a DISCONNECT with a reason code valid for DISCONNECT',
    async () => {
      const bp = await e.startProxy({ listeners: [PP_LISTENER], bans: { ...DEFAULTS.bans, threshold: 1, windowMs: 60_000, durationMs: 60_000 } })
      const src = '81.2.69.1'
      const r = await relay(bp.address.port, src, 1)
      const victim = await e.connect({ key: KEY, url: r.url })
      const errors: Error[] = []
      let reason: number | undefined
      let closed = false
      victim.on('error', (err) => errors.push(err))
      victim.on('disconnect', (p) => (reason = p.reasonCode))
      victim.on('close', () => (closed = true))
      const bad = await rawMqttConnect({ port: r.port, key: freshDeviceKey(), chain: e.chain, noCredential: true })
      bad.end()
      await waitFor(() => closed, 5_000, 'banned session ended')
      assert.deepEqual(errors.map((x) => x.message), [], 'the client saw a malformed packet')
      assert.ok(reason !== undefined && reason >= 0x80, `DISCONNECT reason ${reason}`)
    },
  )
})
