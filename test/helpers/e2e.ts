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
import { silentLogger } from '../../src/lib/log.js'
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
  /** Called with the client before it connects (to see what arrives right behind the CONNACK). */
  onCreate?: (client: MqttClient) => void
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

/**
 * connectClient, retried while the proxy is still syncing its policy (it fails closed until then): for
 * tests that start a proxy process and connect right away. Gives up after `withinMs`.
 */
export async function connectWhenReady(c: ConnectOptions & { key: string; url: string }, chain: { chainId: number; address: string }, withinMs = 15_000): Promise<MqttClient> {
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

// ---------------------------------------------------------------------------------------------------------
// Raw MQTT sockets and a recording TCP tap (auth / bans / credential-stripping tests)

import net from 'node:net'
import { generate as generatePacket, parser as mqttParser, type Packet as MqttPacket } from 'mqtt-packet'

/** A bare TCP connection speaking MQTT through mqtt-packet: exact control over every byte a client sends. */
export interface RawMqttClient {
  socket: net.Socket
  /** Every packet received so far, in order. */
  received: MqttPacket[]
  send(packet: MqttPacket): void
  /** The next packet not yet taken by next(); rejects on timeout, or when the connection closes first. */
  next(timeoutMs?: number): Promise<MqttPacket>
  /** Resolves when the peer has closed the connection. */
  closed: Promise<void>
  isClosed(): boolean
  destroy(): void
}

/**
 * Opens a raw MQTT connection to host:port. `prefix` is written first (e.g. a PROXY protocol header).
 * `version` selects how incoming packets are parsed (5 for MQTT 5 properties and reason codes).
 */
export function rawMqttClient(port: number, opts: { host?: string; version?: 3 | 4 | 5; prefix?: string | Buffer } = {}): Promise<RawMqttClient> {
  const version = opts.version ?? 5
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host ?? '127.0.0.1', port, noDelay: true })
    const parser = mqttParser({ protocolVersion: version })
    const received: MqttPacket[] = []
    let taken = 0
    let isClosed = false
    let wake: (() => void) | undefined
    let closedResolve!: () => void
    const closed = new Promise<void>((r) => (closedResolve = r))
    parser.on('packet', (p: MqttPacket) => {
      received.push(p)
      wake?.()
    })
    parser.on('error', (err: Error) => socket.destroy(err))
    socket.on('data', (chunk: Buffer) => parser.parse(chunk))
    socket.on('error', () => undefined)
    socket.on('close', () => {
      isClosed = true
      closedResolve()
      wake?.()
    })
    socket.once('connect', () => {
      if (opts.prefix !== undefined) socket.write(opts.prefix)
      resolve({
        socket,
        received,
        send: (packet) => socket.write(generatePacket(packet, { protocolVersion: version })),
        next: (timeoutMs = 10_000) =>
          new Promise<MqttPacket>((res, rej) => {
            const timer = setTimeout(() => {
              wake = undefined
              rej(new Error(`no packet within ${timeoutMs} ms (received so far: ${received.map((p) => p.cmd).join(', ') || 'none'})`))
            }, timeoutMs)
            const check = () => {
              if (taken < received.length) {
                clearTimeout(timer)
                wake = undefined
                res(received[taken++]!)
              } else if (isClosed) {
                clearTimeout(timer)
                wake = undefined
                rej(Object.assign(new Error('connection closed before the next packet'), { code: 'closed' }))
              }
            }
            wake = check
            check()
          }),
        closed,
        isClosed: () => isClosed,
        destroy: () => socket.destroy(),
      })
    })
    socket.once('error', reject)
  })
}

/** Decodes a byte stream of whole MQTT packets (e.g. what a tap recorded). */
export function decodeMqttStream(bytes: Buffer, version: 3 | 4 | 5): MqttPacket[] {
  const out: MqttPacket[] = []
  const p = mqttParser({ protocolVersion: version })
  p.on('packet', (packet: MqttPacket) => out.push(packet))
  p.on('error', (err: Error) => {
    throw err
  })
  p.parse(bytes)
  return out
}

/** One connection through a tap: what the client side sent towards the broker. */
export interface TapConnection {
  toBroker: Buffer[]
  bytes(): Buffer
}

/**
 * A recording TCP tap: listens on a free loopback port, forwards every connection to `target` (mqtt://host:port)
 * and keeps a copy of the bytes sent towards the target. Put it between the proxy and mosquitto.
 */
