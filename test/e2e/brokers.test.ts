/**
 * Any broker, proven: one matrix run behind every broker in test/helpers/brokers.ts, each locked so that only
 * the proxy's identity gets in. Allowed and refused publish/subscribe at QoS 0/1/2, retained messages, wills,
 * persistent sessions and revocation on a live subscription, MQTT 5 and 3.1.1. Where a broker differs on its
 * own (ejabberd: no shared subscriptions), the test says so and checks that FlyTrap passes the broker's
 * behaviour through unchanged.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { MqttClient } from 'mqtt'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { connectClient, inbox, proxyOptions, publish, sleep, subscribe, waitFor, type ConnectOptions } from '../helpers/e2e.js'
import { brokers, type RunningBroker } from '../helpers/brokers.js'
import { startProxy, type ProxyHandle } from '../../src/lib/proxy/server.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'

/** The SUBACK codes, refusals included (MQTT.js rejects on a refusal), or 'closed' when the broker hung up. */
async function subscribeOutcome(client: MqttClient, filter: string, qos: 0 | 1 | 2): Promise<number[] | 'closed'> {
  try {
    return (await client.subscribeAsync(filter, { qos })).map((g) => g.qos)
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet
    if (packet?.granted) return packet.granted
    if (/closed/i.test((err as Error).message)) return 'closed'
    throw err
  }
}

const PUB = 1
const SUB = 2

