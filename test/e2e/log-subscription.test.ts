/**
 * Revocation over an eth_subscribe log subscription (proxy `rpcWs`, `proxy start --rpc-ws`): real anvil (its
 * WebSocket on the HTTP port), real mosquitto, real proxies and MQTT clients. With a 60 s poll interval, only the
 * subscription can bring a revoke to a live session within seconds; when the WebSocket endpoint refuses
 * eth_subscribe or is not there, the poll timer alone must still do it; when the socket drops (a loopback TCP
 * relay we cut), the subscription must come back and deliver again, and what happened while it was down must be
 * read by the poll once, in order (no range of blocks applied twice, none skipped); and a lying endpoint's forged
 * logs must not change the policy (they only wake the poll, which reads the HTTP node).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net, { type AddressInfo, type Socket } from 'node:net'
import { WebSocketServer } from 'ws'
import { Interface } from 'ethers'
import { abi } from '../../src/lib/chain/artifacts/FlyTrap.js'
import { topicId } from '../../src/lib/chain/client.js'
import type { MqttClient } from 'mqtt'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import { ReasonCode } from '../../src/lib/mqtt/reason-codes.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { addressOfKey, freshDeviceKey, publishCode } from '../helpers/mqtt.js'
import { recordingLogger } from '../helpers/logger.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { PUB, topicArgs } from '../helpers/topics.js'

const TOPIC = 'ls/t'
/** Far longer than the bounds below: a revoke seen within them did not come from the timer. */
const SLOW_POLL_MS = 60_000
/** Generous for "one block + a round trip"; well under SLOW_POLL_MS. */
const EFFECT_MS = 10_000

const KEYS = { forged: freshDeviceKey(), a: freshDeviceKey(), fb: freshDeviceKey(), fb2: freshDeviceKey(), c: freshDeviceKey(), d1: freshDeviceKey(), d2: freshDeviceKey() }

/** A loopback TCP relay to `port` that can cut every connection, stop accepting and listen again on the same port. */
async function cuttableRelay(port: number): Promise<{ port: number; connections: () => number; cut(): void; down(): Promise<void>; up(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server = net.createServer((client) => {
    accepted++
    const upstream = net.connect(port, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const own = (server.address() as AddressInfo).port
  const cut = () => {
    for (const s of sockets) s.destroy()
  }
  return {
    port: own,
    connections: () => accepted,
    cut,
    down: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()))
      cut()
      await closed
    },
    up: () => new Promise<void>((r) => server.listen(own, '127.0.0.1', r)),
    close: async () => {
      cut()
      if (server.listening) await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/** A WebSocket "node" that answers every eth_subscribe with a JSON-RPC error (methods off its allow-list). */
async function refusingWsNode(): Promise<{ url: string; refused: () => number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => wss.once('listening', () => r()))
  let refused = 0
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const req = JSON.parse(String(data)) as { id: number; method: string }
      if (req.method === 'eth_subscribe') refused++
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: req.id, error: { code: -32601, message: `method ${req.method} is not allowed` } }))
    })
  })
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    refused: () => refused,
    close: () => new Promise<void>((r) => wss.close(() => r())),
  }
}

/** A WebSocket "node" that accepts eth_subscribe and then pushes a forged log every 20 ms (a lying endpoint). */
async function forgingWsNode(log: () => Record<string, unknown>): Promise<{ url: string; sent: () => number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => wss.once('listening', () => r()))
  let sent = 0
  const timers: NodeJS.Timeout[] = []
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const req = JSON.parse(String(data)) as { id: number }
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: req.id, result: '0xf00d' }))
      timers.push(
        setInterval(() => {
          sent++
          ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: '0xf00d', result: log() } }))
        }, 20),
      )
    })
  })
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    sent: () => sent,
    close: () => {
      for (const t of timers) clearInterval(t)
      for (const c of wss.clients) c.terminate()
      return new Promise<void>((r) => wss.close(() => r()))
    },
  }
}

/** Publishes until the proxy answers PUBACK 0x87 (the revoke reached this open session); false after ms. */
async function refusedWithin(c: MqttClient, ms: number): Promise<boolean> {
  const t0 = Date.now()
  while (Date.now() - t0 < ms) {
    if ((await publishCode(c, TOPIC, 'probe')) === ReasonCode.NotAuthorized) return true
    await sleep(20)
  }
  return false
}

