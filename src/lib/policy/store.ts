/**
 * The whole access policy in memory, answering every publish, subscribe and delivery decision synchronously
 * (policy sync keeps it up to date from the chain; nothing here ever waits for the chain).
 *
 * Index: every effective registered name/filter sits in a topic trie (trie.ts), plus a name → entry Map, so a
 * lookup costs what the topic's depth and the wildcards on its path cost, not how many entries exist. A
 * subscription's candidates from the trie are confirmed with the filter algebra of filter.ts.
 *
 * Namespaces (docs/namespaces.md, rule in namespace.ts): only *effective* entries count. An entry is
 * effective unless an entry registered before it, by a different owner, overlaps it; the contract refuses such
 * registrations, so with it every entry is effective, and this is a second line of defence. A shadowed entry
 * gives its owner and grantees nothing and takes nothing from anyone: it is not in the trie, so it matches no
 * topic, makes nothing sensitive, registered or denied. Effective entries that match a common topic therefore
 * all have the same owner.
 *
 * Decisions: an action is allowed iff some effective entry that matches the topic (or covers the subscription
 * filter) gives the address the role — it owns the entry or holds an unexpired grant of that role — and the
 * entry either has no country list or lists the client's country.
 */
import { EventEmitter } from 'node:events'
import type { TopicInfo } from '../chain/client.js'
import { filterCovers, levelsOverlap, normalizedLevels, validateTopicFilter, validateTopicName } from './filter.js'
import { claimOf, claimsOverlap, type Claim } from './namespace.js'
import { TopicTrie } from './trie.js'
import type { Decision, DecisionReason, PolicyView } from './types.js'

/**
 * What the store needs of a topic (the contract client's TopicInfo fits). `registeredAt` orders registrations
 * for the namespace rule (first registered wins): the position of the TopicAdded that made the current
 * generation, block × 1,000,000 + log index (policy sync supplies it; below 2^52). Without it, an update keeps
 * the entry's order and a new entry or generation comes after every other.
 */
export type TopicInput = Pick<TopicInfo, 'id' | 'name' | 'owner' | 'sensitive' | 'open' | 'countries' | 'generation'> & { registeredAt?: number }

export interface GrantInput {
  topicId: string
  client: string
  /** 0 = none, 2^40-1 (codec FOREVER) = until revoked, else unix seconds (valid while now < expiry). */
  pubExpiry: bigint
  subExpiry: bigint
}

export interface PolicySnapshot {
  topics: readonly TopicInput[]
  grants: readonly GrantInput[]
}

export interface GrantExpiry {
  pubExpiry: bigint
  subExpiry: bigint
}

/** One registered name or filter. Read-only for callers: mutate through the store. */
export interface PolicyEntry {
  readonly id: string
  readonly name: string
  /** Lower-case address. */
  readonly owner: string
  /** ISO 3166-1 alpha-2, upper case; empty = anywhere. */
  readonly countries: ReadonlySet<string>
  readonly sensitive: boolean
  readonly open: boolean
  readonly generation: number
  /** Lower-case address → expiries. */
  readonly grants: ReadonlyMap<string, GrantExpiry>
  /** Registration order (see TopicInput.registeredAt). */
  readonly registeredAt: number
  /** False while an earlier registration of another owner overlaps it: it then decides nothing. */
  readonly effective: boolean
}

/**
 * Payload of the 'change' event. `topics`: every registered name/filter whose entry changed in any way
 * (owner, countries, flags, grants, added or removed). `clients`: lower-case addresses whose grants changed.
 * A change to a topic itself (owner, countries, removal) affects every client on it: re-check all sessions
 * whose subscriptions overlap a listed topic, not only the listed clients.
 */
export interface PolicyChange {
  topics: string[]
  clients: string[]
}

