/**
 * The admin API's answers for the whole proxy: each process answers for itself (admin-local.ts), in one
 * process or from every worker over IPC (cluster.ts), and these merge them into one answer.
 */
import type { AuditBacklog, BanInfo, KickResult, LocalStatus, SessionFilter, SessionInfo, UnbanResult } from './admin-local.js'

export type AdminOp = 'status' | 'sessions' | 'kick' | 'bans' | 'unban'

/** Asks every process of the proxy; one answer per process. */
export type AdminCall = (op: AdminOp, arg?: unknown) => Promise<unknown[]>

export interface ProxyStatus {
  pid: number
  startedAt: string
  uptimeSec: number
  workers: number
  sessions: { open: number; connecting: number }
  policy: {
    synced: boolean
    /** The block the policy is consistent with (the lowest over the workers). */
    block: number | null
    /** The chain head last seen. */
    head: number | null
    lagBlocks: number
    /** Seconds since the policy was last confirmed current (the largest over the workers). */
    lagSeconds: number | null
    lastError?: string
  }
  upstreams: { url: string; state: 'up' | 'down' | 'partly down'; sessions: number; lastError?: string }[]
  bansActive: number
  audit: AuditBacklog | null
}

export interface AdminBackend {
  status(): Promise<ProxyStatus>
  sessions(f: SessionFilter): Promise<SessionInfo[]>
  kick(target: string): Promise<KickResult>
  bans(): Promise<BanInfo[]>
  unban(target: string): Promise<UnbanResult>
}

export function adminBackend(call: AdminCall, self: { pid: number; startedAt: number }): AdminBackend {
  return {
    status: async () => mergeStatus((await call('status')) as LocalStatus[], self),
    sessions: async (f) => ((await call('sessions', f)) as SessionInfo[][]).flat(),
    kick: async (target) => ({ target, kicked: ((await call('kick', target)) as KickResult[]).flatMap((k) => k.kicked) }),
    bans: async () => mergeBans((await call('bans')) as BanInfo[][]),
    unban: async (target) => {
      const parts = (await call('unban', target)) as UnbanResult[]
      return { target, removed: mergeBans(parts.map((p) => p.removed)), withdrawn: Math.max(0, ...parts.map((p) => p.withdrawn)), onChain: parts.some((p) => p.onChain) }
    },
  }
}

export function mergeStatus(parts: LocalStatus[], self: { pid: number; startedAt: number }): ProxyStatus {
  const now = Date.now()
  const blocks = parts.map((p) => p.policy.block)
  const block = blocks.some((b) => b === null) ? null : Math.min(...(blocks as number[]))
  const heads = parts.map((p) => (p.policy.block === null ? null : p.policy.block + p.policy.lagBlocks)).filter((h): h is number => h !== null)
  const lastSync = parts.map((p) => p.policy.lastSyncAt)
  const upstreams = new Map<string, ProxyStatus['upstreams'][number] & { downIn: number }>()
  for (const p of parts) {
    for (const u of p.upstreams) {
      const m = upstreams.get(u.url) ?? { url: u.url, state: 'up' as const, sessions: 0, downIn: 0 }
      m.sessions += u.sessions
      if (u.state === 'down') {
        m.downIn++
        if (u.lastError) m.lastError = u.lastError
      }
      upstreams.set(u.url, m)
    }
  }
  const audits = parts.map((p) => p.audit).filter((a): a is AuditBacklog => a !== null)
  const outboxes = audits.map((a) => a.outbox).filter((o): o is NonNullable<AuditBacklog['outbox']> => o !== null)
  const error = parts.find((p) => p.policy.lastError)?.policy.lastError
  return {
    pid: self.pid,
    startedAt: new Date(self.startedAt).toISOString(),
    uptimeSec: Math.round((now - self.startedAt) / 1000),
    workers: parts.length,
    sessions: { open: sum(parts.map((p) => p.sessions.open)), connecting: sum(parts.map((p) => p.sessions.connecting)) },
    policy: {
      synced: parts.length > 0 && parts.every((p) => p.policy.synced),
      block,
      head: heads.length ? Math.max(...heads) : null,
      lagBlocks: block === null || !heads.length ? 0 : Math.max(...heads) - block,
      lagSeconds: lastSync.some((t) => t === null) ? null : Math.round((now - Math.min(...(lastSync as number[]))) / 100) / 10,
      ...(error ? { lastError: error } : {}),
    },
    upstreams: [...upstreams.values()].map(({ downIn, ...u }) => ({ ...u, state: downIn === 0 ? 'up' : downIn === parts.length ? 'down' : 'partly down' })),
    // Workers share their bans, so each holds them all: the largest count, not the sum.
    bansActive: Math.max(0, ...parts.map((p) => p.bansActive)),
    audit: audits.length
      ? {
          journalBacklog: sum(audits.map((a) => a.journalBacklog)),
          journalWritten: sum(audits.map((a) => a.journalWritten)),
          journalDropped: sum(audits.map((a) => a.journalDropped)),
          outbox: outboxes.length ? { pending: sum(outboxes.map((o) => o.pending)), inFlight: sum(outboxes.map((o) => o.inFlight)), parked: sum(outboxes.map((o) => o.parked)) } : null,
        }
      : null,
  }
}

/** One row per ban (every worker holds the shared ones), the latest expiry kept. */
export function mergeBans(parts: BanInfo[][]): BanInfo[] {
  const out = new Map<string, BanInfo>()
  for (const b of parts.flat()) {
    const key = `${b.kind}|${b.subject}`
    const seen = out.get(key)
    if (!seen || seen.until < b.until) out.set(key, seen && seen.source === 'chain' ? { ...b, source: 'chain' } : b)
    else if (b.source === 'chain') seen.source = 'chain'
  }
  return [...out.values()].sort((a, b) => a.until.localeCompare(b.until))
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0)
}
