/** The policy decisions the proxy asks for, answered from memory (never from the chain on the packet path). */

export type DecisionReason =
  | 'owner' // the address owns an effective registered name/filter covering the topic (namespace.ts)
  | 'granted' // an unexpired grant covers it
  | 'unregistered-allowed' // no effective registered name/filter matches and the operator allows unregistered topics
  | 'unregistered' // no effective registered name/filter matches (deny by default)
  | 'no-grant' // registered, but nothing grants this address this role
  | 'expired' // a grant existed but has lapsed
  | 'country' // a grant exists but not from the client's country
  | 'not-synced' // the policy was never loaded (fail closed)
  | 'invalid' // not a valid topic name/filter

export interface Decision {
  allowed: boolean
  reason: DecisionReason
  /** The registered name/filter that decided (for logs and the audit journal). */
  rule?: string
  /** Any effective registered name/filter matching the topic is flagged sensitive. */
  sensitive: boolean
}

export interface PolicyView {
  /** May `address` publish on topic name `topic` from `country` (ISO alpha-2 or null when unknown)? */
  canPublish(address: string, topic: string, country: string | null, nowSec?: number): Decision
  /** May `address` subscribe to plain filter `filter` (strip $share/ first)? Every topic it can match must be granted. */
  canSubscribe(address: string, filter: string, country: string | null, nowSec?: number): Decision
  /** May `address` receive a delivery on topic name `topic`? (Defence in depth on broker→client PUBLISH.) */
  canReceive(address: string, topic: string, country: string | null, nowSec?: number): Decision
}

/** What the proxy decided, as it tells its listeners (the audit trail, metrics, logs). */
export type DecisionKind = 'connect' | 'publish' | 'subscribe' | 'deliver' | 'will'

export interface DecisionEvent {
  kind: DecisionKind
  allowed: boolean
  reason: string
  ip: string
  address?: string
  /**
   * False when `address` is only claimed: a refused CONNECT whose credential did not verify (bad signature,
   * malformed, expired, wrong client id…). Absent = the address was authenticated (or there is none).
   */
  verified?: boolean
  clientId?: string
  topic?: string
  sensitive?: boolean
  /** Extra detail for logs (never credentials or payloads). */
  detail?: string
}

/** A session that opened or ended, as the proxy tells its listeners. */
export interface SessionEvent {
  ip: string
  address?: string
  clientId?: string
  /** Why it ended (session-close only). */
  reason?: string
}

/** A ban that came into force: made by this proxy ('local') or read from the contract ('chain'). */
export interface BanEvent {
  /** The banned subject: a clear IP (local only), an IP's keyed hash, or a left-padded address (bans.ts). */
  subject: string
  /** Epoch milliseconds (exclusive). */
  until: number
  source: 'local' | 'chain'
  /** Local bans: the IP or the address that failed too often. */
  ip?: string
  address?: string
}

/**
 * The seam between the proxy and its listeners (the audit trail, cluster workers, the CLI): each event's
 * name and the arguments its listeners get, in the form Node's `EventEmitter<ProxyEvents>` takes.
 */
export interface ProxyEvents {
  decision: [DecisionEvent]
  ban: [BanEvent]
  'session-open': [SessionEvent]
  'session-close': [SessionEvent]
  'policy-synced': [{ block: number }]
  /** EventEmitter's own convention; the proxy reports its errors through its logger and never emits it today. */
  error: [Error]
}

export type ProxyEventName = keyof ProxyEvents

/** What a listener needs of the proxy: a ProxyHandle is one, and so is any EventEmitter. */
export interface ProxyEventSource {
  on<K extends ProxyEventName>(event: K, listener: (...args: ProxyEvents[K]) => void): unknown
  off<K extends ProxyEventName>(event: K, listener: (...args: ProxyEvents[K]) => void): unknown
}