export interface PolicyStats {
  topics: number
  grants: number
  synced: boolean
  /** Block the policy is consistent with, null before the first load. */
  block: number | null
  /** Wall-clock ms of the last successful load or poll, null before. */
  lastSyncAt: number | null
}

export interface PolicyStoreOptions {
  /** Decision for topics no registered name/filter matches. Default 'deny'. */
  unregisteredTopics?: 'deny' | 'allow'
  /** Allow everything valid before the first successful load (reason 'not-synced'). Default false. */
  failOpen?: boolean
}

export interface PolicyStoreEvents {
  change: [PolicyChange]
}

interface Entry extends PolicyEntry {
  owner: string
  countries: Set<string>
  sensitive: boolean
  open: boolean
  generation: number
  /** Lower-case address → slot in the store's expiry arrays (the public `grants` is a view over it). */
  slots: Map<string, number>
  grants: ReadonlyMap<string, GrantExpiry>
  registeredAt: number
  effective: boolean
  /** In the trie (effective, and its name is a valid plain filter). */
  indexed: boolean
  /** normalizedLevels(name), for overlap checks. */
  levels: string[]
  /** Its namespace claim; null for a name that is not a valid plain filter (never effective). */
  claim: Claim | null
}

/** A node of the namespace tree: one per claim path level. */
interface NsNode {
  children: Map<string, NsNode> | null
  /** Entries whose claim path ends here. */
  here: Entry[]
  /** Owner → entries whose claim path runs through or ends at this node. */
  owners: Map<string, number>
}

const newNsNode = (): NsNode => ({ children: null, here: [], owners: new Map() })
/** Order of entries without a registeredAt: after every chain position. */
const LATE = 2 ** 52

// Per-entry verdicts, ranked: the best one across the entries that decide is the answer.
const NO_GRANT = 1
const EXPIRED = 2
const COUNTRY = 3
const GRANTED = 4
const OWNER = 5
const REASON_OF: readonly DecisionReason[] = ['no-grant', 'no-grant', 'expired', 'country', 'granted', 'owner']

const fixed = (allowed: boolean, reason: DecisionReason): Decision => Object.freeze({ allowed, reason, sensitive: false })
const NOT_SYNCED = fixed(false, 'not-synced')
const FAIL_OPEN = fixed(true, 'not-synced')
const INVALID = fixed(false, 'invalid')
const UNREGISTERED = fixed(false, 'unregistered')
const UNREGISTERED_ALLOWED = fixed(true, 'unregistered-allowed')
const SHARE_PREFIX = '$share/'
const MATCH_CACHE_SIZE = 20_000
const MATCH_CACHE_KEY_MAX = 512
const NO_MATCHES: readonly Entry[] = Object.freeze([])

type Role = 'pub' | 'sub'

export class PolicyStore extends EventEmitter<PolicyStoreEvents> implements PolicyView {
  readonly unregisteredTopics: 'deny' | 'allow'
  readonly failOpen: boolean

  private readonly byId = new Map<string, Entry>()
  /**
   * Every grant's expiries, by slot: two doubles instead of an object and two bigints per grant (uint40 expiries
   * are exact as doubles). Freed slots are reused.
   */
  private pubs = new Float64Array(1024)
  private subs = new Float64Array(1024)
  private slotsUsed = 0
  private readonly freeSlots: number[] = []

  private readonly byName = new Map<string, Entry>()
  private readonly trie = new TopicTrie<Entry>()
  private readonly nsRoot: NsNode = newNsNode()
  private arrivals = 0
  private grantCount = 0
  private _synced = false
  private _block: number | null = null
  private _lastSyncAt: number | null = null
  /** Reused by subscribe lookups (decisions are synchronous, so never re-entered). */
  private readonly scratch: Entry[] = []
  /** Topic name → matching entries (see matchesOf). */
  private readonly matchCache = new Map<string, readonly Entry[]>()
  private pending: { topics: Set<string>; clients: Set<string> } | null = null
  private batchDepth = 0

