/**
 * End-to-end fixture: real anvil + FlyTrap contract, real mosquitto, the proxy in front of it, and MQTT.js
 * clients that authenticate with real credentials. Everything on random free loopback ports.
 */
import mqtt, { type IClientOptions, type MqttClient, type IClientPublishOptions } from 'mqtt'
import { Wallet } from 'ethers'
import { AUTH_CONTINUE, AUTH_METHOD, connectAuthData, signChallenge, signCredential, toUserProperties, toUsernamePassword } from '../../src/lib/auth/index.js'
import { startMosquitto, type MosquittoHandle, type MosquittoOptions } from '../../src/lib/dev/mosquitto.js'
import { DEFAULTS, type ProxyOptions } from '../../src/lib/proxy/options.js'
import { startProxy, type ProxyHandle } from '../../src/lib/proxy/server.js'
import { silentLogger } from '../../src/lib/proxy/log.js'
import { chainFixture, type ChainFixture } from './chain.js'

export interface ConnectOptions {
  /** Private key of the device (an anvil dev key index, or a hex key). */
  key: number | string
  clientId?: string
  version?: 4 | 5
  /** How the credential travels. */
  transport?: 'user-properties' | 'username-password' | 'enhanced-auth' | 'none'
  will?: IClientOptions['will']
  url?: string
  /** Seconds until the credential expires (negative = already expired). */
  expiresIn?: number
  extra?: Partial<IClientOptions>
}

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

/** MQTT.js connect with a FlyTrap credential; resolves on CONNACK success, rejects with the refusal. */
export function connectClient(c: ConnectOptions & { key: string; url: string }, chain: { chainId: number; address: string }): Promise<MqttClient> {
  const version = c.version ?? 5
  const clientId = c.clientId ?? `c-${Math.random().toString(36).slice(2, 10)}`
  const deployment = { chainId: BigInt(chain.chainId), contract: chain.address }
  const transport = c.transport ?? (version === 5 ? 'user-properties' : 'username-password')
  const options: IClientOptions = { protocolVersion: version, clientId, reconnectPeriod: 0, connectTimeout: 5_000, will: c.will, ...c.extra }
  const cred = () => signCredential({ signer: c.key, ...deployment, clientId, expiresAt: Math.floor(Date.now() / 1000) + (c.expiresIn ?? 3600) })
  if (transport === 'user-properties') options.properties = { ...options.properties, userProperties: toUserProperties(cred()) }
  if (transport === 'username-password') Object.assign(options, toUsernamePassword(cred()))
  if (transport === 'enhanced-auth') {
    options.properties = { ...options.properties, authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(new Wallet(c.key).address) }
  }
  const client = mqtt.connect(c.url, options)
  if (transport === 'enhanced-auth') {
    client.handleAuth = (packet, callback) => {
      const nonce = packet.properties?.authenticationData as Buffer
      const response = signChallenge({ signer: c.key, ...deployment, clientId, nonce })
      callback(undefined, { cmd: 'auth', reasonCode: AUTH_CONTINUE, properties: { authenticationMethod: AUTH_METHOD, authenticationData: response } })
    }
  }
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      cleanup()
      client.end(true)
      reject(err)
    }
    const onClose = () => {
      cleanup()
      reject(Object.assign(new Error('connection closed before CONNACK'), { code: 'closed' }))
    }
    const onConnect = () => {
      cleanup()
      resolve(client)
    }
    const cleanup = () => {
      client.off('error', onError)
      client.off('close', onClose)
      client.off('connect', onConnect)
    }
    client.on('error', onError)
    client.on('close', onClose)
    client.on('connect', onConnect)
  })
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Collects messages a client receives, by topic. */
export function inbox(client: MqttClient): { messages: { topic: string; payload: string; retain: boolean }[]; has(topic: string, payload?: string): boolean } {
  const messages: { topic: string; payload: string; retain: boolean }[] = []
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), retain: packet.retain }))
  return { messages, has: (t, p) => messages.some((m) => m.topic === t && (p === undefined || m.payload === p)) }
}

export async function subscribe(client: MqttClient, filter: string | string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  const granted = await client.subscribeAsync(filter, { qos })
  return granted.map((g) => g.qos)
}

export function publish(client: MqttClient, topic: string, payload: string, opts: IClientPublishOptions = {}): Promise<unknown> {
  return client.publishAsync(topic, payload, { qos: 1, ...opts })
}

/** Resolves after `ms`; for "nothing arrives" checks, which need some time to pass. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
