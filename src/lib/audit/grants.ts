/**
 * Why an access was allowed, from the chain alone: replays this contract's decoded policy events
 * (TopicAdded/TopicTransferred/TopicRemoved, Granted/Revoked/Joined, flag and country changes) into a
 * history that answers `grantInForce(topic, address, role, atMs)` with the grant or join event in force
 * (transaction, block, log index, granted by, at, until, reason — or its commitment, opaque text here), the
 * owner's TopicAdded/TopicTransferred, or null when nothing on chain allowed it at that time.
 *
 * Same rules as the proxy's policy store (store.ts), through the same functions: matching is filter.ts's
 * (topicMatches for topic names, filterCovers for subscription filters), the namespace rule namespace.ts's
 * (an entry gives nothing while an entry of another owner registered before it overlaps it: a registration
 * never gives rights on another owner's topic), an owner outranks a grant, a grant is valid while
 * now < expiry (unix seconds), a country list must list the client's country when one is given.
 *
 * Pure and isomorphic (no node: imports): used by the audit report, evidence bundles and the browser.
 * An event is in force from its block's time on (to the millisecond: block time × 1000 ≤ atMs).
 */
import { decodeCountries, FOREVER } from '../chain/codec.js'
import { filterCovers, topicMatches, validateTopicFilter } from '../policy/filter.js'
import { claimOf, claimsOverlap, type Claim } from '../policy/namespace.js'

/** One decoded log of the contract (argsOf(e) for its args), with its block's time. */
export interface PolicyLog {
  /** The event name: TopicAdded, Granted, … (other events are ignored). */
  name: string
  args: Record<string, unknown>
  block: number
  logIndex: number
  txHash: string
  /** The block's timestamp, unix seconds. */
  time: number
}

/** Where an event is on chain. */
export interface EventRef {
  event: string
  tx: string
  block: number
  logIndex: number
}

/** What allowed an access: a grant (Granted), a paid join (Joined), or ownership of the registered entry. */
export interface GrantCause extends EventRef {
  kind: 'grant' | 'join' | 'owner'
  /** The registered name or filter that gave the right. */
  rule: string
  /** Who gave it: the topic's owner for a grant (the contract lets only the owner grant), the payer for a join, the owner's own registration or the previous owner of a transfer. Lower case. */
  by: string | null
  /** The event's block time, ISO 8601 UTC. */
  at: string
  /** End of the right, ISO 8601 UTC; null = until revoked (and for ownership). */
  until: string | null
  /** The reason on chain as given (clear text or a commitment such as `commit:0x…`); null for a join. */
  reason: string | null
}

export type Role = 'publish' | 'subscribe'

interface Right {
  expiry: bigint
  cause: GrantCause
}

interface Topic {
  id: string
  name: string
  owner: string
  /** Chain position of the TopicAdded that made this generation (first registered wins). */
  registeredAt: number
  countries: Set<string>
  open: boolean
  ownerCause: GrantCause
  claim: Claim | null
  /** Lower-case address → rights per role. */
  grants: Map<string, { publish?: Right; subscribe?: Right }>
}

const POSITION = 1_000_000
const lower = (v: unknown) => String(v).toLowerCase()
const isoSec = (s: number | bigint) => new Date(Number(s) * 1000).toISOString()
const PUBLISH = 1
const SUBSCRIBE = 2

function countriesOf(packed: unknown): Set<string> {
  try {
    return new Set(decodeCountries(String(packed)).map((c) => c.toUpperCase()))
  } catch {
    return new Set()
  }
}

/**
 * The policy's history. Give it every policy event of the contract since its deployment (any order; it
 * sorts them by chain position). Queries in increasing time are answered by replaying forward once;
 * an earlier time replays from the start.
 */
export class GrantHistory {
  private readonly logs: PolicyLog[]
  private applied = 0
  private topics = new Map<string, Topic>()
  /** The effective entries, recomputed after a registration, transfer or removal (null = stale). */
  private effectiveSet: Set<Topic> | null = null

  constructor(logs: readonly PolicyLog[]) {
    this.logs = logs.filter((l) => RELEVANT.has(l.name)).sort((a, b) => a.block - b.block || a.logIndex - b.logIndex)
  }

  /** The events the history knows (sorted), e.g. to cite them in an evidence bundle. */
  events(): readonly PolicyLog[] {
    return this.logs
  }

  /**
   * What allowed `address` to publish on topic name `topic`, or to subscribe to filter `topic` (a topic
   * name for a delivery), at `atMs`: the cause in force, or null when the chain allowed nothing then. With
   * `country` (ISO alpha-2 or null for unknown), an entry with a country list counts only for a listed
   * country, as in the proxy; undefined skips the country check.
   */
  grantInForce(topic: string, address: string, role: Role, atMs: number, country?: string | null): GrantCause | null {
    this.advance(atMs)
    if (topic.startsWith('$share/') || validateTopicFilter(topic) !== null) return null
    const addr = address.toLowerCase()
    const now = BigInt(Math.floor(atMs / 1000))
    const cc = country === undefined ? undefined : country === null ? null : country.toUpperCase()
    let best: GrantCause | null = null
    for (const t of this.topics.values()) {
      if (!this.effective(t)) continue
      if (!(role === 'publish' ? topicMatches(t.name, topic) : filterCovers(t.name, topic))) continue
      if (cc !== undefined && t.countries.size > 0 && (cc === null || !t.countries.has(cc))) continue
      if (t.owner === addr) return t.ownerCause
      const r = t.grants.get(addr)?.[role]
      if (r && r.expiry > now && best === null) best = r.cause
    }
    return best
  }