  constructor(opts: PolicyStoreOptions = {}) {
    super()
    this.unregisteredTopics = opts.unregisteredTopics ?? 'deny'
    this.failOpen = opts.failOpen ?? false
  }

  get synced(): boolean {
    return this._synced
  }

  // ------------------------------------------------------------------ decisions

  canPublish(address: string, topic: string, country: string | null, nowSec?: number): Decision {
    return this.decideTopic(address, topic, country, nowSec, 'pub')
  }

  canReceive(address: string, topic: string, country: string | null, nowSec?: number): Decision {
    return this.decideTopic(address, topic, country, nowSec, 'sub')
  }

  canSubscribe(address: string, filter: string, country: string | null, nowSec?: number): Decision {
    const invalid = filter.startsWith(SHARE_PREFIX) || validateTopicFilter(filter) !== null
    if (!this._synced) return !this.failOpen ? NOT_SYNCED : invalid ? INVALID : FAIL_OPEN
    if (invalid) return INVALID
    const addr = address.toLowerCase()
    const cc = country === null ? null : country.toUpperCase()
    const now = nowSec ?? Math.floor(Date.now() / 1000)

    const candidates = this.scratch
    candidates.length = 0
    this.trie.overlapCandidates(filter, candidates)
    const levels = normalizedLevels(filter)
    let sensitive = false
    let overlapping = 0
    let firstOverlap: Entry | null = null
    let best = 0 // best verdict among entries covering the filter
    let bestRule: Entry | null = null
    let lacking = false // some overlapping entry gives this address nothing here
    for (const e of candidates) {
      if (!levelsOverlap(e.levels, levels)) continue
      overlapping++
      firstOverlap ??= e
      if (e.sensitive) sensitive = true
      const v = verdict(this, e, addr, 'sub', cc, now)
      if (v < GRANTED) lacking = true
      if (v > best && filterCovers(e.name, filter)) {
        best = v
        bestRule = e
      }
    }
    candidates.length = 0
    if (overlapping === 0) return this.unregistered(filter)
    if (best >= GRANTED) return { allowed: true, reason: REASON_OF[best] as DecisionReason, rule: (bestRule as Entry).name, sensitive }
    if (bestRule !== null) return { allowed: false, reason: REASON_OF[best] as DecisionReason, rule: bestRule.name, sensitive }
    // Nothing covers the whole filter. With unregistered topics allowed, the filter may still be fine if every
    // registered entry it overlaps grants this address (the rest of what it matches is unregistered).
    if (this.unregisteredTopics === 'allow' && !lacking && !filter.startsWith('$')) return { allowed: true, reason: 'unregistered-allowed', sensitive }
    return { allowed: false, reason: 'no-grant', rule: (firstOverlap as Entry).name, sensitive }
  }

  private decideTopic(address: string, topic: string, country: string | null, nowSec: number | undefined, role: Role): Decision {
    if (!this._synced) return !this.failOpen ? NOT_SYNCED : validateTopicName(topic) !== null ? INVALID : FAIL_OPEN
    const matches = this.matchesOf(topic)
    if (matches === null) return INVALID
    if (matches.length === 0) return this.unregistered(topic)
    const addr = address.toLowerCase()
    const cc = country === null ? null : country.toUpperCase()
    const now = nowSec ?? Math.floor(Date.now() / 1000)
    let best = 0
    let rule = matches[0] as Entry
    let sensitive = false
    for (const e of matches) {
      if (e.sensitive) sensitive = true
      const v = verdict(this, e, addr, role, cc, now)
      if (v > best) {
        best = v
        rule = e
      }
    }
    return { allowed: best >= GRANTED, reason: REASON_OF[best] as DecisionReason, rule: rule.name, sensitive }
  }

