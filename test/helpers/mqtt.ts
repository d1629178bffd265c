/**
 * MQTT.js clients that authenticate with real FlyTrap credentials (every transport the proxy accepts), and
 * the small verbs tests use on them: collect messages, subscribe/publish, read the codes of a refusal.
 */
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt'
import { Wallet } from 'ethers'
import { AUTH_CONTINUE, AUTH_METHOD, connectAuthData, signChallenge, signCredential, toUserProperties, toUsernamePassword } from '../../src/lib/auth/index.js'
import { sleep, within } from './wait.js'

/** Longest a test waits for one SUBACK or PUBACK; far above a loaded machine's round trip, far below the runner's per-test timeout. */
export const ACK_TIMEOUT_MS = 20_000

/** What a timed-out acknowledgement was for, with the client's state (connected? packet ids still in flight?). */
function awaited(client: MqttClient, what: string): () => string {
  return () => `${what} (client ${client.options.clientId}, ${client.connected ? 'connected' : 'not connected'}, in flight: ${Object.keys(client.outgoing).join(', ') || 'none'})`
}

const describeFilters = (filters: string | string[] | Record<string, unknown>) => (typeof filters === 'string' ? filters : Array.isArray(filters) ? filters.join(', ') : Object.keys(filters).join(', '))

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
  /** Called with the client before it connects (to see what arrives right behind the CONNACK). */
  onCreate?: (client: MqttClient) => void
}

/** The deployment a credential is bound to. */
export interface Deployment {
  chainId: number
  address: string
}

/** MQTT.js connect with a FlyTrap credential; resolves on CONNACK success, rejects with the refusal. */
export function connectClient(c: ConnectOptions & { key: string; url: string }, chain: Deployment): Promise<MqttClient> {
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
  c.onCreate?.(client)
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

/**
 * connectClient, retried while the proxy is still syncing its policy (it fails closed until then): for
 * tests that start a proxy process and connect right away. Gives up after `withinMs`.
 */
export async function connectWhenReady(c: ConnectOptions & { key: string; url: string }, chain: Deployment, withinMs = 15_000): Promise<MqttClient> {
  const deadline = Date.now() + withinMs
  for (;;) {
    try {
      return await connectClient({ ...c, extra: { connectTimeout: 10_000, ...c.extra } }, chain)
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(150)
    }
  }
}

/** Collects messages a client receives, by topic. */
export function inbox(client: MqttClient): { messages: { topic: string; payload: string; retain: boolean }[]; has(topic: string, payload?: string): boolean } {
  const messages: { topic: string; payload: string; retain: boolean }[] = []
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), retain: packet.retain }))
  return { messages, has: (t, p) => messages.some((m) => m.topic === t && (p === undefined || m.payload === p)) }
}

export async function subscribe(client: MqttClient, filter: string | string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  const granted = await within(client.subscribeAsync(filter, { qos }), ACK_TIMEOUT_MS, awaited(client, `the SUBACK to SUBSCRIBE ${describeFilters(filter)}`))
  return granted.map((g) => g.qos)
}

export function publish(client: MqttClient, topic: string, payload: string, opts: IClientPublishOptions = {}): Promise<unknown> {
  const qos = opts.qos ?? 1
  return within(client.publishAsync(topic, payload, { qos: 1, ...opts }), ACK_TIMEOUT_MS, awaited(client, `the ${qos === 2 ? 'PUBCOMP' : qos === 1 ? 'PUBACK' : 'write'} of PUBLISH ${topic} (QoS ${qos})`))
}

/** SUBACK codes for one SUBSCRIBE, in filter order, whether or not some were refused (MQTT.js rejects then). */
export async function subscribeCodes(client: MqttClient, filters: string | string[] | Record<string, { qos: 0 | 1 | 2 }>, qos: 0 | 1 | 2 = 1): Promise<number[]> {
  try {
    const sent = typeof filters === 'object' && !Array.isArray(filters) ? client.subscribeAsync(filters) : client.subscribeAsync(filters, { qos })
    const granted = await within(sent, ACK_TIMEOUT_MS, awaited(client, `the SUBACK to SUBSCRIBE ${describeFilters(filters)}`))
    return granted.map((g) => g.qos)
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet
    if (!packet?.granted) throw err
    return [...packet.granted]
  }
}

/** 0 when the publish was acknowledged as a success, else the reason code it was refused with. */
export async function publishCode(client: MqttClient, topic: string, payload: string, opts: IClientPublishOptions = {}): Promise<number> {
  try {
    await publish(client, topic, payload, opts)
    return 0
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (typeof code !== 'number') throw err
    return code
  }
}

/** A fresh random device key (no ETH: fine for MQTT clients, not for sending transactions). */
export function freshDeviceKey(): string {
  return Wallet.createRandom().privateKey
}

export function addressOfKey(key: string): string {
  return new Wallet(key).address
}
