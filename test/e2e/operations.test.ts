/**
 * Operating the proxy: the Prometheus endpoint, graceful shutdown, library events, a chain outage in the
 * middle of live sessions, and fail-closed / fail-open before the first policy sync.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { JsonRpcProvider } from 'ethers'
import { FlyTrapClient } from '../../src/lib/chain/client.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import { startProxy, type ProxyHandle } from '../../src/lib/proxy/server.js'
import type { DecisionEvent } from '../../src/lib/policy/types.js'
import { e2eFixture, proxyOptions, type E2E } from '../helpers/stack.js'
import { connectClient, inbox, publish, subscribe } from '../helpers/mqtt.js'
import { waitFor } from '../helpers/wait.js'
import { BOTH, SUB, registerTopics } from '../helpers/topics.js'

const TOPIC = 'sensors/temp'

/** Parses the text exposition format into "name{labels}" → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

/** A JSON-RPC relay to `target` that holds every request until open() is called. */
async function gatedRpc(target: string): Promise<{ url: string; open: () => void; close: () => Promise<void> }> {
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      await gate
      try {
        const r = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) })
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(Buffer.from(await r.arrayBuffer()))
      } catch {
        res.writeHead(502).end()
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r())
        server.closeAllConnections()
      }),
  }
}

describe('operations: metrics, shutdown, events, chain outage, fail closed', () => {
  let e: E2E
  const own: ProxyHandle[] = []

  before(async () => {
    e = await e2eFixture({
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 } },
      setup: async (chain) => {
        const owner = chain.as(0)
        await registerTopics(owner, [TOPIC], { [chain.wallet(1).address]: BOTH, [chain.wallet(2).address]: SUB })
      },
    })
  })
  after(async () => {
    for (const p of own) await p.close({ graceMs: 200 })
    await e?.close()
  })

  test('GET /metrics: decisions by kind/outcome/reason, open connections, policy synced and block', async () => {
    const p = await e.startProxy({ metrics: '127.0.0.1:0' })
    assert.ok(p.metricsAddress && p.metricsAddress.port > 0)
    const url = `mqtt://127.0.0.1:${p.address.port}`
    const sub1 = await e.connect({ key: 1, url })
    const pub1 = await e.connect({ key: 1, url })
    const reader = await e.connect({ key: 2, url })
    await assert.rejects(e.connect({ key: 1, url, expiresIn: -60 }), (err: { code?: number }) => err.code === 0x86)
    await assert.rejects(e.connect({ key: 1, url, transport: 'none' }), (err: { code?: number }) => err.code === 0x87)

    const box = inbox(sub1)
    assert.deepEqual(await subscribe(sub1, TOPIC), [1])
    assert.deepEqual(await subscribe(reader, TOPIC), [1])
    await assert.rejects(subscribe(reader, 'elsewhere/x'), /Not authorized/) // SUBACK 0x87
    await publish(pub1, TOPIC, 'a')
    await publish(pub1, TOPIC, 'b')
    await assert.rejects(publish(reader, TOPIC, 'not allowed'))
    await waitFor(() => box.has(TOPIC, 'a') && box.has(TOPIC, 'b'), 5_000, 'deliveries')

    const res = await fetch(`http://127.0.0.1:${p.metricsAddress!.port}/metrics`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const m = parseMetrics(await res.text())
    const d = (kind: string, outcome: string, reason: string) => m.get(`flytrap_decisions_total{kind="${kind}",outcome="${outcome}",reason="${reason}"}`)
    assert.equal(d('connect', 'allow', 'user-properties'), 3)
    assert.equal(d('connect', 'deny', 'expired'), 1)
    assert.equal(d('connect', 'deny', 'missing'), 1)
    assert.equal(d('subscribe', 'allow', 'granted'), 2)
    assert.equal(d('subscribe', 'deny', 'unregistered'), 1)
    assert.equal(d('publish', 'allow', 'granted'), 2)
    assert.equal(d('publish', 'deny', 'no-grant'), 1)
    const decisionSeries = [...m.keys()].filter((k) => k.startsWith('flytrap_decisions_total{'))
    assert.equal(decisionSeries.length, 7, `unexpected series: ${decisionSeries.join(', ')}`)
    assert.equal(m.get('flytrap_connections_open'), 3)
    assert.equal(m.get('flytrap_connections_total{outcome="open"}'), 3)
    assert.equal(m.get('flytrap_policy_synced'), 1)
    assert.ok((m.get('flytrap_policy_block') ?? 0) > 0)
    assert.ok((m.get('flytrap_policy_block') ?? 0) >= e.chain.deployBlock)

    // Closing clients shows in the gauge at the next scrape; other paths are 404.
    for (const c of [sub1, pub1, reader]) c.end()
    await waitFor(() => p.sessionCount() === 0, 5_000, 'sessions closed')
    const again = parseMetrics(await (await fetch(`http://127.0.0.1:${p.metricsAddress!.port}/metrics`)).text())
    assert.equal(again.get('flytrap_connections_open'), 0)
    assert.equal((await fetch(`http://127.0.0.1:${p.metricsAddress!.port}/`)).status, 404)
  })

  test('library events: policy-synced, session-open, decision, session-close', async () => {
    const rpc = await gatedRpc(e.chain.rpcUrl)
    try {
      const contract = new FlyTrapClient(e.chain.address, new JsonRpcProvider(rpc.url, e.chain.chainId, { staticNetwork: true }))
      const p = await startProxy(proxyOptions(e.chain, e.mosquitto.url, { contract, bans: { ...DEFAULTS.bans, threshold: 1_000_000 } }))
      own.push(p)
      const synced: { block: number }[] = []
      const opened: { ip: string; address?: string; clientId?: string }[] = []
      const closed: { ip: string; address?: string; clientId?: string; reason?: string }[] = []
      const decisions: DecisionEvent[] = []
      p.on('policy-synced', (ev) => synced.push(ev))
      p.on('session-open', (ev) => opened.push(ev))
      p.on('session-close', (ev) => closed.push(ev))
      p.on('decision', (ev) => decisions.push(ev))
      assert.equal(p.policyStatus().synced, false, 'the chain is held back: not synced yet')
      rpc.open()
      await waitFor(() => synced.length === 1, 15_000, 'policy-synced')
      assert.equal(synced[0]!.block, p.policyStatus().block)
      assert.ok(synced[0]!.block >= e.chain.deployBlock)

      const url = `mqtt://127.0.0.1:${p.address.port}`
      const c = await connectClient({ key: e.key(1), url, clientId: 'events-1' }, e.chain)
      assert.deepEqual(opened, [{ ip: '127.0.0.1', address: e.address(1), clientId: 'events-1' }])
      await publish(c, TOPIC, 'x')
      await assert.rejects(publish(c, 'nowhere/y', 'x'))
      c.end()
      await waitFor(() => closed.length === 1, 5_000, 'session-close')
      assert.deepEqual(closed[0], { ip: '127.0.0.1', address: e.address(1), clientId: 'events-1', reason: 'client-disconnected' })

      const simple = decisions.map((x) => [x.kind, x.allowed, x.reason, x.topic, x.address, x.clientId, x.ip])
      assert.deepEqual(simple, [
        ['connect', true, 'user-properties', undefined, e.address(1), 'events-1', '127.0.0.1'],
        ['publish', true, 'granted', TOPIC, e.address(1), 'events-1', '127.0.0.1'],
        ['publish', false, 'unregistered', 'nowhere/y', e.address(1), 'events-1', '127.0.0.1'],
      ])
      assert.equal(synced.length, 1, 'policy-synced fires once')
    } finally {
      await rpc.close()
    }
  })

  test(
    'graceful shutdown: v5 clients get DISCONNECT 0x8B, v4 clients are closed, close() resolves',
    async () => {
      const p = await e.startProxy()
      const url = `mqtt://127.0.0.1:${p.address.port}`
      const v5 = await e.connect({ key: 1, url })
      const v4 = await e.connect({ key: 1, url, version: 4 })
      const disconnects: (number | undefined)[] = []
      v5.on('disconnect', (packet) => disconnects.push(packet.reasonCode))
      let v4Closed = false
      v4.on('close', () => (v4Closed = true))
      let v5Closed = false
      v5.on('close', () => (v5Closed = true))

      const closing = p.close({ graceMs: 2_000 })
      let timer: NodeJS.Timeout | undefined
      const outcome = await Promise.race([closing.then(() => 'resolved'), new Promise((r) => (timer = setTimeout(() => r('still pending after 6 s'), 6_000)))])
      clearTimeout(timer)
      try {
        assert.equal(outcome, 'resolved', 'close() with connected clients')
        assert.deepEqual(disconnects, [0x8b])
        await waitFor(() => v4Closed && v5Closed, 5_000, 'both clients closed')
        assert.equal(p.sessionCount(), 0)
      } finally {
        v5.end(true)
        v4.end(true)
        await closing
      }
    },
  )

  test('close() once clients have left: resolves, stops listening, and a second close() is harmless', async () => {
    const p = await e.startProxy({ metrics: '127.0.0.1:0' })
    const url = `mqtt://127.0.0.1:${p.address.port}`
    const c = await e.connect({ key: 1, url })
    const closes: (string | undefined)[] = []
    p.on('session-close', (ev) => closes.push(ev.reason))
    await new Promise<void>((r) => c.end(false, {}, () => r()))
    await waitFor(() => p.sessionCount() === 0, 5_000, 'session closed')
    await p.close({ graceMs: 1_000 })
    assert.deepEqual(closes, ['client-disconnected'])
    await assert.rejects(e.connect({ key: 1, url }), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED')
    await assert.rejects(fetch(`http://127.0.0.1:${p.metricsAddress!.port}/metrics`))
    await p.close()
  })

  test('never synced (RPC unreachable): CONNECT refused with v5 0x88 / v4 rc 3 (fail closed); failOpen lets authenticated clients in', async () => {
    const dead = () => new FlyTrapClient(e.chain.address, new JsonRpcProvider('http://127.0.0.1:9', e.chain.chainId, { staticNetwork: true }))
    const closed = await startProxy(proxyOptions(e.chain, e.mosquitto.url, { contract: dead() }))
    own.push(closed)
    await waitFor(() => closed.policyStatus().lastError !== undefined, 10_000, 'a failed sync attempt')
    assert.equal(closed.policyStatus().synced, false)
    const url = `mqtt://127.0.0.1:${closed.address.port}`
    await assert.rejects(e.connect({ key: 1, url }), (err: { code?: number }) => err.code === 0x88)
    await assert.rejects(e.connect({ key: 1, url, version: 4 }), (err: { code?: number }) => err.code === 3)

    const openP = await startProxy(proxyOptions(e.chain, e.mosquitto.url, { contract: dead(), failOpen: true }))
    own.push(openP)
    assert.equal(openP.policyStatus().synced, false)
    const openUrl = `mqtt://127.0.0.1:${openP.address.port}`
    const sub = await e.connect({ key: 1, url: openUrl })
    const pub = await e.connect({ key: 2, url: openUrl, version: 4 })
    const box = inbox(sub)
    await subscribe(sub, TOPIC)
    await publish(pub, TOPIC, 'fail-open')
    await waitFor(() => box.has(TOPIC, 'fail-open'), 5_000, 'delivery while fail-open')
    // Fail-open is about policy, not identity: bad credentials are still refused.
    await assert.rejects(e.connect({ key: 1, url: openUrl, expiresIn: -60 }), (err: { code?: number }) => err.code === 0x86)
    sub.end()
    pub.end()
  })

  // Last: it stops anvil for good.
  test('chain outage mid-session: sessions keep working on the last policy, new CONNECTs work, lastError is set', async () => {
    const url = e.proxyUrl
    const sub = await e.connect({ key: 2, url })
    const pub = await e.connect({ key: 1, url })
    const box = inbox(sub)
    assert.deepEqual(await subscribe(sub, TOPIC), [1])
    await e.synced()
    assert.equal(e.proxy.policyStatus().lastError, undefined)

    await e.chain.anvil.stop()
    await waitFor(() => e.proxy.policyStatus().lastError !== undefined, 15_000, 'the sync loop to notice the outage')
    assert.match(e.proxy.policyStatus().lastError!, /\S/)

    await publish(pub, TOPIC, 'during outage')
    await waitFor(() => box.has(TOPIC, 'during outage'), 5_000, 'delivery during the outage')
    // The last policy still refuses what it refused.
    await assert.rejects(publish(sub, TOPIC, 'reader may not publish'))
    // New sessions authenticate offline (signatures) and are authorised from memory.
    const late = await e.connect({ key: 1, url })
    await publish(late, TOPIC, 'new session during outage')
    await waitFor(() => box.has(TOPIC, 'new session during outage'), 5_000, 'delivery from a new session')
    assert.equal(e.proxy.policyStatus().synced, true, 'still serving the last synced policy')
  })
})