  /**
   * The entries matching a topic name, null when it is invalid. Topics repeat (devices publish to the same
   * few), so results are cached by name; the cache holds entry objects, whose owner, countries and grants
   * change in place, and is dropped whenever an entry joins or leaves the index.
   */
  private matchesOf(topic: string): readonly Entry[] | null {
    const cached = this.matchCache.get(topic)
    if (cached !== undefined) return cached
    if (validateTopicName(topic) !== null) return null
    const out: Entry[] = []
    this.trie.match(topic, out)
    if (topic.length <= MATCH_CACHE_KEY_MAX) {
      if (this.matchCache.size >= MATCH_CACHE_SIZE) this.matchCache.clear()
      this.matchCache.set(topic, out.length === 0 ? NO_MATCHES : out)
    }
    return out
  }

  /** `$` topics ($SYS, broker internals) are never opened by "unregistered: allow": only a registered entry can. */
  private unregistered(topicOrFilter: string): Decision {
    return this.unregisteredTopics === 'allow' && !topicOrFilter.startsWith('$') ? UNREGISTERED_ALLOWED : UNREGISTERED
  }

  // ------------------------------------------------------------------ reads

  /** The entry registered under this exact name or filter (not a match lookup). */
  entry(name: string): PolicyEntry | undefined {
    return this.byName.get(name)
  }

  /** The entry with this topic id (keccak256 of the name). */
  entryById(id: string): PolicyEntry | undefined {
    return this.byId.get(id.toLowerCase())
  }

  entries(): IterableIterator<PolicyEntry> {
    return this.byId.values()
  }

  /** A client's expiries on a registered name (undefined when it has none). */
  grant(name: string, address: string): GrantExpiry | undefined {
    const e = this.byName.get(name)
    const slot = e?.slots.get(address.toLowerCase())
    return slot === undefined ? undefined : this.expiryAt(slot)
  }

  /** Registered names/filters a topic name matches (for logs and tests). */
  matching(topic: string): string[] {
    return (this.matchesOf(topic) ?? []).map((e) => e.name)
  }

  stats(): PolicyStats {
    return { topics: this.byId.size, grants: this.grantCount, synced: this._synced, block: this._block, lastSyncAt: this._lastSyncAt }
  }

  // ------------------------------------------------------------------ mutators (policy sync)

  /**
   * Adds or updates a topic. A new generation (the topic was removed and registered again) drops every grant
   * of the old one, as the contract does. A topic without an owner is a removed topic.
   */
  upsertTopic(info: TopicInput): void {
    if (/^0x0{40}$/i.test(info.owner)) {
      this.removeTopic(info.id)
      return
    }
    const id = info.id.toLowerCase()
    const owner = info.owner.toLowerCase()
    const countries = new Set(info.countries.map((c) => c.toUpperCase()))
    const existing = this.byId.get(id)
    if (existing && existing.name === info.name) {
      const sameCountries = existing.countries.size === countries.size && [...countries].every((c) => existing.countries.has(c))
      const sameGen = existing.generation === info.generation
      const registeredAt = info.registeredAt ?? (sameGen ? existing.registeredAt : LATE + this.arrivals++)
      if (existing.owner === owner && sameCountries && existing.sensitive === info.sensitive && existing.open === info.open && sameGen && existing.registeredAt === registeredAt) return
      this.batch(() => {
        const moved = existing.owner !== owner || existing.registeredAt !== registeredAt
        if (moved) this.detach(existing)
        existing.owner = owner
        existing.registeredAt = registeredAt
        existing.countries = countries
        existing.sensitive = info.sensitive
        existing.open = info.open
        if (!sameGen) {
          existing.generation = info.generation
          for (const client of existing.slots.keys()) this.note(existing.name, client)
          this.dropGrants(existing)
        }
        if (moved) this.attach(existing)
        this.note(existing.name)
      })
      return
    }
    this.batch(() => {
      if (existing) this.removeTopic(id) // same id, different name: cannot happen with keccak ids, but stay consistent
      const valid = !info.name.startsWith(SHARE_PREFIX) && validateTopicFilter(info.name) === null
      const entry: Entry = {
        id,
        name: info.name,
        owner,
        countries,
        sensitive: info.sensitive,
        open: info.open,
        generation: info.generation,
        slots: new Map(),
        grants: null as unknown as ReadonlyMap<string, GrantExpiry>,
        registeredAt: info.registeredAt ?? LATE + this.arrivals++,
        effective: false,
        indexed: false,
        levels: normalizedLevels(info.name),
        claim: valid ? claimOf(info.name) : null,
      }
      entry.grants = new GrantsView(entry.slots, this)
      this.byId.set(id, entry)
      this.byName.set(entry.name, entry)
      this.attach(entry)
      this.note(entry.name)
    })
  }