for (const kind of brokers) {
  const skip = kind.unavailable()
  describe(`behind ${kind.name}`, { skip }, () => {
    let chain: ChainFixture
    let broker: RunningBroker
    let proxy: ProxyHandle
    const clients: MqttClient[] = []
    const connect = async (c: Omit<ConnectOptions, 'key'> & { key: number }) => {
      const cl = await connectClient({ ...c, key: chain.wallet(c.key).privateKey, url: `mqtt://127.0.0.1:${proxy.address.port}` }, chain)
      clients.push(cl)
      return cl
    }
    const synced = async () => {
      const head = await chain.provider.getBlockNumber()
      await waitFor(() => (proxy.policyStatus().block ?? 0) >= head, 10_000, `policy at ${head}`)
    }

    before(async () => {
      ;[chain, broker] = await Promise.all([chainFixture(), kind.start()])
      const owner = chain.as(0)
      await owner.addTopic({ name: 'm/data', pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'matrix' })
      await owner.allow('m/data', chain.wallet(1).address, PUB, 0, 'publisher')
      await owner.allow('m/data', chain.wallet(2).address, SUB, 0, 'subscriber')
      await owner.addTopic({ name: 'm/secret', pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'matrix' })
      await owner.allow('m/secret', chain.wallet(3).address, 3, 0, 'insider')
      // Refusals are part of the matrix: no ban may end it early.
      proxy = await startProxy(proxyOptions(chain, broker.url, { upstream: broker.upstream, bans: { ...DEFAULTS.bans, threshold: 10_000 } }))
      await waitFor(() => proxy.policyStatus().synced, 15_000, 'policy sync')
      await synced()
    })
    after(async () => {
      for (const c of clients) c.end(true)
      await proxy?.close({ graceMs: 500 })
      await broker?.stop()
      await chain?.close()
    })

    test('the broker admits only the proxy: a device connecting straight to it is refused', async () => {
      await assert.rejects(connectClient({ key: chain.wallet(1).privateKey, url: broker.url, version: 5 }, chain), (err: NodeJS.ErrnoException) => {
        assert.ok([0x86, 0x87].includes(Number(err.code)), `expected a refusal, got ${err.code}`)
        return true
      })
    })

    for (const version of [5, 4] as const) {
      for (const qos of [0, 1, 2] as const) {
        test(`v${version} QoS ${qos}: an allowed publish reaches an allowed subscriber`, async () => {
          const sub = await connect({ key: 2, version })
          const box = inbox(sub)
          assert.deepEqual(await subscribe(sub, 'm/data', qos), [qos])
          const pub = await connect({ key: 1, version })
          await publish(pub, 'm/data', `q${qos}v${version}`, { qos })
          await waitFor(() => box.has('m/data', `q${qos}v${version}`), 5_000, 'delivery')
          pub.end()
          sub.end()
        })
      }

      test(`v${version}: a refused publish (QoS 1) gets its refusal and reaches nobody; a refused subscribe is refused`, async () => {
        const insider = await connect({ key: 3, version })
        const box = inbox(insider)
        await subscribe(insider, 'm/secret', 1)
        const outsider = await connect({ key: 1, version })
        if (version === 5) {
          await assert.rejects(publish(outsider, 'm/secret', 'no', { qos: 1 }), (err: NodeJS.ErrnoException) => (assert.equal(err.code, 0x87), true))
        } else await publish(outsider, 'm/secret', 'no', { qos: 0 })
        for (const qos of [0, 1, 2] as const) assert.deepEqual(await subscribeOutcome(outsider, 'm/secret', qos), [version === 5 ? 0x87 : 0x80])
        await sleep(300)
        assert.equal(box.has('m/secret', 'no'), false)
        insider.end()
        outsider.end()
      })
    }

    test('retained: a retained message reaches a later subscriber, marked retained', async () => {
      const pub = await connect({ key: 1 })
      await publish(pub, 'm/data', 'kept', { qos: 1, retain: true })
      const sub = await connect({ key: 2, version: 4 })
      const box = inbox(sub)
      await subscribe(sub, 'm/data', 1)
      await waitFor(() => box.messages.some((m) => m.payload === 'kept' && m.retain), 5_000, 'retained delivery')
      await publish(pub, 'm/data', '', { qos: 1, retain: true }) // clear it for the other tests
      pub.end()
      sub.end()
    })

    test('will: an allowed will is published when its client drops; a will on a refused topic refuses the CONNECT', async () => {
      const sub = await connect({ key: 2 })
      const box = inbox(sub)
      await subscribe(sub, 'm/data', 1)
      const dying = await connect({ key: 1, will: { topic: 'm/data', payload: Buffer.from('gone'), qos: 1, retain: false } })
      dying.stream.destroy() // abrupt: the broker publishes the will
      await waitFor(() => box.has('m/data', 'gone'), 10_000, 'will delivery')
      await assert.rejects(connect({ key: 1, will: { topic: 'm/secret', payload: Buffer.from('x'), qos: 0, retain: false } }), (err: NodeJS.ErrnoException) => (assert.equal(err.code, 0x87), true))
      sub.end()
    })

    test('persistent session: messages published while the subscriber was away are delivered when it comes back', async () => {
      const clientId = `persist-${kind.name}`
      const extra = { clean: false, properties: { sessionExpiryInterval: 300 } }
      const first = await connect({ key: 2, clientId, extra })
      await subscribe(first, 'm/data', 1)
      await first.endAsync()
      const pub = await connect({ key: 1 })
      await publish(pub, 'm/data', 'while-away', { qos: 1 })
      let box!: ReturnType<typeof inbox>
      const back = await connect({ key: 2, clientId, extra: { ...extra, resubscribe: false }, onCreate: (c) => (box = inbox(c)) })
      await waitFor(() => box.has('m/data', 'while-away'), 10_000, 'queued delivery')
      pub.end()
      back.end()
    })

    test('revocation reaches a live subscription: deliveries stop without a reconnect', async () => {
      const owner = chain.as(0)
      await owner.allow('m/data', chain.wallet(4).address, SUB, 0, 'temporary')
      await synced()
      const sub = await connect({ key: 4 })
      const box = inbox(sub)
      await subscribe(sub, 'm/data', 1)
      const pub = await connect({ key: 1 })
      await publish(pub, 'm/data', 'before', { qos: 1 })
      await waitFor(() => box.has('m/data', 'before'), 5_000, 'delivery before revocation')
      await owner.revoke('m/data', chain.wallet(4).address, SUB, 'matrix')
      await synced()
      await publish(pub, 'm/data', 'after', { qos: 1 })
      await sleep(400)
      assert.equal(box.has('m/data', 'after'), false, 'a delivery after the revocation reached the subscriber')
      pub.end()
      sub.end()
    })

    test(`shared subscription${kind.differs.noSharedSubscriptions ? ` (${kind.name} has none: its answer is passed through)` : ''}`, async () => {
      const sub = await connect({ key: 2 })
      const box = inbox(sub)
      const granted = await subscribeOutcome(sub, '$share/g/m/data', 1)
      if (kind.differs.noSharedSubscriptions) {
        // Compare with what the broker says to the proxy's own identity, straight: FlyTrap must not change it.
        const direct = await connectDirect(broker)
        const directGranted = await subscribeOutcome(direct, '$share/g/m/data', 1)
        direct.end(true)
        assert.deepEqual(granted, directGranted, 'FlyTrap changed the broker answer to a shared subscription')
      } else {
        assert.deepEqual(granted, [1])
        const pub = await connect({ key: 1 })
        await publish(pub, 'm/data', 'shared', { qos: 1 })
        await waitFor(() => box.has('m/data', 'shared'), 5_000, 'shared delivery')
        pub.end()
      }
      sub.end()
    })
  })
}

/** A client straight to the broker with the proxy's own identity (to see the broker's own behaviour). */
async function connectDirect(broker: RunningBroker): Promise<MqttClient> {
  const { default: mqtt } = await import('mqtt')
  const c = mqtt.connect(broker.url, { protocolVersion: 5, reconnectPeriod: 0, username: broker.upstream.username, password: broker.upstream.password as string, clientId: `direct-${Math.random().toString(36).slice(2, 8)}` })
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve())
    c.once('error', reject)
  })
  return c
}
