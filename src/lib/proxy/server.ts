/**
 * `startProxy(options)`: listeners (TCP/TLS, optional PROXY protocol), connection limits, the in-memory
 * policy kept in step with the contract, bans shared through the contract, metrics, graceful shutdown.
 * Usable as a library (`import { startProxy } from 'flytrap'`) and from `flytrap proxy start`.
 */
import { EventEmitter } from 'node:events'
import net, { type Server, type Socket } from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import { PolicyStore } from '../policy/store.js'
import { startPolicySync } from '../policy/sync.js'
import { countryOf, preloadGeo } from '../geo/lookup.js'
import { BanGuard } from './bans.js'
import { createProxyMetrics, DecisionTally, scrapeText, serveMetrics, type ProxyMetrics, type Readiness } from './metrics.js'
import { localAdmin, type AuditBacklog, type LocalAdmin } from './admin-local.js'
import { isTrusted, normalizeIp } from '../net/ip.js'
import { parseProxyHeader } from './proxy-protocol.js'
import { silentLogger, type Logger } from '../log.js'
import type { ListenerOptions, ProxyOptions } from './options.js'
import type { DecisionEvent, ProxyEventName, ProxyEvents } from '../policy/types.js'
import { Session, type SessionContext } from './session.js'
import { defaultAuthWorkers, VerifyPool } from './verify-pool.js'
import { brokerList, startUpstreams } from './upstreams.js'

export interface ProxyAddress {
  host: string
  port: number
  tls: boolean
}

export interface ProxyHandle {
  /** The first listener's address. */
  address: { host: string; port: number }
  addresses: ProxyAddress[]
  metricsAddress?: { host: string; port: number }
  /** Stops accepting, tells v5 clients the server is shutting down (0x8B), closes sessions, stops sync. */
  close(opts?: { graceMs?: number }): Promise<void>
  /** The proxy's events (policy/types.ts ProxyEvents): decision, ban, session-open, session-close, policy-synced. */
  on<K extends ProxyEventName>(event: K, listener: (...args: ProxyEvents[K]) => void): this
  off<K extends ProxyEventName>(event: K, listener: (...args: ProxyEvents[K]) => void): this
  once<K extends ProxyEventName>(event: K, listener: (...args: ProxyEvents[K]) => void): this
  /**
   * `block`: the block the policy is consistent with, null before the first load. `mode`: whether a live
   * eth_subscribe (rpcWs) wakes the policy poll, or the poll timer alone keeps it in step.
   */
  policyStatus(): { synced: boolean; block: number | null; lastError?: string; mode: 'subscription' | 'polling'; subscriptions: number }
  /** Started with a `durable` hook: its decisions reach the journal through it (not only as events). */
  readonly journaled: boolean
  /** Open sessions right now. */
  sessionCount(): number
  /**
   * Applies a ban made elsewhere (another worker process of this proxy): ends matching sessions and, with
   * `report`, records it on chain through this proxy's reporter.
   */
  ban(ban: { ip?: string; address?: string; until: number }, opts?: { report?: boolean }): void
  readonly metrics: ProxyMetrics
  /** This process's part of the admin API (admin-server.ts serves it; cluster.ts gathers the workers'). */
  readonly admin: LocalAdmin
  /** Policy synced and a broker up: what /readyz answers. */
  readiness(): Readiness
}

/** What startProxy's admin part needs from around it (`proxy start` wires the audit side in). */
export interface ProxyAdminOptions {
  /** This process's worker index (0 without --workers). */
  worker?: number
  /** The journal and outbox backlog, from the audit side (proxy/ never imports audit/). */
  auditBacklog?: () => AuditBacklog | null
}

/** host:port → [host, port]; accepts [v6]:port. */
export function splitHostPort(value: string): [string, number] {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:]*):(\d+)$/.exec(value)
  if (!m) throw new Error(`"${value}" is not host:port`)
  return [m[1] || '0.0.0.0', Number(m[2])]
}

