/**
 * Two regulator views computed from an audit report (report.ts) and the journal it merged:
 *
 * - `subjectView` (GDPR art. 15, `audit report --subject <address>`): everything held about one data subject
 *   in the range — their connects with IPs, client ids and countries, their accesses with the grant in force,
 *   the grants, joins and revokes naming them on chain (and those in force at the start), bans, connects
 *   that only claimed their address (impersonation attempts, kept apart), and the erasure records of the
 *   journal (which subject each concerns is a salted commitment: listed, not attributed).
 * - `art30View` (GDPR art. 30, `audit report --format art30`): a records-of-processing summary per topic —
 *   purposes (the grant reasons), categories of recipients (owner, granted, paid joins), the recipients seen
 *   in the journal, transfers by country (GeoIP country of the recipients' connects), and the retention the
 *   deployment applies (journal period and policy, on-chain permanence).
 *
 * Both are plain data with flat row lists for CSV (toViewCsv).
 */
import { getAddress } from 'ethers'
import type { JournalEntry } from './entry.js'
import { readMeta, readRecords } from './journal-files.js'
import { claimOnly, csvCell, type AuditReport, type GrantAtFrom, type ReportRow, type RowGrant } from './report.js'

export interface SubjectConnect {
  time: string
  seq: number
  outcome: 'allow' | 'deny'
  reason: string
  clientId: string | null
  /** The IP as the journal holds it (a data subject is entitled to it). */
  ip: string | null
  country: string | null
  proven: boolean | null
}

export interface SubjectAccess {
  time: string
  seq: number
  kind: string
  topic: string | null
  outcome: 'allow' | 'deny'
  reason: string
  count: number
  clientId: string | null
  grant: RowGrant | null
  proven: boolean | null
}

export interface SubjectView {
  version: 1
  view: 'subject'
  subject: string
  contract: string
  chainId: number
  from: string
  to: string
  journal: AuditReport['journal']
  connects: SubjectConnect[]
  accesses: SubjectAccess[]
  /** Chain rows naming the subject: grants, revokes, joins, transfers, sensitive-topic reports, bans, … */
  chain: ReportRow[]
  /** Grants and joins of the subject made before `from`, still in force at it. */
  grantsAtFrom: GrantAtFrom[]
  /** Journal bans of the subject (address or IP). */
  bans: { time: string; seq: number; reason: string; until: string | null; ip: string | null; proven: boolean | null }[]
  /** Refused connects whose unverified credential claimed the subject's address: not the subject's activity. */
  claimsByOthers: { time: string; seq: number; reason: string; clientId: string | null; ip: string | null; country: string | null }[]
  /** Erasure records in the range (`audit forget`): whom each concerns is a salted commitment. */
  erasures: { time: string; seq: number; basis: string; requestedBy: string; redacted: number; subjectCommitment: string }[]
  /** Entries of the subject erased before this report (their content is gone). */
  redacted: number
}

const iso = (ms: number) => new Date(ms).toISOString()

