/** The read-only REST API that `flytrap audit serve` offers under /api. */

export interface Status {
  chainId: number
  contract: string
  block: number
  synced: boolean
  deployBlock?: number
  /** GET /api/evidence can build bundles (the server has the journal and the reporter key). */
  evidence?: boolean
  lastSyncAt: string | number | null
  lastError?: string | null
  topics: number
  members: number
  events: number
  bans: number
  anchors: number
}

export interface Topic {
  name: string
  id: string
  owner: string
  pubFeeEth: string | number
  subFeeEth: string | number
  sensitive: boolean
  open: boolean
  periodSeconds: number
  countries: string | string[]
  members: number
}

export type Expiry = string | number | null

export interface Member {
  client: string
  publish: boolean
  subscribe: boolean
  pubExpiry: Expiry
  subExpiry: Expiry
}

export interface AuditEvent {
  time: string | number
  block: number
  tx: string
  type: string
  topic?: string | null
  client?: string | null
  actor?: string | null
  reason?: string | null
  detail?: string | null
}

export type Row = Record<string, unknown>

export interface CountEntry {
  topic?: string
  client?: string
  count: number
}

export interface Ban {
  time: string
  tx: string
  subject: string
  client: string | null
  until: string
  reason: string
  reporter: string
}

export interface Denied {
  time: string
  tx: string
  reporter: string
  fromTime: string
  toTime: string
  total: number
  counts: CountEntry[]
}

export interface Sensitive {
  time: string
  tx: string
  reporter: string
  topic: string
  fromTime: string
  toTime: string
  /** committed: counts and the members' Merkle root only (the default); clear: addresses listed. */
  form: 'committed' | 'clear'
  publisherCount: number
  published: number
  receiverCount: number
  received: number
  membersRoot: string | null
  /** Empty when committed. */
  publishers: CountEntry[]
  receivers: CountEntry[]
}

export interface TopicDetail {
  topic: Topic | null
  members: Member[]
  history: AuditEvent[]
  historyTotal?: number
  sensitiveReports: Sensitive[]
}

export interface Right {
  topic: string
  publish: boolean
  subscribe: boolean
  pubExpiry: Expiry
  subExpiry: Expiry
}

export interface ClientDetail {
  address: string
  rights: Right[]
  history: AuditEvent[]
  historyTotal?: number
}

export interface Anchor {
  root: string
  count: number
  fromTime: string | number
  toTime: string | number
  reporter: string
  status: string
}

export interface ActivityBucket {
  start: string | number
  counts: Record<string, number>
}

export interface ReportRow {
  time: string
  block: number | null
  source: string
  event: string
  topic: string | null
  client: string | null
  actor: string | null
  reason: string | null
  detail: string | null
  txHash: string | null
  proven: boolean | null
  /** false: the address is only claimed by a credential that did not verify (then client is null, claimed holds it). */
  verified?: boolean | null
  claimed?: string | null
  /** Allowed accesses: the on-chain grant in force at the decision. */
  grant?: RowGrant | null
  seq?: number | null
}

export interface RowGrant {
  kind: 'grant' | 'join' | 'owner'
  rule: string
  event: string
  tx: string
  block: number
  logIndex: number
  by: string | null
  at: string
  /** null: until revoked. */
  until: string | null
  reason: string | null
}

export interface Report {
  rows: ReportRow[]
  [k: string]: unknown
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message)
  }
}

export type Query = Record<string, string | number | undefined | null>

export function apiUrl(path: string, query: Query = {}): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const qs = q.toString()
  return `api/${path}${qs ? `?${qs}` : ''}`
}

/** GETs /api/<path>; API errors ({error:{code,message}}) and network failures become ApiError. */
export async function get<T>(path: string, query: Query = {}, signal?: AbortSignal): Promise<T> {
  let res: Response
  try {
    res = await fetch(apiUrl(path, query), { headers: { accept: 'application/json' }, signal })
  } catch (err) {
    if (signal?.aborted) throw err
    throw new ApiError(`Could not reach the server (${(err as Error).message}).`, 0, 'network')
  }
  const text = await res.text()
  let body: unknown = null
  try {
    body = text ? JSON.parse(text) : null
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } } | null)?.error
    throw new ApiError(e?.message ?? `${res.status} ${res.statusText}`, res.status, e?.code ?? String(res.status))
  }
  if (body === null) throw new ApiError('The server answered with something that is not JSON.', res.status, 'bad_response')
  return body as T
}

/** The first array in a response object ({bans:[...]}, {denied:[...]}), or the response when it is one. */
export function rowsOf(body: unknown): Row[] {
  if (Array.isArray(body)) return body as Row[]
  if (body && typeof body === 'object') {
    for (const v of Object.values(body)) if (Array.isArray(v)) return v as Row[]
  }
  return []
}