export async function startProxy(options: ProxyOptions & ProxyAdminOptions): Promise<ProxyHandle> {
  const log: Logger = options.logger ?? silentLogger
  const events = new EventEmitter<ProxyEvents>()
  const metrics = createProxyMetrics()
  const store = new PolicyStore({ unregisteredTopics: options.unregisteredTopics, failOpen: options.failOpen })
  const sessions = new Set<Session>()
  /**
   * Accepted client sockets and their IP, until the socket has closed (a refused one lingers briefly after its
   * session ended): the connection limits count these, and each is released exactly once, on its 'close'.
   */
  const accepted = new Map<Socket, string>()
  const perIp = new Map<string, number>()
  /** Every socket of the process — inbound before and after TLS/PROXY, and upstream — for shutdown to end at its deadline. */
  const sockets = new Set<Socket>()
  // One listener function for every socket ('close' comes once; `this` is the socket): no closure per socket.
  function untrack(this: Socket): void {
    sockets.delete(this)
  }
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', untrack)
    return socket
  }
  const bans = new BanGuard({
    bans: options.bans,
    reporter: options.reporter,
    sessions,
    logger: log,
    onBan: (e) => {
      if (e.source === 'local') metrics.bans.inc({ source: 'local' })
      events.emit('ban', e)
    },
    onReportsDropped: () => metrics.banReportsDropped.inc(),
  })
  const contractAddress = options.contract.address
  preloadGeo()

  // ---- policy, kept in step with the contract
  const sync = startPolicySync({
    client: options.contract,
    store,
    fromBlock: options.fromBlock ?? 0,
    pollIntervalMs: options.pollIntervalMs,
    ...(options.rpcWs ? { wsUrl: options.rpcWs } : {}),
    ...(options.rpcWsBackoffMs ? { wsBackoffMs: options.rpcWsBackoffMs } : {}),
    logger: log,
    onBan: (subject: string, until: number) => bans.fromChain(subject, until),
  })
  store.on('change', () => {
    for (const s of sessions) s.recheck()
  })
  void sync.ready.then(() => {
    const st = sync.status()
    if (st.block === null) return // closed before the first load: it never synced
    log.info('policy synced', { block: st.block })
    events.emit('policy-synced', { block: st.block })
  })

  const durable = options.durable
  // Decisions run per packet: counted in plain slots, moved into prom-client at collection time.
  const tally = new DecisionTally(metrics.decisions)
  const onDecision = (e: DecisionEvent) => {
    tally.count(e.kind, e.allowed, e.reason)
    if (!e.allowed) log.info('refused', { ...e })
    else if (log.enabled('debug')) log.debug('allowed', { ...e })
    events.emit('decision', e)
    return durable ? durable(e) : null
  }

  const upstreams = startUpstreams(options, { logger: log, metrics, track, sessions: () => sessions })
  // CONNECT latency: accept → CONNACK; broker latency: the proxy's CONNECT written → its CONNACK. Per session
  // only while it connects; `openedAt` then holds when it opened (for the admin API's session list).
  const acceptedAt = new Map<Session, number>()
  const upstreamAt = new Map<Session, number>()
  const openedAt = new Map<Session, number>()
  const connackSeries = new Map<string, { observe(v: number): void }>()
  const timedPolicy = timePolicy(store, tally, metrics)
  const auth = { chainId: BigInt(options.chainId), contract: contractAddress, maxLifetimeSec: options.maxCredentialLifetimeSec, allowLegacy: options.allowLegacyCredentials }
  const pool = new VerifyPool(options.authWorkers ?? defaultAuthWorkers(), auth)
  const ctx: SessionContext = {
    auth,
    verify: (fields) => pool.verify(fields),
    policy: timedPolicy,
    failOpen: options.failOpen,
    usernameFromAddress: options.usernameFromAddress,
    maxPacketSize: options.limits.maxPacketSize,
    connectTimeoutMs: options.limits.connectTimeoutMs,
    drainTimeoutMs: options.limits.drainTimeoutMs,
    upstreams,
    countryOf,
    isBanned: (ip, address) => bans.isBanned(ip, address),
    recordFailure: (ip, address) => bans.recordFailure(ip, address),
    onDecision,
    allDeliveries: options.decisionDeliveries === 'all',
    onUpstreamConnect: (s) => upstreamAt.set(s, performance.now()),
    onOpen: (s) => {
      const now = performance.now()
      const t0 = acceptedAt.get(s)
      if (t0 !== undefined) metrics.connectSeconds.observe((now - t0) / 1000)
      const t1 = upstreamAt.get(s)
      if (t1 !== undefined && s.broker) {
        let h = connackSeries.get(s.broker.url)
        if (!h) connackSeries.set(s.broker.url, (h = metrics.upstreamConnackSeconds.labels({ broker: s.broker.url })))
        h.observe((now - t1) / 1000)
      }
      acceptedAt.delete(s)
      upstreamAt.delete(s)
      openedAt.set(s, Date.now())
      metrics.connections.inc({ outcome: 'open' })
      events.emit('session-open', { ip: s.ip, address: s.address, clientId: s.clientId })
    },
    onClose: (s) => {
      if (sessions.delete(s)) metrics.connectionsOpen.set(sessions.size)
      acceptedAt.delete(s)
      upstreamAt.delete(s)
      openedAt.delete(s)
      events.emit('session-close', { ip: s.ip, address: s.address, clientId: s.clientId, reason: s.closeReason })
    },
    onProtocolError: (s, where, err) => {
      metrics.malformed.inc({ reason: `${where}:${(err as { reasonCode?: number }).reasonCode ?? 'other'}` })
      log.info('protocol error', { where, ip: s.ip, address: s.address, error: err.message })
    },
  }

  // ---- listeners
  function release(this: Socket): void {
    const ip = accepted.get(this)
    if (ip === undefined) return
    accepted.delete(this)
    const n = (perIp.get(ip) ?? 1) - 1
    if (n <= 0) perIp.delete(ip)
    else perIp.set(ip, n)
  }
  const accept = (socket: Socket, ip: string, initial?: Buffer) => {
    if (closing || socket.destroyed) return socket.destroy()
    const count = perIp.get(ip) ?? 0
    if (accepted.size >= options.limits.maxConnections || count >= options.limits.maxConnectionsPerIp) {
      metrics.connections.inc({ outcome: 'limit' })
      log.info('connection limit', { ip, total: accepted.size, fromIp: count })
      return socket.destroy()
    }
    perIp.set(ip, count + 1)
    accepted.set(socket, ip)
    socket.on('close', release)
    const t0 = performance.now()
    const session = new Session(socket, ip, ctx, initial)
    if (session.phase !== 'closed') acceptedAt.set(session, t0)
    sessions.add(session)
    metrics.connectionsOpen.set(sessions.size)
  }

  const servers: { server: Server; tls: boolean }[] = []
  for (const listener of options.listeners) {
    const server = createListener(listener, accept, log, options.limits.connectTimeoutMs)
    server.on('connection', track)
    // Node reports a failed TLS handshake here and leaves the socket open: end it.
    server.on('tlsClientError', (err: Error, socket: Socket) => {
      log.debug('TLS handshake failed', { peer: peerIp(socket.remoteAddress), error: err.message })
      socket.destroy()
    })
    const [host, port] = splitHostPort(listener.listen)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (err) => log.error('listener error', { error: err.message }))
    servers.push({ server, tls: Boolean(listener.tls) })
  }
  const addresses = servers.map(({ server, tls: isTls }) => {
    const a = server.address() as net.AddressInfo
    return { host: a.address, port: a.port, tls: isTls }
  })

  metrics.refresh = () => {
    const st = sync.status()
    metrics.synced.set(st.synced ? 1 : 0)
    metrics.block.set(st.block ?? 0)
    metrics.syncLag.set(st.lastSyncAt ? (Date.now() - st.lastSyncAt) / 1000 : -1)
    metrics.syncLagBlocks.set(st.lagBlocks)
    metrics.bansActive.set(bans.activeCount())
    upstreams.refreshMetrics()
    tally.flush()
  }
  const readiness = (): Readiness => {
    const checks = { policySynced: sync.status().synced, brokerUp: upstreams.status().some((u) => u.state === 'up') }
    return { ready: checks.policySynced && checks.brokerUp, checks }
  }
  const metricsServer = options.metrics ? await serveMetrics(options.metrics, { metrics: () => scrapeText(metrics), readiness: async () => readiness() }) : undefined
  const admin = localAdmin({ worker: options.worker ?? 0, sessions, openedAt, bans, policy: store, syncStatus: () => sync.status(), upstreams, audit: options.auditBacklog })

  let closing = false
  const handle: ProxyHandle = Object.assign(events, {
    address: { host: addresses[0]!.host, port: addresses[0]!.port },
    addresses,
    metricsAddress: metricsServer?.address,
    metrics,
    admin,
    readiness,
    journaled: Boolean(durable),
    policyStatus: () => {
      const st = sync.status()
      return { synced: st.synced, block: st.block, lastError: st.lastError, mode: st.mode, subscriptions: st.subscriptions }
    },
    sessionCount: () => sessions.size,
    ban: (b: { ip?: string; address?: string; until: number }, opts?: { report?: boolean }) => bans.apply(b, opts),
    close: async (opts: { graceMs?: number } = {}) => {
      if (closing) return
      closing = true
      // Stop accepting; server.close() only calls back once every connection has ended, so end them first.
      const closed = Promise.all(servers.map(({ server }) => new Promise<void>((r) => server.close(() => r()))))
      for (const s of [...sessions]) s.shutdown()
      const deadline = Date.now() + (opts.graceMs ?? 2_000)
      while ((sessions.size > 0 || sockets.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      // The grace is over: whatever is left (a session, a lingering refusal, a TLS handshake, a PROXY header) goes now.
      for (const s of [...sessions]) s.close('shutdown-timeout')
      for (const socket of sockets) socket.destroy()
      await closed
      // A policy poll in flight against a slow RPC does not hold the shutdown: stop() lets no new poll start.
      await Promise.race([sync.stop(), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())])
      upstreams.close()
      await pool.close()
      await bans.close()
      await metricsServer?.close()
      log.info('proxy stopped')
    },
  })
  log.info('proxy listening', { addresses, broker: brokerList(options).map((u) => u.url).join(' '), contract: contractAddress, chainId: options.chainId })
  return handle
}