/** The art. 15 view of `subject` from a report built with `clientAddress: subject` and the same data directory. */
export async function subjectView(report: AuditReport, subject: string, dataDir: string | undefined): Promise<SubjectView> {
  const who = subject.toLowerCase()
  const proven = new Map<number, boolean | null>()
  const grantOf = new Map<number, RowGrant | null>()
  for (const r of report.rows) {
    if (r.seq !== null) {
      proven.set(r.seq, r.proven)
      grantOf.set(r.seq, r.grant)
    }
  }
  const v: SubjectView = {
    version: 1,
    view: 'subject',
    subject: getAddress(who),
    contract: report.contract,
    chainId: report.chainId,
    from: report.from,
    to: report.to,
    journal: report.journal,
    connects: [],
    accesses: [],
    chain: report.rows.filter((r) => r.source === 'chain'),
    grantsAtFrom: report.grantsAtFrom,
    bans: [],
    claimsByOthers: [],
    erasures: [],
    redacted: 0,
  }
  if (dataDir) {
    const ips = new Set<string>()
    const mine: JournalEntry[] = []
    for await (const { record } of readRecords(dataDir, { fromMs: Date.parse(report.from), toMs: Date.parse(report.to) })) {
      if (record.redacted) continue
      const e = record.entry
      if (e.kind === 'erasure') {
        const b = e.erasure as { basis?: unknown; requestedBy?: unknown; redacts?: unknown[]; subject?: unknown }
        v.erasures.push({ time: iso(e.t), seq: e.seq, basis: String(b.basis), requestedBy: String(b.requestedBy), redacted: b.redacts?.length ?? 0, subjectCommitment: String(b.subject) })
        continue
      }
      if (e.address?.toLowerCase() !== who) continue
      if (claimOnly(e)) {
        v.claimsByOthers.push({ time: iso(e.t), seq: e.seq, reason: e.reason, clientId: e.clientId ?? null, ip: e.ip ?? null, country: e.country ?? null })
        continue
      }
      mine.push(e)
      if (e.ip) ips.add(e.ip)
    }
    for (const e of mine) {
      const p = proven.get(e.seq) ?? null
      if (e.kind === 'connect' || e.kind === 'disconnect') {
        if (e.kind === 'connect') v.connects.push({ time: iso(e.t), seq: e.seq, outcome: e.outcome, reason: e.reason, clientId: e.clientId ?? null, ip: e.ip ?? null, country: e.country ?? null, proven: p })
      } else if (e.kind === 'ban') v.bans.push({ time: iso(e.t), seq: e.seq, reason: e.reason, until: e.until !== undefined ? iso(e.until) : null, ip: e.ip ?? null, proven: p })
      else v.accesses.push({ time: iso(e.t), seq: e.seq, kind: e.kind, topic: e.topic ?? null, outcome: e.outcome, reason: e.reason, count: e.count ?? 1, clientId: e.clientId ?? null, grant: grantOf.get(e.seq) ?? null, proven: p })
    }
    // IP bans of the subject's IPs (an IP is personal data of whoever used it).
    for await (const { record } of readRecords(dataDir, { fromMs: Date.parse(report.from), toMs: Date.parse(report.to) })) {
      if (record.redacted || record.entry.kind !== 'ban' || !record.entry.ip || !ips.has(record.entry.ip) || record.entry.address?.toLowerCase() === who) continue
      const e = record.entry
      v.bans.push({ time: iso(e.t), seq: e.seq, reason: e.reason, until: e.until !== undefined ? iso(e.until) : null, ip: e.ip ?? null, proven: proven.get(e.seq) ?? null })
    }
    v.bans.sort((a, b) => a.seq - b.seq)
  }
  v.redacted = report.rows.filter((r) => r.event === 'redacted').length
  return v
}

// ------------------------------------------------------------------ art. 30

export interface Art30Topic {
  topic: string
  owner: string | null
  sensitive: boolean | null
  /** The purposes the owner gave: distinct grant reasons (clear text or commitments), and the registration reason. */
  purposes: string[]
  /** Categories of recipients (who may receive): granted subscribers, paid subscribers (open topic), the owner. */
  recipientCategories: string[]
  /** Addresses granted/joined the subscribe role in the range or before it and still in force at its start. */
  recipientsAllowed: number
  /** Distinct addresses the journal saw receive (allowed deliveries, or allowed subscriptions when deliveries were not journaled). */
  recipientsSeen: number
  publishersSeen: number
  /** ISO country of the recipients' connects (GeoIP) → distinct recipients; `unknown` when the connect had none. */
  transfers: Record<string, number>
}

export interface Art30View {
  version: 1
  view: 'art30'
  contract: string
  chainId: number
  from: string
  to: string
  controller: string | null
  retention: {
    /** The journal's anchoring period (s), from the journal's meta.json, null without a journal. */
    anchoringPeriodSec: number | null
    journal: string
    chain: string
  }
  topics: Art30Topic[]
}

