/**
 * Which policy event allowed a disclosed access (docs/evidence.md §3.9, §6.1 step 4d), the rule the exporter
 * and the checker share: which entries need a grant, the policy replay (grants.ts GrantHistory) over the
 * cited events with their `ref.time`, and the minimal check any checker must do — the cited event is a
 * Granted/Joined of that client and role, in force and not revoked at the entry's time, or the owner's
 * TopicAdded/TopicTransferred not transferred away or removed since. Pure and isomorphic.
 */
import { FOREVER } from '../../chain/codec.js'
import { GrantHistory, type PolicyLog } from '../grants.js'
import type { CitedEvent, DisclosedEntry } from './format.js'
import { topicsOverlap } from './select.js'

/** The role an allowed access used: publish/will publish, subscribe/deliver subscribe. */
export const ACCESS: Readonly<Record<string, 'publish' | 'subscribe'>> = { publish: 'publish', will: 'publish', subscribe: 'subscribe', deliver: 'subscribe' }
/** The contract's role bits (ROLE_PUBLISH, ROLE_SUBSCRIBE). */
const BIT = { publish: 1, subscribe: 2 } as const

/** The disclosed entries a bundle names a grant for: allowed publish/subscribe/deliver/will with an address and a topic. */
export function grantedEntries(disclosed: readonly DisclosedEntry[]): DisclosedEntry[] {
  return disclosed.filter((e) => e.entry.outcome === 'allow' && Object.hasOwn(ACCESS, e.entry.kind) && !!e.entry.address && !!e.entry.topic)
}

export const policyLog = (e: CitedEvent): PolicyLog => ({ name: e.event, args: e.args, block: e.ref.blockNumber, logIndex: e.ref.logIndex, txHash: e.ref.txHash, time: e.ref.time })

/** What GrantHistory over `events` says allowed each entry (same order): the cause as `<tx>:<logIndex>`, or null. */
export function replayGrants(events: readonly CitedEvent[], entries: readonly DisclosedEntry[]): (string | null)[] {
  const h = new GrantHistory(events.map(policyLog))
  const out: (string | null)[] = new Array<string | null>(entries.length).fill(null)
  const order = entries.map((e, i) => [e, i] as const).sort((a, b) => a[0].entry.t - b[0].entry.t || a[1] - b[1])
  for (const [e, i] of order) {
    const c = h.grantInForce(e.entry.topic!, e.entry.address!, ACCESS[e.entry.kind]!, e.entry.t)
    out[i] = c ? `${c.tx.toLowerCase()}:${c.logIndex}` : null
  }
  return out
}

const after = (x: CitedEvent, y: CitedEvent) => x.ref.blockNumber > y.ref.blockNumber || (x.ref.blockNumber === y.ref.blockNumber && x.ref.logIndex > y.ref.logIndex)
const str = (v: unknown) => String(v).toLowerCase()

/** Why cited event `p` does not explain the access `e` (rules (a)/(b) of §6.1 step 4d), or null when it does. */
export function grantExplains(p: CitedEvent, e: DisclosedEntry, policy: readonly CitedEvent[]): string | null {
  const role = ACCESS[e.entry.kind]!
  const bit = BIT[role]
  const who = e.entry.address!.toLowerCase()
  const t = e.entry.t
  const id = str(p.args.topic)
  const what = `${p.event} (tx ${p.ref.txHash}, log ${p.ref.logIndex})`
  if (!['Granted', 'Joined', 'TopicAdded', 'TopicTransferred'].includes(p.event)) return `names ${what}, which allows no access`
  const names = policy.filter((x) => x.event === 'TopicAdded' && str(x.args.topic) === id).map((x) => String(x.args.name))
  if (names.length === 0) return `names ${what}, of a topic no cited TopicAdded registers`
  if (!names.some((n) => topicsOverlap(n, e.entry.topic!))) return `names ${what}, of topic ${JSON.stringify(names[0])}, which does not overlap the entry's topic ${JSON.stringify(e.entry.topic)}`
  if (p.ref.time * 1000 > t) return `names ${what}, which is later than the entry`
  const within = (x: CitedEvent) => str(x.args.topic) === id && after(x, p) && x.ref.time * 1000 <= t
  if (p.event === 'Granted' || p.event === 'Joined') {
    if (str(p.args.client) !== who) return `names ${what}, for client ${str(p.args.client)}, not the entry's ${who}`
    if ((Number(p.args.roles) & bit) === 0) return `names ${what}, whose roles (${String(p.args.roles)}) do not include ${role}`
    const expiry = BigInt(String(p.event === 'Granted' ? p.args.expiresAt : bit === 1 ? p.args.pubExpiresAt : p.args.subExpiresAt))
    if (!(expiry === 0n || expiry === FOREVER || expiry * 1000n > BigInt(t))) return `names ${what}, which expired at ${new Date(Number(expiry) * 1000).toISOString()}, before the entry`
    const revoked = policy.find((x) => x.event === 'Revoked' && within(x) && str(x.args.client) === who && (Number(x.args.roles) & bit) !== 0)
    if (revoked) return `names ${what}, revoked before the entry by Revoked (tx ${revoked.ref.txHash}, log ${revoked.ref.logIndex})`
    // A later grant or join of the same role replaces this one's expiry: it is the one in force (an operator
    // must not point at a superseded grant whose replacement had already expired).
    const later = policy.find((x) => (x.event === 'Granted' || x.event === 'Joined') && within(x) && str(x.args.client) === who && (Number(x.args.roles) & bit) !== 0)
    if (later) return `names ${what}, superseded before the entry by ${later.event} (tx ${later.ref.txHash}, log ${later.ref.logIndex})`
    return null
  }
  const owner = p.event === 'TopicAdded' ? str(p.args.owner) : str(p.args.to)
  if (owner !== who) return `names ${what}, which makes ${owner} the owner, not the entry's ${who}`
  const gone = policy.find((x) => (x.event === 'TopicTransferred' || x.event === 'TopicRemoved') && within(x))
  if (gone) return `names ${what}, but ${gone.event} (tx ${gone.ref.txHash}, log ${gone.ref.logIndex}) ended that ownership before the entry`
  return null
}
