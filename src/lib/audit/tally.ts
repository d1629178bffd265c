/**
 * What a period's on-chain reports say, counted from its journal entries: allowed publishes and deliveries
 * per sensitive topic and address, refused attempts per topic (refused connects under "$connect"). The
 * journal keeps one tally per recent period as entries become durable, and recounts older ones from disk
 * with the same function, so what goes on chain is exactly what the journal holds.
 */
import type { JournalEntry } from './entry.js'

export const CONNECT_TOPIC = '$connect'
export const OTHER_TOPIC = '$other'

/** Bounds on what one tally keeps in memory; reports are capped lower (period-reporter.ts). */
export const TALLY_LIMITS = { topics: 256, addresses: 1_000, deniedNames: 1_024 } as const

export interface SensitiveTally {
  /** Lower-case address → allowed decisions, in the order the addresses first appeared. */
  pub: Map<string, number>
  recv: Map<string, number>
  /** Lower-case address → the salt of the first entry counted in pub / recv (the member record's salt comes from it). */
  pubSalt: Map<string, string>
  recvSalt: Map<string, string>
  /** Decisions from addresses beyond TALLY_LIMITS.addresses (counted nowhere else). */
  omitted: number
}

export interface PeriodTally {
  /** Decisions in the period (a coalesced entry counts for its count). */
  decisions: number
  /** Sensitive topic → its publishers and receivers, in the order topics first appeared. */
  sensitive: Map<string, SensitiveTally>
  /** Sensitive topics beyond TALLY_LIMITS.topics (only in the journal). */
  droppedTopics: Set<string>
  /** Topic or filter (or "$connect") → refused attempts; names beyond the limit count under "$other". */
  denied: Map<string, number>
  deniedTotal: number
}

export function emptyTally(): PeriodTally {
  return { decisions: 0, sensitive: new Map(), droppedTopics: new Set(), denied: new Map(), deniedTotal: 0 }
}

/** Kinds whose refusal is an attempt by the client (a refused delivery is not the receiver's attempt). */
const ATTEMPTS = new Set(['connect', 'publish', 'subscribe', 'will'])

/**
 * Adds one entry to a tally. Disconnects and bans are not decisions of the proxy's policy: not counted.
 * `salt` is the entry's journal salt: the first one per sensitive address and role is kept, so the period's
 * member records (sensitive-members.ts) can be recomputed from the journal.
 */
export function tallyEntry(t: PeriodTally, e: Pick<JournalEntry, 'kind' | 'outcome' | 'topic' | 'address' | 'count' | 'sensitive'>, salt?: string): void {
  if (e.kind === 'disconnect' || e.kind === 'ban') return
  const n = e.count ?? 1
  t.decisions += n
  if (e.outcome === 'allow') {
    if (!e.sensitive || !e.topic || !e.address) return
    if (e.kind !== 'publish' && e.kind !== 'deliver') return // subscribe packets do not count: deliveries do
    let s = t.sensitive.get(e.topic)
    if (!s) {
      if (t.sensitive.size >= TALLY_LIMITS.topics) {
        if (t.droppedTopics.size < 1_000) t.droppedTopics.add(e.topic)
        return
      }
      s = { pub: new Map(), recv: new Map(), pubSalt: new Map(), recvSalt: new Map(), omitted: 0 }
      t.sensitive.set(e.topic, s)
    }
    const m = e.kind === 'publish' ? s.pub : s.recv
    const who = e.address.toLowerCase()
    const have = m.get(who)
    if (have !== undefined) m.set(who, have + n)
    else if (m.size < TALLY_LIMITS.addresses) {
      m.set(who, n)
      if (salt !== undefined) (e.kind === 'publish' ? s.pubSalt : s.recvSalt).set(who, salt)
    } else s.omitted += n
    return
  }
  if (!ATTEMPTS.has(e.kind)) return
  const name = e.kind === 'connect' ? CONNECT_TOPIC : e.topic
  if (!name) return
  const key = t.denied.has(name) || t.denied.size < TALLY_LIMITS.deniedNames - 1 ? name : OTHER_TOPIC
  t.denied.set(key, (t.denied.get(key) ?? 0) + n)
  t.deniedTotal += n
}
