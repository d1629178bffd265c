/**
 * Everything `startProxy` accepts. Every limit is explicit; defaults are in DEFAULTS and documented in the
 * README. The CLI (`flytrap proxy start`) maps flags 1:1 onto these fields.
 */
import type { FlyTrapClient } from '../chain/client.js'
import type { Logger } from '../log.js'
import type { BanSink } from './bans.js'
import type { DecisionEvent } from '../policy/types.js'
import { DEFAULT_MAX_LIFETIME_SEC } from '../auth/credential.js'

export interface ListenerOptions {
  /** host:port, e.g. "0.0.0.0:1883" or "[::]:1883"; port 0 picks a free one. */
  listen: string
  tls?: {
    cert: string | Buffer
    key: string | Buffer
    /** CA bundle to verify client certificates; with requireClientCert the handshake fails without one. */
    ca?: string | Buffer
    requireClientCert?: boolean
  }
  /** Read a PROXY protocol v1/v2 header first — only from peers in trustedProxies (others are refused). */
  proxyProtocol?: boolean
  trustedProxies?: string[]
}

export interface UpstreamOptions {
  /** mqtt://host:port or mqtts://host:port */
  url: string
  /** CA bundle for mqtts:// upstreams (system CAs otherwise). */
  ca?: string | Buffer
  /** Skip certificate verification. Only when explicitly asked for. */
  insecure?: boolean
  /** Server name for SNI/verification when it differs from the URL host. */
  servername?: string
  /**
   * The proxy's own identity towards this broker, presented on every upstream CONNECT (3.1.1 and 5) and by
   * the start-up check. With usernameFromAddress the device's address is the username of its sessions and
   * `username` is used only by the proxy's own check and probes; the password is always the proxy's.
   */
  username?: string
  password?: string | Buffer
  /** Client certificate and key (PEM, or paths) for mqtts:// brokers that authenticate the proxy by certificate. */
  cert?: string | Buffer
  key?: string | Buffer
}

export interface BanOptions {
  /** Failures (refused auth or packets) from one address within windowMs that trigger a ban. */
  threshold: number
  windowMs: number
  durationMs: number
  /** Secret for the keyed hash of IP addresses shared on chain (proxies on one contract share it). */
  subjectKey?: string
  /** Chain writes for bans are batched: at most one transaction per this many ms. */
  reportIntervalMs: number
  /** At most this many subjects per transaction. */
  reportBatchMax: number
}

export interface ProxyOptions {
  listeners: ListenerOptions[]
  /**
   * The broker, or several: a new session goes to the first healthy one in this order; one that fails to
   * connect or refuses the proxy is marked down for a back-off (see proxy/upstreams.ts).
   */
  upstream: UpstreamOptions | UpstreamOptions[]
  /** Back-off of a broker marked down before it is probed again [default: 1 s, doubling to 30 s]. */
  upstreamBackoff?: { minMs: number; maxMs: number }
  /** Read-only contract client for policy sync. */
  contract: FlyTrapClient
  /**
   * Where bans go on chain: the durable outbox (what `proxy start` passes), or a contract client bound to the
   * reporter key; without one, bans stay local to this proxy.
   */
  reporter?: BanSink
  chainId: number
  /** Block to start reading events from (the deployment block). */
  fromBlock?: number
  /** How often to poll for new blocks/events (also the backstop with rpcWs). */
  pollIntervalMs: number
  /**
   * ws:// or wss:// RPC of the same chain: the contract's logs arrive by `eth_subscribe` and wake the policy
   * poll at once (revocation reaches live sessions within about one block); polling alone whenever the
   * subscription is not live. `proxy start --rpc-ws` (or a ws:// --rpc).
   */
  rpcWs?: string
  /** Reconnect backoff of the rpcWs subscription [default: 250 ms doubling to 30 s]. */
  rpcWsBackoffMs?: { min: number; max: number }
  /** Decision for topics no registered name or filter matches. */
  unregisteredTopics: 'deny' | 'allow'
  /** Serve (refuse nothing for lack of policy) before the first sync succeeded. Default false: fail closed. */
  failOpen: boolean
  /** Accept the replayable legacy credential (signature over the address alone). */
  allowLegacyCredentials: boolean
  /** Upstream username = the verified address, so broker tooling sees it. */
  usernameFromAddress: boolean
  /** Longest credential lifetime accepted. */
  maxCredentialLifetimeSec: number
  /** Worker threads verifying CONNECT signatures (0 = on the main thread) [default: cores - 1, at most 4]. */
  authWorkers?: number
  bans: BanOptions
  limits: {
    maxPacketSize: number
    connectTimeoutMs: number
    maxConnections: number
    maxConnectionsPerIp: number
    /** A peer that does not drain within this time is disconnected. */
    drainTimeoutMs: number
  }
  /**
   * Makes decisions durable before they are acknowledged: called for every decision, it returns a promise
   * that resolves once the decision is durable (or null: nothing to wait for). The session holds what
   * acknowledges it until then — CONNACK, SUBACK, PUBACK/PUBREC, a delivery on a sensitive topic — in
   * order, per connection; a rejection ends that connection unacknowledged. The audit journal provides it
   * (`openAccountability(...).durable`); without it nothing waits.
   */
  durable?: (e: DecisionEvent) => Promise<unknown> | null
  /**
   * Which allowed deliveries are told as decisions (and so journaled): 'sensitive' (default) only those on
   * sensitive topics; 'all' every one (`proxy start --journal-deliveries all`; the recorder coalesces them).
   */
  decisionDeliveries?: 'sensitive' | 'all'
  /** host:port for the Prometheus /metrics endpoint. */
  metrics?: string
  logger?: Logger
}

export const DEFAULTS = {
  pollIntervalMs: 1_000,
  unregisteredTopics: 'deny',
  failOpen: false,
  allowLegacyCredentials: false,
  usernameFromAddress: false,
  maxCredentialLifetimeSec: DEFAULT_MAX_LIFETIME_SEC,
  bans: { threshold: 5, windowMs: 60_000, durationMs: 5 * 60_000, reportIntervalMs: 60_000, reportBatchMax: 100 },
  limits: { maxPacketSize: 1024 * 1024, connectTimeoutMs: 10_000, maxConnections: 100_000, maxConnectionsPerIp: 1_000, drainTimeoutMs: 30_000 },
} as const satisfies Partial<ProxyOptions>