  /** Removes a topic and all its grants. Unknown ids are ignored. */
  removeTopic(id: string): void {
    const entry = this.byId.get(id.toLowerCase())
    if (!entry) return
    this.batch(() => {
      this.byId.delete(entry.id)
      this.byName.delete(entry.name)
      this.detach(entry)
      for (const client of entry.slots.keys()) this.note(entry.name, client)
      this.dropGrants(entry)
      this.note(entry.name)
    })
  }

  // ------------------------------------------------------------------ namespace (first registered wins)

  /** Puts an entry in the namespace tree, decides whether it is effective, and re-decides the entries it overlaps. */
  private attach(entry: Entry): void {
    const claim = entry.claim
    if (claim === null) return
    let node = this.nsRoot
    bump(node, entry.owner, 1)
    for (const level of claim.path) {
      node.children ??= new Map()
      let child = node.children.get(level)
      if (!child) {
        child = newNsNode()
        node.children.set(level, child)
      }
      node = child
      bump(node, entry.owner, 1)
    }
    node.here.push(entry)
    this.redecide(entry)
    // A new entry can only shadow the overlapping entries registered after it (no full re-decision needed).
    for (const other of this.overlapping(entry)) if (entry.registeredAt < other.registeredAt) this.setEffective(other, false)
  }

  /** Takes an entry out of the namespace tree (and the trie) and re-decides the entries it overlapped. */
  private detach(entry: Entry): void {
    const claim = entry.claim
    if (claim === null) return
    this.setEffective(entry, false)
    const path: NsNode[] = [this.nsRoot]
    for (const level of claim.path) path.push(path[path.length - 1]?.children?.get(level) as NsNode)
    const last = path[path.length - 1] as NsNode
    last.here.splice(last.here.indexOf(entry), 1)
    for (const node of path) bump(node, entry.owner, -1)
    for (let i = path.length - 1; i > 0; i--) {
      const node = path[i] as NsNode
      if (node.owners.size > 0) break
      path[i - 1]?.children?.delete(claim.path[i - 1] as string)
    }
    // Only entries registered after it can have been shadowed by it: re-decide those.
    for (const other of this.overlapping(entry)) if (entry.registeredAt < other.registeredAt) this.redecide(other)
  }