describe('policy sync over an eth_subscribe log subscription', () => {
  let e: E2E
  const closers: (() => Promise<void>)[] = []
  const wsUrl = () => e.chain.rpcUrl.replace(/^http/, 'ws')
  const owner = () => e.chain.as(0)

  before(async () => {
    e = await e2eFixture({
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 } },
      setup: async (chain) => {
        const o = chain.as(0)
        await o.addTopic(topicArgs(TOPIC))
        for (const k of Object.values(KEYS)) await o.allow(TOPIC, addressOfKey(k), PUB, 0, 'e2e')
      },
    })
  })
  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {})
    await e?.close()
  })

  test('with a 60 s poll interval, a revoke reaches an open session within seconds through the subscription', async () => {
    const p = await e.startProxy({ pollIntervalMs: SLOW_POLL_MS, rpcWs: wsUrl() })
    await waitFor(() => p.policyStatus().mode === 'subscription', 10_000, 'the subscription to go live')
    const c = await e.connect({ key: KEYS.a, url: `mqtt://127.0.0.1:${p.address.port}` })
    assert.equal(await publishCode(c, TOPIC, 'before'), 0)
    await owner().revoke(TOPIC, addressOfKey(KEYS.a), PUB, 'e2e')
    assert.ok(await refusedWithin(c, EFFECT_MS), `the revoke did not reach the open session within ${EFFECT_MS} ms (poll interval ${SLOW_POLL_MS} ms)`)
    assert.equal(c.connected, true)
    assert.equal(p.policyStatus().mode, 'subscription')
  })

  test('a WebSocket endpoint that refuses eth_subscribe, or none at all: the poll timer still brings the revoke', async () => {
    const node = await refusingWsNode()
    closers.push(() => node.close())
    const gone = net.createServer()
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r))
    const closedPort = (gone.address() as AddressInfo).port
    await new Promise<void>((r) => gone.close(() => r())) // nothing listens there now: connections are refused

    for (const [key, url] of [[KEYS.fb, node.url], [KEYS.fb2, `ws://127.0.0.1:${closedPort}`]] as const) {
      const log = recordingLogger()
      const p = await e.startProxy({ pollIntervalMs: 500, rpcWs: url, rpcWsBackoffMs: { min: 100, max: 200 }, logger: log })
      if (url === node.url) await waitFor(() => node.refused() >= 2, 10_000, 'eth_subscribe refused (and retried)')
      else await sleep(500)
      assert.equal(p.policyStatus().mode, 'polling')
      assert.ok(log.lines.some((l) => l.level === 'info' && /policy sync mode: polling/.test(l.msg)), 'the mode is logged')
      const c = await e.connect({ key, url: `mqtt://127.0.0.1:${p.address.port}` })
      assert.equal(await publishCode(c, TOPIC, 'before'), 0)
      await owner().revoke(TOPIC, addressOfKey(key), PUB, 'e2e')
      assert.ok(await refusedWithin(c, EFFECT_MS), `${url}: the revoke did not arrive by polling`)
      assert.equal(p.policyStatus().subscriptions, 0, 'never subscribed')
    }
  })

  test('a lying WebSocket endpoint cannot revoke: its forged Revoked logs (and removed ones) only wake the poll, which reads the real node', async () => {
    const iface = new Interface(abi)
    const victim = addressOfKey(KEYS.forged)
    const head = await e.chain.provider.getBlockNumber()
    let n = 0
    const node = await forgingWsNode(() => {
      const ev = iface.encodeEventLog('Revoked', [topicId(TOPIC), victim, PUB, 'forged'])
      return { address: e.chain.address, topics: ev.topics, data: ev.data, blockNumber: `0x${(head + 1 + (n % 3)).toString(16)}`, logIndex: '0x0', transactionHash: `0x${'ab'.repeat(32)}`, removed: n++ % 2 === 1 }
    })
    closers.push(() => node.close())
    const p = await e.startProxy({ pollIntervalMs: SLOW_POLL_MS, rpcWs: node.url })
    await waitFor(() => p.policyStatus().mode === 'subscription', 10_000, 'the forged subscription to go live')
    const c = await e.connect({ key: KEYS.forged, url: `mqtt://127.0.0.1:${p.address.port}` })
    await waitFor(() => node.sent() >= 50, 10_000, 'forged notifications sent')
    assert.equal(await publishCode(c, TOPIC, 'still-allowed'), 0, 'a forged Revoked log took the right away')
    assert.equal(p.policyStatus().synced, true)
    assert.ok((p.policyStatus().block ?? 0) >= head, 'the poll the notifications woke read the real node')
  })

  test('the socket drops: the subscription comes back by itself and delivers the next revoke', async () => {
    const relay = await cuttableRelay(e.chain.anvil.port)
    closers.push(() => relay.close())
    const log = recordingLogger()
    const p = await e.startProxy({ pollIntervalMs: SLOW_POLL_MS, rpcWs: `ws://127.0.0.1:${relay.port}`, rpcWsBackoffMs: { min: 100, max: 500 }, logger: log })
    await waitFor(() => p.policyStatus().subscriptions === 1, 10_000, 'the first subscription')
    relay.cut()
    await waitFor(() => p.policyStatus().subscriptions === 2 && p.policyStatus().mode === 'subscription', 10_000, 'resubscribed after the cut')
    assert.ok(relay.connections() >= 2, 'a new connection was opened')
    const modes = log.lines.filter((l) => /policy sync mode: (subscription|polling) \(/.test(l.msg)).map((l) => l.msg.split(' ')[3])
    assert.deepEqual(modes, ['subscription', 'polling', 'subscription'], 'the fallback and the recovery are logged')

    const c = await e.connect({ key: KEYS.c, url: `mqtt://127.0.0.1:${p.address.port}` })
    assert.equal(await publishCode(c, TOPIC, 'before'), 0)
    await owner().revoke(TOPIC, addressOfKey(KEYS.c), PUB, 'e2e')
    assert.ok(await refusedWithin(c, EFFECT_MS), 'the revoke after the reconnect did not arrive through the new subscription')
  })

  test('events while the subscription is down are read once, in order, by the poll that follows the resubscribe', async () => {
    const relay = await cuttableRelay(e.chain.anvil.port)
    closers.push(() => relay.close())
    const log = recordingLogger()
    const p = await e.startProxy({ pollIntervalMs: SLOW_POLL_MS, rpcWs: `ws://127.0.0.1:${relay.port}`, rpcWsBackoffMs: { min: 100, max: 300 }, logger: log })
    await waitFor(() => p.policyStatus().mode === 'subscription', 10_000, 'the subscription to go live')
    const url = `mqtt://127.0.0.1:${p.address.port}`
    const c1 = await e.connect({ key: KEYS.d1, url })
    const c2 = await e.connect({ key: KEYS.d2, url })
    assert.equal(await publishCode(c1, TOPIC, 'before'), 0)
    assert.equal(await publishCode(c2, TOPIC, 'before'), 0)

    await relay.down()
    await waitFor(() => p.policyStatus().mode === 'polling', 5_000, 'the subscription to be lost')
    // While it is down: d1 revoked then allowed again (its final state: allowed), d2 revoked.
    await owner().revoke(TOPIC, addressOfKey(KEYS.d1), PUB, 'e2e')
    await owner().allow(TOPIC, addressOfKey(KEYS.d1), PUB, 0, 'e2e')
    await owner().revoke(TOPIC, addressOfKey(KEYS.d2), PUB, 'e2e')
    const head = await e.chain.provider.getBlockNumber()
    await sleep(500)
    assert.ok((p.policyStatus().block ?? 0) < head, 'nothing read the gap yet (no subscription, the timer is 60 s away)')
    assert.equal(await publishCode(c2, TOPIC, 'still-old-policy'), 0)

    await relay.up()
    await waitFor(() => (p.policyStatus().block ?? 0) >= head, EFFECT_MS, 'the poll after the resubscribe to read the gap')
    assert.equal(p.policyStatus().mode, 'subscription')
    assert.equal(await publishCode(c2, TOPIC, 'after'), ReasonCode.NotAuthorized, 'd2 revoked')
    assert.equal(await publishCode(c1, TOPIC, 'after'), 0, 'd1 allowed again: the events were applied in chain order')

    // One more event through the live subscription, then: every applied range follows the previous one exactly.
    await owner().revoke(TOPIC, addressOfKey(KEYS.d1), PUB, 'e2e')
    assert.ok(await refusedWithin(c1, EFFECT_MS), 'the revoke after the gap')
    const ranges = log.lines.filter((l) => l.msg === 'policy updated').map((l) => [l.fields!.from as number, l.fields!.block as number] as const)
    assert.ok(ranges.length >= 2, `ranges: ${JSON.stringify(ranges)}`)
    for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i]![0] > ranges[i - 1]![1], `blocks applied twice: ${JSON.stringify(ranges)}`)
    const covered = ranges.flatMap(([from, to]) => Array.from({ length: to - from + 1 }, (_, k) => from + k))
    for (let b = head - 2; b <= head; b++) assert.ok(covered.includes(b), `the gap's block ${b} was never applied: ${JSON.stringify(ranges)}`)
  })
})