export async function recordingTcpTap(target: string): Promise<{ url: string; port: number; connections: TapConnection[]; close(): Promise<void> }> {
  const t = new URL(target)
  const connections: TapConnection[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((inbound) => {
    const conn: TapConnection = { toBroker: [], bytes: () => Buffer.concat(conn.toBroker) }
    connections.push(conn)
    const outbound = net.connect({ host: t.hostname, port: Number(t.port) })
    sockets.add(inbound).add(outbound)
    inbound.on('data', (chunk: Buffer) => {
      conn.toBroker.push(Buffer.from(chunk))
      outbound.write(chunk)
    })
    outbound.on('data', (chunk: Buffer) => inbound.write(chunk))
    const done = () => {
      inbound.destroy()
      outbound.destroy()
      sockets.delete(inbound)
      sockets.delete(outbound)
    }
    for (const s of [inbound, outbound]) {
      s.on('error', done)
      s.on('close', done)
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

// ------------------------------------------------------------------ raw MQTT, PROXY-protocol relay, codes
// (authorisation / live-policy / geo e2e tests)

import { createServer as rawNetCreateServer, connect as rawNetConnect, type Socket as RawNetSocket } from 'node:net'
import { FrameReader as RawFrameReader } from '../../src/lib/mqtt/framing.js'
import { decodePacket as rawDecodePacket, encodePacket as rawEncodePacket, type ConnackPacket as RawConnackPacket, type ConnectPacket as RawConnectPacket, type Packet as RawPacket } from '../../src/lib/mqtt/packets.js'
import { encodeProxyV1 as rawEncodeProxyV1, encodeProxyV2 as rawEncodeProxyV2 } from '../../src/lib/proxy/proxy-protocol.js'

/** A fresh random device key (no ETH: fine for MQTT clients, not for sending transactions). */
export function freshDeviceKey(): string {
  return Wallet.createRandom().privateKey
}

export function addressOfKey(key: string): string {
  return new Wallet(key).address
}

/** SUBACK codes for one SUBSCRIBE, in filter order, whether or not some were refused (MQTT.js rejects then). */
export async function subscribeCodes(client: MqttClient, filters: string | string[] | Record<string, { qos: 0 | 1 | 2 }>, qos: 0 | 1 | 2 = 1): Promise<number[]> {
  try {
    const granted = typeof filters === 'object' && !Array.isArray(filters) ? await client.subscribeAsync(filters) : await client.subscribeAsync(filters, { qos })
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
    await client.publishAsync(topic, payload, { qos: 1, ...opts })
    return 0
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (typeof code !== 'number') throw err
    return code
  }
}

export interface RawReceived {
  packet: RawPacket
  bytes: Buffer
  taken: boolean
}

/** An MQTT connection over a plain socket, for packets MQTT.js cannot produce. */
export interface RawMqtt {
  socket: RawNetSocket
  version: 4 | 5
  clientId: string
  connack: RawConnackPacket
  received: RawReceived[]
  /** Frames that did not decode as valid MQTT (kept as bytes). */
  malformed: Buffer[]
  send(packet: RawPacket): void
  /** Resolves with the first not yet taken packet that matches (and marks it taken). */
  expect(match: (p: RawPacket) => boolean, timeoutMs?: number, what?: string): Promise<RawReceived>
  isClosed(): boolean
  whenClosed(timeoutMs?: number): Promise<void>
  end(): void
}

export interface RawConnectOptions {
  host?: string
  port: number
  key: string
  chain: { chainId: number; address: string }
  version?: 4 | 5
  clientId?: string
  clean?: boolean
  will?: RawConnectPacket['will']
  properties?: RawConnectPacket['properties']
  /** Written before CONNECT on the same write (e.g. a PROXY protocol header). */
  prefix?: Buffer
  /** Send no credential at all. */
  noCredential?: boolean
}

/** Connects, sends a credentialed CONNECT and resolves with the CONNACK (success or not). Rejects if the socket closes first. */
export function rawMqttConnect(o: RawConnectOptions): Promise<RawMqtt> {
  const version = o.version ?? 5
  const clientId = o.clientId ?? `raw-${Math.random().toString(36).slice(2, 10)}`
  const deployment = { chainId: BigInt(o.chain.chainId), contract: o.chain.address }
  const cred = signCredential({ signer: o.key, ...deployment, clientId, expiresAt: Math.floor(Date.now() / 1000) + 3600 })
  const connect: RawConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: o.clean ?? true, keepalive: 0, clientId }
  if (o.will) connect.will = o.will
  if (version === 5) {
    connect.properties = { ...o.properties }
    if (!o.noCredential) connect.properties.userProperties = toUserProperties(cred)
  } else if (!o.noCredential) {
    const up = toUsernamePassword(cred)
    connect.username = up.username
    connect.password = Buffer.from(up.password)
  }
  const socket = rawNetConnect({ host: o.host ?? '127.0.0.1', port: o.port })
  const reader = new RawFrameReader({ maxPacketSize: 16 * 1024 * 1024 })
  const received: RawReceived[] = []
  let closed = false
  const malformed: Buffer[] = []
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const frame of reader.push(chunk)) {
        try {
          received.push({ packet: rawDecodePacket(frame.bytes, version), bytes: frame.bytes, taken: false })
        } catch {
          malformed.push(frame.bytes)
        }
      }
    } catch {
      socket.destroy()
    }
  })
  socket.on('error', () => socket.destroy())
  socket.on('close', () => {
    closed = true
  })
  const raw: RawMqtt = {
    socket,
    version,
    clientId,
    connack: undefined as unknown as RawConnackPacket,
    received,
    malformed,
    send: (p) => {
      socket.write(rawEncodePacket(p, version))
    },
    expect: async (match, timeoutMs = 5_000, what = 'packet') => {
      let found: RawReceived | undefined
      await waitFor(() => (found = received.find((r) => !r.taken && match(r.packet))) !== undefined, timeoutMs, what)
      found!.taken = true
      return found!
    },
    isClosed: () => closed,
    whenClosed: (timeoutMs = 5_000) => waitFor(() => closed, timeoutMs, 'socket closed'),
    end: () => {
      socket.destroy()
    },
  }
  socket.on('connect', () => socket.write(Buffer.concat([o.prefix ?? Buffer.alloc(0), rawEncodePacket(connect, version)])))
  return (async () => {
    try {
      await waitFor(() => closed || received.some((r) => r.packet.cmd === 'connack'), 5_000, 'CONNACK')
      const r = await raw.expect((p) => p.cmd === 'connack', 1, 'CONNACK')
      raw.connack = r.packet as RawConnackPacket
    } catch (err) {
      socket.destroy()
      if (closed) throw Object.assign(new Error('connection closed before CONNACK'), { code: 'closed' })
      throw err
    }
    return raw
  })()
}