  /**
   * Every other entry in the tree whose claim overlaps `entry`'s and whose owner differs (only those can
   * shadow it or be shadowed by it): claims on its path, and for a filter, everything under its claim path.
   */
  private overlapping(entry: Entry): Entry[] {
    const claim = entry.claim as Claim
    const out: Entry[] = []
    const consider = (e: Entry) => {
      if (e !== entry && e.owner !== entry.owner && claimsOverlap(e.claim as Claim, claim)) out.push(e)
    }
    let node: NsNode | undefined = this.nsRoot
    for (let i = 0; node !== undefined; i++) {
      for (const e of node.here) consider(e)
      if (i === claim.path.length) break
      node = node.children?.get(claim.path[i] as string)
    }
    // Under a filter's claim path: skip the walk when every entry there is the filter owner's (the usual case).
    if (node !== undefined && claim.subtree && !((node.owners.get(entry.owner) ?? 0) === sumOf(node.owners))) {
      const stack = [...(node.children?.values() ?? [])]
      for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
        for (const e of n.here) consider(e)
        if (n.children !== null) stack.push(...n.children.values())
      }
    }
    return out
  }

  /** An entry is effective iff no entry registered before it, by another owner, overlaps it. */
  private redecide(entry: Entry): void {
    if (entry.claim === null || this.byId.get(entry.id) !== entry) return
    const shadowed = this.overlapping(entry).some((e) => e.registeredAt < entry.registeredAt)
    this.setEffective(entry, !shadowed)
  }

  private setEffective(entry: Entry, effective: boolean): void {
    if (entry.effective === effective) return
    entry.effective = effective
    if (effective) {
      this.trie.insert(entry.name, entry)
      entry.indexed = true
    } else if (entry.indexed) {
      this.trie.remove(entry.name)
      entry.indexed = false
    }
    this.matchCache.clear()
    this.note(entry.name)
  }

  /**
   * Sets a client's expiries on a topic (both 0 removes the grant). Returns false for an unknown topic. Expiries
   * are the contract's uint40s; one that a double cannot hold exactly (≥ 2^53) is refused (RangeError).
   */
  setGrant(topicId: string, address: string, pubExpiry: bigint, subExpiry: bigint): boolean {
    const entry = this.byId.get(topicId.toLowerCase())
    if (!entry) return false
    const pub = exactNumber(pubExpiry)
    const sub = exactNumber(subExpiry)
    const lower = address.toLowerCase()
    const slot = entry.slots.get(lower)
    if (pub === 0 && sub === 0) {
      if (slot !== undefined) {
        entry.slots.delete(lower)
        this.freeSlots.push(slot)
        this.grantCount--
        this.note(entry.name, lower)
      }
      return true
    }
    if (slot !== undefined) {
      if (this.pubs[slot] === pub && this.subs[slot] === sub) return true
      this.pubs[slot] = pub
      this.subs[slot] = sub
      this.note(entry.name, lower)
      return true
    }
    const client = lower
    const s = this.allocSlot()
    this.pubs[s] = pub
    this.subs[s] = sub
    entry.slots.set(client, s)
    this.grantCount++
    this.note(entry.name, client)
    return true
  }

  /** @internal A slot's expiries as the API gives them. */
  expiryAt(slot: number): GrantExpiry {
    return { pubExpiry: BigInt(this.pubs[slot]!), subExpiry: BigInt(this.subs[slot]!) }
  }

  private allocSlot(): number {
    const free = this.freeSlots.pop()
    if (free !== undefined) return free
    if (this.slotsUsed === this.pubs.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2)
        b.set(a)
        return b
      }
      this.pubs = grow(this.pubs)
      this.subs = grow(this.subs)
    }
    return this.slotsUsed++
  }

  /** Frees every grant of an entry (removal or a new generation). */
  private dropGrants(entry: Entry): void {
    for (const slot of entry.slots.values()) this.freeSlots.push(slot)
    this.grantCount -= entry.slots.size
    entry.slots.clear()
  }

  /** @internal The verdict's read of a grant: the expiry of `role`, 0 when there is none. */
  expiryOf(entry: Entry, addr: string, role: Role): number {
    const slot = entry.slots.get(addr)
    if (slot === undefined) return 0
    return role === 'pub' ? this.pubs[slot]! : this.subs[slot]!
  }

  /** Replaces the whole policy (cold start). Grants on topics not in the snapshot are ignored. */
  replaceAll(snapshot: PolicySnapshot): void {
    this.batch(() => {
      for (const e of [...this.byId.values()]) {
        this.note(e.name)
        for (const client of e.slots.keys()) this.note(e.name, client)
      }
      this.slotsUsed = 0
      this.freeSlots.length = 0
      this.byId.clear()
      this.byName.clear()
      this.nsRoot.children = null
      this.nsRoot.here = []
      this.nsRoot.owners.clear()
      this.trie.clear()
      this.matchCache.clear()
      this.grantCount = 0
      for (const t of snapshot.topics) this.upsertTopic(t)
      for (const g of snapshot.grants) this.setGrant(g.topicId, g.client, g.pubExpiry, g.subExpiry)
    })
  }

  /** Records that the policy is consistent with `block`; the first call turns decisions on. */
  markSynced(block: number): void {
    this._synced = true
    this._block = block
    this._lastSyncAt = Date.now()
  }

  /** Runs `fn` and emits one 'change' for everything it changed (nested batches fold into the outer one). */
  batch<T>(fn: () => T): T {
    if (this.batchDepth++ === 0) this.pending = { topics: new Set(), clients: new Set() }
    try {
      return fn()
    } finally {
      if (--this.batchDepth === 0) {
        const p = this.pending as { topics: Set<string>; clients: Set<string> }
        this.pending = null
        if (p.topics.size > 0 || p.clients.size > 0) this.emit('change', { topics: [...p.topics], clients: [...p.clients] })
      }
    }
  }

  private note(topic: string, client?: string): void {
    if (this.pending) {
      this.pending.topics.add(topic)
      if (client !== undefined) this.pending.clients.add(client)
    } else {
      this.emit('change', { topics: [topic], clients: client === undefined ? [] : [client] })
    }
  }
}