  /** The registered entries (effective or not) at `atMs`: name, owner, open flag. */
  topicsAt(atMs: number): { id: string; name: string; owner: string; open: boolean; effective: boolean }[] {
    this.advance(atMs)
    return [...this.topics.values()].map((t) => ({ id: t.id, name: t.name, owner: t.owner, open: t.open, effective: this.effective(t) }))
  }

  /**
   * Every grant or join of `address` (any address when omitted) still in force at `atMs` and made before it:
   * what a report starting at `atMs` must cite.
   */
  grantsInForceAt(atMs: number, address?: string): (GrantCause & { client: string; role: Role })[] {
    this.advance(atMs)
    const now = BigInt(Math.floor(atMs / 1000))
    const out: (GrantCause & { client: string; role: Role })[] = []
    for (const t of this.topics.values()) {
      for (const [client, rights] of t.grants) {
        if (address && client !== address.toLowerCase()) continue
        for (const role of ['publish', 'subscribe'] as const) {
          const r = rights[role]
          if (r && r.expiry > now) out.push({ ...r.cause, client, role })
        }
      }
    }
    return out.sort((a, b) => a.block - b.block || a.logIndex - b.logIndex)
  }

  /** store.ts's rule: effective iff no entry of another owner, registered before it, overlaps it. */
  private effective(t: Topic): boolean {
    if (this.effectiveSet === null) {
      const all = [...this.topics.values()]
      this.effectiveSet = new Set(all.filter((x) => x.claim !== null && !all.some((o) => o !== x && o.claim !== null && o.owner !== x.owner && o.registeredAt < x.registeredAt && claimsOverlap(o.claim, x.claim!))))
    }
    return this.effectiveSet.has(t)
  }

  private advance(atMs: number): void {
    if (this.applied > 0 && this.logs[this.applied - 1]!.time * 1000 > atMs) {
      this.applied = 0
      this.topics = new Map()
      this.effectiveSet = null
    }
    while (this.applied < this.logs.length && this.logs[this.applied]!.time * 1000 <= atMs) this.apply(this.logs[this.applied++]!)
  }

  private apply(l: PolicyLog): void {
    if (l.name === 'TopicAdded' || l.name === 'TopicRemoved' || l.name === 'TopicTransferred') this.effectiveSet = null
    const a = l.args
    const id = lower(a.topic)
    const ref = { event: l.name, tx: l.txHash, block: l.block, logIndex: l.logIndex, at: isoSec(l.time) }
    const t = this.topics.get(id)
    switch (l.name) {
      case 'TopicAdded': {
        const name = String(a.name)
        const valid = !name.startsWith('$share/') && validateTopicFilter(name) === null
        const owner = lower(a.owner)
        const flags = Number(a.flags)
        this.topics.set(id, {
          id,
          name,
          owner,
          registeredAt: l.block * POSITION + l.logIndex,
          countries: countriesOf(a.countries),
          open: (flags & 2) !== 0,
          ownerCause: { kind: 'owner', rule: name, by: owner, until: null, reason: a.reason === undefined ? null : String(a.reason), ...ref },
          claim: valid ? claimOf(name) : null,
          grants: new Map(),
        })
        return
      }
      case 'TopicRemoved':
        this.topics.delete(id)
        return
    }
    if (!t) return
    switch (l.name) {
      case 'TopicTransferred':
        t.owner = lower(a.to)
        t.ownerCause = { kind: 'owner', rule: t.name, by: lower(a.from), until: null, reason: a.reason === undefined ? null : String(a.reason), ...ref }
        return
      case 'TopicFlagsChanged':
        t.open = (Number(a.flags) & 2) !== 0
        return
      case 'TopicCountriesChanged':
        t.countries = countriesOf(a.countries)
        return
      case 'Granted': {
        const roles = Number(a.roles)
        const expiry = BigInt(a.expiresAt as bigint)
        const client = lower(a.client)
        const rights = t.grants.get(client) ?? {}
        const cause: GrantCause = { kind: 'grant', rule: t.name, by: t.owner, until: expiry === FOREVER ? null : isoSec(expiry), reason: a.reason === undefined ? null : String(a.reason), ...ref }
        if (roles & PUBLISH) rights.publish = { expiry, cause }
        if (roles & SUBSCRIBE) rights.subscribe = { expiry, cause }
        t.grants.set(client, rights)
        return
      }
      case 'Revoked': {
        const roles = Number(a.roles)
        const rights = t.grants.get(lower(a.client))
        if (!rights) return
        if (roles & PUBLISH) delete rights.publish
        if (roles & SUBSCRIBE) delete rights.subscribe
        return
      }
      case 'Joined': {
        const roles = Number(a.roles)
        const client = lower(a.client)
        const rights = t.grants.get(client) ?? {}
        const right = (expiry: bigint): Right => ({ expiry, cause: { kind: 'join', rule: t.name, by: client, until: expiry === FOREVER ? null : isoSec(expiry), reason: null, ...ref } })
        if (roles & PUBLISH) rights.publish = right(BigInt(a.pubExpiresAt as bigint))
        if (roles & SUBSCRIBE) rights.subscribe = right(BigInt(a.subExpiresAt as bigint))
        t.grants.set(client, rights)
        return
      }
    }
  }
}

const RELEVANT = new Set(['TopicAdded', 'TopicTransferred', 'TopicRemoved', 'TopicFlagsChanged', 'TopicCountriesChanged', 'Granted', 'Revoked', 'Joined'])

/** The policy events a GrantHistory replays (to fetch them: every one since the deployment). */
export const POLICY_EVENTS = [...RELEVANT]
