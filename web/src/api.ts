/** The read-only REST API that `flytrap audit serve` offers under /api. */

// The server's own types, imported type-only (erased from the bundle): the UI reads exactly what the API sends.
import type { AuditReport, ReportRow, RowGrant } from '../../src/lib/audit/report-rows.js'
import type {
  ActivityBucket,
  ActivityView,
  AnchorView,
  BanRecord,
  ClientDetail,
  DeniedCount,
  DeniedRecord,
  IndexEvent,
  MemberCount,
  MemberView,
  RightView,
  SensitiveRecord,
  StatusView,
  TopicDetail,
  TopicView,
} from '../../src/lib/web/views.js'
import type { ClientRefusal, TrafficView } from '../../src/lib/web/traffic.js'

export type { ActivityBucket, ActivityView, ClientDetail, ClientRefusal, ReportRow, RowGrant, TopicDetail }
export type Traffic = TrafficView
export type Status = StatusView
export type Topic = TopicView
export type Member = MemberView
export type Right = RightView
export type Expiry = MemberView['pubExpiry']
export type AuditEvent = IndexEvent
export type Ban = BanRecord
export type Denied = DeniedRecord
export type Sensitive = SensitiveRecord
export type Anchor = AnchorView
/** A count in a denied summary (per topic) or a clear sensitive report (per member). */
export type CountEntry = DeniedCount | MemberCount
export type Report = AuditReport

/** A response row read generically (charts over any list). */
export type Row = Record<string, unknown>

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