/** The entry's verdict for `addr` in `role` (see the ranks above). */
function verdict(store: PolicyStore, e: Entry, addr: string, role: Role, country: string | null, now: number): number {
  let v: number
  if (e.owner === addr) {
    v = OWNER
  } else {
    const expiry = store.expiryOf(e, addr, role)
    if (expiry === 0) return NO_GRANT
    if (!(expiry > now)) return EXPIRED
    v = GRANTED
  }
  if (e.countries.size > 0 && (country === null || !e.countries.has(country))) return COUNTRY
  return v
}

function bump(node: NsNode, owner: string, by: 1 | -1): void {
  const n = (node.owners.get(owner) ?? 0) + by
  if (n === 0) node.owners.delete(owner)
  else node.owners.set(owner, n)
}

function sumOf(counts: ReadonlyMap<string, number>): number {
  let n = 0
  for (const c of counts.values()) n += c
  return n
}

/** A bigint expiry as a double, refusing one that a double cannot hold exactly. */
function exactNumber(x: bigint): number {
  if (x < 0n || x > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`grant expiry out of range: ${x}`)
  return Number(x)
}

/** `PolicyEntry.grants`: the entry's grants as a read-only Map of expiries, over the store's compact slots. */
class GrantsView implements ReadonlyMap<string, GrantExpiry> {
  constructor(
    private readonly slots: Map<string, number>,
    private readonly store: PolicyStore,
  ) {}
  get size(): number {
    return this.slots.size
  }
  get(address: string): GrantExpiry | undefined {
    const slot = this.slots.get(address)
    return slot === undefined ? undefined : this.store.expiryAt(slot)
  }
  has(address: string): boolean {
    return this.slots.has(address)
  }
  forEach(fn: (value: GrantExpiry, key: string, map: ReadonlyMap<string, GrantExpiry>) => void): void {
    for (const [k, v] of this) fn(v, k, this)
  }
  *entries(): MapIterator<[string, GrantExpiry]> {
    for (const [k, slot] of this.slots) yield [k, this.store.expiryAt(slot)]
  }
  keys(): MapIterator<string> {
    return this.slots.keys()
  }
  *values(): MapIterator<GrantExpiry> {
    for (const slot of this.slots.values()) yield this.store.expiryAt(slot)
  }
  [Symbol.iterator](): MapIterator<[string, GrantExpiry]> {
    return this.entries()
  }
}