export function art30View(report: AuditReport, dataDir: string | undefined): Art30View {
  const topics = new Map<string, Art30Topic & { r: Set<string>; p: Set<string>; allowed: Set<string> }>()
  const get = (name: string) => {
    let t = topics.get(name)
    if (!t) {
      t = { topic: name, owner: null, sensitive: null, purposes: [], recipientCategories: [], recipientsAllowed: 0, recipientsSeen: 0, publishersSeen: 0, transfers: {}, r: new Set(), p: new Set(), allowed: new Set() }
      topics.set(name, t)
    }
    return t
  }
  const purpose = (t: Art30Topic, reason: string | null) => {
    if (reason && !t.purposes.includes(reason)) t.purposes.push(reason)
  }
  const category = (t: Art30Topic, c: string) => {
    if (!t.recipientCategories.includes(c)) t.recipientCategories.push(c)
  }
  const countryOf = new Map<string, string>()
  for (const r of report.rows) if (r.source === 'journal' && r.event === 'connect' && r.client && r.verified !== false) countryOf.set(r.client.toLowerCase(), /country ([A-Z]{2})/.exec(r.detail ?? '')?.[1] ?? countryOf.get(r.client.toLowerCase()) ?? 'unknown')
  for (const g of report.grantsAtFrom) {
    const t = get(g.rule)
    purpose(t, g.reason)
    if (g.role === 'subscribe') {
      t.allowed.add(g.client.toLowerCase())
      category(t, g.kind === 'join' ? 'paid subscribers (joined an open topic)' : 'subscribers granted by the owner')
    }
  }
  for (const r of report.rows) {
    if (!r.topic || r.topic.startsWith('$')) continue
    if (r.source === 'chain') {
      const t = get(r.topic)
      if (r.event === 'TopicAdded') {
        t.owner = r.actor
        t.sensitive = /flags [a-z,]*sensitive/.test(r.detail ?? '')
        purpose(t, r.reason)
        category(t, 'the topic owner')
      } else if (r.event === 'TopicTransferred') t.owner = /to (0x[0-9a-fA-F]{40})/.exec(r.detail ?? '')?.[1] ?? t.owner
      else if ((r.event === 'Granted' || r.event === 'Joined') && r.client) {
        purpose(t, r.reason)
        if (/roles [a-z,]*subscribe/.test(r.detail ?? '')) {
          t.allowed.add(r.client.toLowerCase())
          category(t, r.event === 'Joined' ? 'paid subscribers (joined an open topic)' : 'subscribers granted by the owner')
        }
      }
      continue
    }
    if (r.event !== 'deliver' && r.event !== 'subscribe' && r.event !== 'publish') continue
    if (!r.client || !/^allow/.test(r.detail ?? '')) continue
    const t = get(r.grant?.rule ?? r.topic)
    if (r.event === 'publish') t.p.add(r.client.toLowerCase())
    else t.r.add(r.client.toLowerCase())
    if (r.grant) purpose(t, r.grant.reason)
  }
  const out: Art30Topic[] = []
  for (const t of topics.values()) {
    for (const who of t.r) {
      const c = countryOf.get(who) ?? 'unknown'
      t.transfers[c] = (t.transfers[c] ?? 0) + 1
    }
    const { r, p, allowed, ...rest } = t
    out.push({ ...rest, recipientsAllowed: allowed.size, recipientsSeen: r.size, publishersSeen: p.size })
  }
  out.sort((a, b) => a.topic.localeCompare(b.topic))
  const meta = dataDir ? readMeta(dataDir) : null
  return {
    version: 1,
    view: 'art30',
    contract: report.contract,
    chainId: report.chainId,
    from: report.from,
    to: report.to,
    controller: null,
    retention: {
      anchoringPeriodSec: meta ? meta.periodMs / 1000 : null,
      journal: 'kept by the operator with no automatic expiry; entries are erased on request with `flytrap audit forget` (content redacted, proofs kept); every decision, no payloads',
      chain: 'permanent: policy events, period summaries and anchors cannot be erased from the chain',
    },
    topics: out,
  }
}

// ------------------------------------------------------------------ CSV

/** RFC 4180 CSV of a view's main list (accesses + connects + claims for a subject; topics for art. 30), same quoting as the report's. */
export function toViewCsv(v: SubjectView | Art30View): string {
  let cols: string[]
  let rows: Record<string, unknown>[]
  if (v.view === 'art30') {
    cols = ['topic', 'owner', 'sensitive', 'purposes', 'recipientCategories', 'recipientsAllowed', 'recipientsSeen', 'publishersSeen', 'transfers', 'anchoringPeriodSec']
    rows = v.topics.map((t) => ({ ...t, purposes: t.purposes.join('; '), recipientCategories: t.recipientCategories.join('; '), transfers: Object.entries(t.transfers).map(([c, n]) => `${c}:${n}`).join(' '), anchoringPeriodSec: v.retention.anchoringPeriodSec }))
  } else {
    cols = ['record', 'time', 'seq', 'kind', 'topic', 'outcome', 'reason', 'count', 'clientId', 'ip', 'country', 'grantTx', 'grantBy', 'grantReason', 'until', 'proven']
    rows = [
      ...v.connects.map((c) => ({ record: 'connect', kind: 'connect', ...c })),
      ...v.accesses.map((a) => ({ record: 'access', ...a, grantTx: a.grant?.tx, grantBy: a.grant?.by, grantReason: a.grant?.reason })),
      ...v.bans.map((b) => ({ record: 'ban', kind: 'ban', ...b })),
      ...v.grantsAtFrom.map((g) => ({ record: 'grant in force at start', time: g.at, kind: g.event, topic: g.rule, reason: g.reason, grantTx: g.tx, grantBy: g.by, grantReason: g.reason, until: g.until ?? 'never' })),
      ...v.chain.map((r) => ({ record: 'chain', time: r.time, kind: r.event, topic: r.topic, reason: r.reason, grantTx: r.txHash, grantBy: r.actor })),
      ...v.claimsByOthers.map((c) => ({ record: 'unverified claim (not the subject)', kind: 'connect', outcome: 'deny', ...c })),
      ...v.erasures.map((e) => ({ record: 'erasure', time: e.time, seq: e.seq, kind: 'erasure', reason: e.basis, count: e.redacted })),
    ].sort((a, b) => String(a.time).localeCompare(String(b.time)))
  }
  return [cols.join(','), ...rows.map((r) => cols.map((k) => csvCell(r[k])).join(','))].join('\r\n') + '\r\n'
}