/** A listener; a peer gets `timeoutMs` (the CONNECT timeout) for its TLS handshake and its PROXY header. */
function createListener(opts: ListenerOptions, accept: (s: Socket, ip: string, initial?: Buffer) => void, log: Logger, timeoutMs: number): Server {
  const onSocket = (socket: Socket) => {
    const peer = peerIp(socket.remoteAddress)
    if (!opts.proxyProtocol) return accept(socket, peer)
    if (!isTrusted(peer, opts.trustedProxies ?? [])) {
      log.info('PROXY protocol from an untrusted peer refused', { peer })
      return socket.destroy()
    }
    // Read the PROXY header before anything else; the rest of the chunk belongs to MQTT.
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => socket.destroy(), timeoutMs)
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      let parsed: ReturnType<typeof parseProxyHeader>
      try {
        parsed = parseProxyHeader(buf)
      } catch (err) {
        clearTimeout(timer)
        log.info('bad PROXY protocol header', { peer, error: (err as Error).message })
        return socket.destroy()
      }
      if (!parsed.done) return
      clearTimeout(timer)
      socket.off('data', onData)
      // The session reads from here on (and pauses the socket itself while it decides the CONNECT).
      const ip = parsed.source ? peerIp(parsed.source.address) : peer
      accept(socket, ip, buf.subarray(parsed.consumed))
    }
    socket.on('data', onData)
    socket.on('error', () => socket.destroy())
    socket.once('close', () => clearTimeout(timer))
  }
  if (!opts.tls) return net.createServer({ noDelay: true }, onSocket)
  return tls.createServer(
    {
      cert: readMaybe(opts.tls.cert),
      key: readMaybe(opts.tls.key),
      ca: opts.tls.ca ? readMaybe(opts.tls.ca) : undefined,
      requestCert: Boolean(opts.tls.ca || opts.tls.requireClientCert),
      rejectUnauthorized: Boolean(opts.tls.requireClientCert),
      handshakeTimeout: timeoutMs,
    },
    (s) => onSocket(s),
  )
}

