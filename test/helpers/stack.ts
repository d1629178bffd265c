/**
 * The end-to-end stack: real anvil + FlyTrap contract, real mosquitto, the proxy in front of it, and MQTT.js
 * clients that authenticate with real credentials. Everything on random free loopback ports.
 */
import type { MqttClient } from 'mqtt'
import { startMosquitto, type MosquittoHandle, type MosquittoOptions } from '../../src/lib/dev/mosquitto.js'
import { DEFAULTS, type ProxyOptions } from '../../src/lib/proxy/options.js'
import { startProxy, type ProxyHandle } from '../../src/lib/proxy/server.js'
import { silentLogger } from '../../src/lib/log.js'
import { chainFixture, type ChainFixture } from './chain.js'
import { connectClient, type ConnectOptions } from './mqtt.js'
import { waitFor } from './wait.js'

export interface E2E {
  chain: ChainFixture
  mosquitto: MosquittoHandle
  proxy: ProxyHandle
  proxyUrl: string
  /** Hex private key for a key index. */
  key(i: number): string
  address(i: number): string
  /** Connects through the proxy; rejects with the CONNACK refusal (err.code = reason/return code). */
  connect(opts: ConnectOptions): Promise<MqttClient>
  /** Waits until the proxy's policy reflects the chain's latest block. */
  synced(): Promise<void>
  startProxy(overrides?: Partial<ProxyOptions>): Promise<ProxyHandle>
  close(): Promise<void>
}

export function proxyOptions(chain: ChainFixture, brokerUrl: string, overrides: Partial<ProxyOptions> = {}): ProxyOptions {
  return {
    listeners: [{ listen: '127.0.0.1:0' }],
    upstream: { url: brokerUrl },
    contract: chain.as(0),
    chainId: chain.chainId,
    fromBlock: chain.deployBlock,
    pollIntervalMs: 100,
    unregisteredTopics: 'deny',
    failOpen: false,
    allowLegacyCredentials: false,
    usernameFromAddress: false,
    maxCredentialLifetimeSec: DEFAULTS.maxCredentialLifetimeSec,
    bans: { ...DEFAULTS.bans },
    limits: { ...DEFAULTS.limits, connectTimeoutMs: 5_000 },
    logger: silentLogger,
    ...overrides,
  }
}

export async function e2eFixture(opts: { proxy?: Partial<ProxyOptions>; mosquitto?: MosquittoOptions; setup?: (chain: ChainFixture) => Promise<void> } = {}): Promise<E2E> {
  const chain = await chainFixture()
  const mosquitto = await startMosquitto(opts.mosquitto)
  if (opts.setup) await opts.setup(chain)
  const proxies: ProxyHandle[] = []
  const clients = new Set<MqttClient>()

  const start = async (overrides: Partial<ProxyOptions> = {}) => {
    const p = await startProxy(proxyOptions(chain, mosquitto.url, { ...opts.proxy, ...overrides }))
    proxies.push(p)
    await waitFor(() => p.policyStatus().synced, 15_000, 'policy sync')
    return p
  }
  const proxy = await start()
  const keyOf = (k: number | string) => (typeof k === 'number' ? chain.wallet(k).privateKey : k)

  const fixture: E2E = {
    chain,
    mosquitto,
    proxy,
    proxyUrl: `mqtt://127.0.0.1:${proxy.address.port}`,
    key: (i) => chain.wallet(i).privateKey,
    address: (i) => chain.wallet(i).address,
    startProxy: start,
    connect: (c) => {
      const client = connectClient({ ...c, key: keyOf(c.key), url: c.url ?? fixture.proxyUrl }, chain)
      return client.then((cl) => {
        clients.add(cl)
        return cl
      })
    },
    synced: async () => {
      const head = await chain.provider.getBlockNumber()
      await waitFor(() => proxies.every((p) => (p.policyStatus().block ?? 0) >= head), 10_000, `policy at block ${head}`)
    },
    close: async () => {
      for (const c of clients) c.end(true)
      for (const p of proxies) await p.close({ graceMs: 500 })
      await mosquitto.stop()
      await chain.close()
    },
  }
  return fixture
}