export interface ProxyProtocolRelay {
  port: number
  url: string
  /** Connections accepted so far. */
  connections: number
  close(): Promise<void>
}

/**
 * A local TCP relay standing in for a load balancer: every connection to it is forwarded to `target` behind
 * a PROXY protocol header naming `source` as the client address (v1 text or v2 binary).
 */
export async function proxyProtocolRelay(target: { host?: string; port: number }, source: string, version: 1 | 2 = 1): Promise<ProxyProtocolRelay> {
  const sockets = new Set<RawNetSocket>()
  const relay: ProxyProtocolRelay = { port: 0, url: '', connections: 0, close: async () => {} }
  const server = rawNetCreateServer((down) => {
    relay.connections++
    const up = rawNetConnect({ host: target.host ?? '127.0.0.1', port: target.port })
    sockets.add(down)
    sockets.add(up)
    const src = { address: source, port: down.remotePort ?? 40_000 }
    const dst = { address: target.host ?? '127.0.0.1', port: target.port }
    up.write(version === 1 ? rawEncodeProxyV1(src, dst) : rawEncodeProxyV2(src, dst))
    down.pipe(up)
    up.pipe(down)
    // Like a load balancer: a FIN is passed on after the data before it (pipe ends the other side); errors reset both.
    const kill = () => {
      down.destroy()
      up.destroy()
    }
    down.on('error', kill)
    up.on('error', kill)
    for (const [a, b] of [[down, up], [up, down]] as const) {
      a.on('close', () => {
        sockets.delete(a)
        if (!b.destroyed) b.end()
        setTimeout(() => b.destroy(), 1_000).unref()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  relay.port = (server.address() as { port: number }).port
  relay.url = `mqtt://127.0.0.1:${relay.port}`
  relay.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  return relay
}

// ---------------------------------------------------------------------------------------------------------
// The proxy as its own process (`flytrap proxy start`, built CLI): a crash shows as the process exiting

import { spawn as spawnChild, type ChildProcess } from 'node:child_process'
import { mkdtempSync as mkdtempDir } from 'node:fs'
import { tmpdir as osTmpdir } from 'node:os'
import { join as joinPath } from 'node:path'

export interface CliProxy {
  child: ChildProcess
  port: number
  url: string
  /** Everything the process wrote to stderr (JSON log lines, or a crash's stack trace). */
  stderr(): string
  alive(): boolean
  stop(): Promise<void>
}

/**
 * Starts `bin/run.js proxy start --json` against the fixture's chain and broker (run `npx tsc -p tsconfig.json`
 * first so dist/ is current). Resolves once it printed its listening address.
 */
export async function startCliProxy(e: { chain: { rpcUrl: string; address: string; deployBlock: number }; mosquitto: { url: string } }, extraArgs: string[] = []): Promise<CliProxy> {
  const bin = new URL('../../bin/run.js', import.meta.url).pathname
  const args = [bin, 'proxy', 'start', '--json', '--listen', '127.0.0.1:0', '--broker', e.mosquitto.url, '--rpc', e.chain.rpcUrl, '--contract', e.chain.address, '--from-block', String(e.chain.deployBlock), '--poll-interval', '100ms', '--log-level', 'error', ...extraArgs]
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }
  for (const k of ['FLYTRAP_KEY', 'FLYTRAP_REPORTER_KEY', 'FLYTRAP_BAN_KEY', 'FLYTRAP_LISTEN', 'FLYTRAP_BROKER', 'FLYTRAP_METRICS']) delete env[k]
  const child = spawnChild(process.execPath, args, { cwd: mkdtempDir(joinPath(osTmpdir(), 'flytrap-cli-proxy-')), env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  const alive = () => child.exitCode === null && child.signalCode === null
  try {
    await waitFor(() => stdout.includes('\n') || !alive(), 30_000, 'flytrap proxy start to listen')
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  if (!alive()) throw new Error(`flytrap proxy start exited (${child.exitCode}):\n${stdout}\n${stderr}`)
  const result = JSON.parse(stdout.split('\n')[0]!) as { listening: { port: number }[] }
  const port = result.listening[0]!.port
  return {
    child,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    stderr: () => stderr,
    alive,
    stop: async () => {
      if (!alive()) return
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(t)
    },
  }
}

// ---------------------------------------------------------------------------------------------------------
// Long-running CLI commands (`flytrap proxy start`, `flytrap dev`) as child processes of the built binary

import { spawn as spawnLong, type ChildProcess as LongChild } from 'node:child_process'

export interface LongCli {
  child: LongChild
  stdout(): string
  stderr(): string
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The first complete stdout line, parsed as JSON; rejects if the process exits first or after timeoutMs. */
  firstJsonLine<T = Record<string, unknown>>(timeoutMs?: number): Promise<T>
  /** Sends `signal` and waits up to timeoutMs for the exit; a process still running then is SIGKILLed (hung: true). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; hung: boolean }>
}

/** Spawns `bin/run.js <args>` (dist/ must be current) without FLYTRAP_* variables from the environment. */
export function spawnCli(args: string[], opts: { cwd: string; env?: Record<string, string> }): LongCli {
  const bin = new URL('../../bin/run.js', import.meta.url).pathname
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }
  for (const k of Object.keys(env)) if (k.startsWith('FLYTRAP_')) delete env[k]
  Object.assign(env, opts.env)
  const child = spawnLong(process.execPath, [bin, ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })))
  let done = false
  void exited.then(() => (done = true))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    firstJsonLine: async <T,>(timeoutMs = 30_000) => {
      await waitFor(() => out.includes('\n') || done, timeoutMs, `a JSON line from flytrap ${args.join(' ')}`).catch((e: Error) => {
        throw new Error(`${e.message}\nstdout: ${out}\nstderr: ${err}`)
      })
      if (!out.includes('\n')) throw new Error(`flytrap ${args.join(' ')} exited (${child.exitCode}) before printing:\n${err}`)
      return JSON.parse(out.slice(0, out.indexOf('\n'))) as T
    },
    stop: async (signal = 'SIGTERM', timeoutMs = 15_000) => {
      if (!done) child.kill(signal)
      let hung = false
      const t = setTimeout(() => {
        hung = true
        child.kill('SIGKILL')
      }, timeoutMs)
      const r = await exited
      clearTimeout(t)
      return { ...r, hung }
    },
  }
}