function readMaybe(v: string | Buffer): Buffer {
  return Buffer.isBuffer(v) ? v : v.includes('-----BEGIN') ? Buffer.from(v) : readFileSync(v)
}

/** One spelling per address (net/ip.ts), so bans, limits and GeoIP see one form; a non-IP string is kept as it is. */
function peerIp(ip: string | undefined): string {
  return normalizeIp(ip ?? '') ?? ip ?? ''
}

/**
 * The policy as the sessions see it, with one decision in DecisionTally.SAMPLE timed into
 * flytrap_decision_duration_seconds (two clock reads per sample; nothing on the others).
 */
function timePolicy(store: PolicyStore, tally: DecisionTally, metrics: ProxyMetrics): SessionContext['policy'] {
  const pub = metrics.decisionSeconds.labels({ kind: 'publish' })
  const sub = metrics.decisionSeconds.labels({ kind: 'subscribe' })
  const rcv = metrics.decisionSeconds.labels({ kind: 'deliver' })
  return {
    get synced() {
      return store.synced
    },
    canPublish(a, t, c, n) {
      if (!tally.sample()) return store.canPublish(a, t, c, n)
      const t0 = performance.now()
      const d = store.canPublish(a, t, c, n)
      pub.observe((performance.now() - t0) / 1000)
      return d
    },
    canSubscribe(a, f, c, n) {
      if (!tally.sample()) return store.canSubscribe(a, f, c, n)
      const t0 = performance.now()
      const d = store.canSubscribe(a, f, c, n)
      sub.observe((performance.now() - t0) / 1000)
      return d
    },
    canReceive(a, t, c, n) {
      if (!tally.sample()) return store.canReceive(a, t, c, n)
      const t0 = performance.now()
      const d = store.canReceive(a, t, c, n)
      rcv.observe((performance.now() - t0) / 1000)
      return d
    },
  }
}
