/**
 * What the admin API asks of one proxy process (`ProxyHandle.admin`): its status, its sessions, kicks, its
 * bans and unbans. `admin-view.ts` merges the answers of every worker into the one answer of the proxy.
 */
import { bannedAddress } from '../chain/events.js'
import { normalizeIp } from '../net/ip.js'
import { ReasonCode } from '../mqtt/reason-codes.js'
import type { PolicySyncStatus } from '../policy/sync.js'
import type { PolicyView } from '../policy/types.js'
import type { BanGuard } from './bans.js'
import type { Session } from './session.js'
import type { Upstreams } from './upstreams.js'

export interface SessionInfo {
  clientId: string | null
  address: string | null
  ip: string
  country: string | null
  /** MQTT protocol version: 4 (3.1.1) or 5. */
  version: number
  /** connect, verifying, auth, upstream (admitted, waiting for the broker) or open. */
  phase: string
  broker: string | null
  /** When the broker's CONNACK opened it (ISO 8601), null while connecting. */
  since: string | null
  /** The worker process serving it (0 without --workers). */
  worker: number
}

export interface BanInfo {
  /** ip (clear, local to this proxy), ip-hash (keyed hash of an IP, as shared on chain) or address. */
  kind: 'ip' | 'ip-hash' | 'address'
  /** The IP, the hash or the address. */
  subject: string
  until: string
  /** local: made by this proxy; chain: read from the contract (made by any proxy of this contract). */
  source: 'local' | 'chain'
}

export interface LocalStatus {
  worker: number
  pid: number
  startedAt: number
  sessions: { open: number; connecting: number }
  policy: PolicySyncStatus
  upstreams: { url: string; state: 'up' | 'down'; sessions: number; lastError?: string; retryAt?: number }[]
  bansActive: number
  /** The audit side's backlog (from `proxy start`), null without a journal. */
  audit: AuditBacklog | null
}

export interface AuditBacklog {
  /** Decisions handed to the journal and not yet on disk. */
  journalBacklog: number
  journalWritten: number
  journalDropped: number
  /** Chain writes (bans, anchors, reports) waiting, in flight, parked; null in workers that hand theirs to worker 0. */
  outbox: { pending: number; inFlight: number; parked: number } | null
}

export interface SessionFilter {
  address?: string
  topic?: string
}

export interface KickResult {
  target: string
  kicked: SessionInfo[]
}

export interface UnbanResult {
  target: string
  removed: BanInfo[]
  /** Reports withdrawn from the queue before they reached the chain. */
  withdrawn: number
  /** True when a removed ban is (or was sent to be) on chain: the contract keeps it. */
  onChain: boolean
}

/** One process's part of the admin API; every method is cheap and synchronous. */
export interface LocalAdmin {
  status(): LocalStatus
  sessions(f: SessionFilter): SessionInfo[]
  kick(target: string): KickResult
  bans(): BanInfo[]
  unban(target: string): UnbanResult
}

export const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/

export function localAdmin(o: {
  worker: number
  sessions: Iterable<Session>
  openedAt: Map<Session, number>
  bans: BanGuard
  policy: PolicyView
  syncStatus: () => PolicySyncStatus
  upstreams: Upstreams
  audit?: () => AuditBacklog | null
}): LocalAdmin {
  const startedAt = Date.now()
  const info = (s: Session): SessionInfo => {
    const opened = o.openedAt.get(s)
    return {
      clientId: s.clientId ?? null,
      address: s.address ?? null,
      ip: s.ip,
      country: s.country,
      version: s.version,
      phase: s.phase,
      broker: s.broker?.url ?? null,
      since: opened === undefined ? null : new Date(opened).toISOString(),
      worker: o.worker,
    }
  }
  const live = () => [...o.sessions].filter((s) => s.phase !== 'closed')
  return {
    status() {
      const all = live()
      const perBroker = new Map<string, number>()
      for (const s of all) if (s.broker) perBroker.set(s.broker.url, (perBroker.get(s.broker.url) ?? 0) + 1)
      const open = all.filter((s) => s.phase === 'open').length
      return {
        worker: o.worker,
        pid: process.pid,
        startedAt,
        sessions: { open, connecting: all.length - open },
        policy: o.syncStatus(),
        upstreams: o.upstreams.status().map((u) => ({ ...u, sessions: perBroker.get(u.url) ?? 0 })),
        bansActive: o.bans.activeCount(),
        audit: o.audit?.() ?? null,
      }
    },
    sessions(f) {
      const address = f.address?.toLowerCase()
      return live()
        .filter((s) => address === undefined || s.address?.toLowerCase() === address)
        .filter((s) => f.topic === undefined || (s.address !== undefined && reaches(o.policy, s, f.topic)))
        .map(info)
    },
    kick(target) {
      const byAddress = ADDRESS_RE.test(target)
      const hit = live().filter((s) => (byAddress ? s.address?.toLowerCase() === target.toLowerCase() : s.clientId === target))
      const kicked = hit.map(info)
      // Administrative action (0x98) to a v5 client, as a ban does; the will is discarded upstream.
      for (const s of hit) s.kick(ReasonCode.AdministrativeAction, 'admin-kick')
      return { target, kicked }
    },
    bans() {
      return o.bans.active().map((b) => ({ ...banSubject(b.subject), until: new Date(b.until).toISOString(), source: b.source }))
    },
    unban(target) {
      const ip = ADDRESS_RE.test(target) ? undefined : normalizeIp(target)
      const r = o.bans.unban(ip ? { ip } : { address: target })
      return { target, removed: r.removed.map((b) => ({ ...banSubject(b.subject), until: new Date(b.until).toISOString(), source: b.source })), withdrawn: r.withdrawn, onChain: r.onChain }
    },
  }
}

/** May this session's identity publish or subscribe on `topic` now (the sessions `--topic` reaches)? */
function reaches(policy: PolicyView, s: Session, topic: string): boolean {
  return policy.canPublish(s.address!, topic, s.country).allowed || policy.canSubscribe(s.address!, topic, s.country).allowed
}

function banSubject(subject: string): Pick<BanInfo, 'kind' | 'subject'> {
  if (!subject.startsWith('0x')) return { kind: 'ip', subject }
  const address = bannedAddress(subject)
  return address ? { kind: 'address', subject: address } : { kind: 'ip-hash', subject }
}
