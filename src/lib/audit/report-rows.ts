/**
 * The shape of an audit report (`audit report --json`, GET /api/report): its rows, the grant behind an
 * allowed access, the document around them. Types only, so the auditors' UI imports them as they are
 * (web/src/api.ts) instead of copying them; report.ts builds them (docs/audit-report.md describes them).
 */

/** One row of the report. Every key is always present; null means "does not apply". */
export interface ReportRow {
  /** ISO 8601, UTC, millisecond precision: the block's time (chain) or the decision's time (journal). */
  time: string
  block: number | null
  source: 'chain' | 'journal'
  /** The contract event (TopicAdded, Granted, …) or the journal entry kind (connect, publish, …). */
  event: string
  topic: string | null
  client: string | null
  actor: string | null
  reason: string | null
  detail: string | null
  txHash: string | null
  /** Journal rows: the entry's Merkle proof checks against the root anchored for its range. Chain rows: null. */
  proven: boolean | null
  /**
   * Journal rows with an address: false when the address is only claimed by a credential that did not verify
   * (the row's `client` is then null and the claim is in `claimed`); true when it was authenticated. Else null.
   */
  verified: boolean | null
  /** The address an unverified credential claimed (never the row's client). */
  claimed: string | null
  /** Allowed accesses (journal publish, subscribe, deliver, will): the on-chain grant in force then; null when none or not an access. */
  grant: RowGrant | null
  /** Journal rows: the entry's number (`audit verify --entry`). */
  seq: number | null
}

/** The cause of an allowed access, from the chain (grants.ts). */
export interface RowGrant {
  /** grant (Granted by the owner), join (Joined, paid by the client) or owner (the client owns the entry). */
  kind: 'grant' | 'join' | 'owner'
  /** The registered name or filter that gave the right. */
  rule: string
  event: string
  tx: string
  block: number
  logIndex: number
  /** Who gave it (EIP-55): the topic's owner, the payer of a join, the registrant or previous owner. */
  by: string | null
  at: string
  /** null: until revoked. */
  until: string | null
  /** The reason on chain (clear text or a commitment); null for a join. */
  reason: string | null
}

/** A grant made before `--from` and still in force at it. */
export interface GrantAtFrom extends RowGrant {
  client: string
  role: 'publish' | 'subscribe'
}

export interface AuditReport {
  /** Version of this JSON shape; bumped only on an incompatible change. */
  version: 1
  contract: string
  chainId: number
  /** The requested range, ISO 8601, half-open [from, to). */
  from: string
  to: string
  /** The blocks whose times fall in the range (null when none). */
  blocks: { from: number; to: number } | null
  filters: { topic: string | null; client: string | null }
  journal: { dataDir: string; entries: number; invalidLines: number } | null
  /** Events of this contract that were not counted: reporter-only events from an unregistered address. */
  ignored: { notReporter: number }
  rows: ReportRow[]
  /** Grants and joins made before `from` and still in force at it (narrowed by the filters): the "why" of rows whose grant predates the range. */
  grantsAtFrom: GrantAtFrom[]
}
