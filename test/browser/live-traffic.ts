/**
 * Real traffic for the browser test's journal: mosquitto, the proxy in front of it with the audit trail
 * journaling every decision into `dataDir` (as `proxy start --data-dir` does), and MQTT.js clients with real
 * credentials: a member subscribed to the sensitive topic receives the owner's alarm (a sensitive delivery),
 * the banned (revoked) contractor is refused at CONNECT, the payer is refused a subscription it never paid
 * for (no grant) and a publish on a topic nobody registered, and an expired credential is refused.
 */
import type { MqttClient } from 'mqtt'
import { openAccountability } from '../../src/lib/audit/accountability.js'
import { startMosquitto } from '../../src/lib/dev/mosquitto.js'
import { startProxy } from '../../src/lib/proxy/server.js'
import type { ChainFixture } from '../helpers/chain.js'
import { connectClient, inbox, publish, subscribe, subscribeCodes } from '../helpers/mqtt.js'
import { proxyOptions } from '../helpers/stack.js'
import { waitFor } from '../helpers/wait.js'

export interface LiveTraffic {
  /** Client ids used, for assertions. */
  memberClientId: string
}

export async function liveTraffic(fx: ChainFixture, dataDir: string, keys: { owner: number; member: number; revoked: number; payer: number }, topics: { topic: string; sensitive: string; unlisted: string }, periodMs: number): Promise<LiveTraffic> {
  const mosquitto = await startMosquitto()
  const acc = await openAccountability({ dataDir, periodMs })
  const proxy = await startProxy(proxyOptions(fx, mosquitto.url, { durable: acc.durable, decisionDeliveries: 'sensitive' }))
  const clients: MqttClient[] = []
  try {
    await acc.attach(proxy)
    await waitFor(() => proxy.policyStatus().synced, 15_000, 'policy sync')
    const url = `mqtt://127.0.0.1:${proxy.address.port}`
    const open = async (key: number, clientId: string, expiresIn?: number) => {
      const c = await connectClient({ key: fx.wallet(key).privateKey, clientId, url, expiresIn }, fx)
      clients.push(c)
      return c
    }
    const refused = async (key: number, clientId: string, expiresIn?: number) => {
      await open(key, clientId, expiresIn).then(
        () => {
          throw new Error(`${clientId} was admitted`)
        },
        () => undefined,
      )
    }
    const member = await open(keys.member, 'alarm-console')
    const got = inbox(member)
    await subscribe(member, topics.sensitive, 1)
    const owner = await open(keys.owner, 'alarm-panel')
    await publish(owner, topics.sensitive, 'pressure high', { qos: 1 })
    await waitFor(() => got.has(topics.sensitive, 'pressure high'), 10_000, 'the sensitive delivery')
    await refused(keys.revoked, 'contractor-1') // banned on chain
    await refused(keys.member, 'alarm-old', -60) // an expired credential
    const payer = await open(keys.payer, 'payer-1')
    const codes = await subscribeCodes(payer, topics.topic, 1) // it paid to publish, not to subscribe
    if (codes[0]! < 0x80) throw new Error(`the payer's subscription was granted (${codes.join(',')})`)
    await publish(payer, topics.unlisted, 'hello', { qos: 1 }).catch(() => undefined)
    // Every decision is journaled before it is acknowledged; give the last ones their acknowledgement.
    await new Promise((r) => setTimeout(r, 300))
    return { memberClientId: 'alarm-console' }
  } finally {
    for (const c of clients) c.end(true)
    await proxy.close({ graceMs: 500 })
    await acc.stop()
    await mosquitto.stop()
  }
}
