/**
 * The namespace model (docs/namespaces.md): which registrations of different owners may coexist. A
 * registration's claim is its levels before the first wildcard (all of them for an exact name); a filter
 * claims that path and everything under it, an exact name claims only itself. Two registrations overlap iff
 * one claims the other's path: exact `a/b` and `a/b` (a duplicate); filter `a/#` (or `a/+`, `a/+/c`) and
 * anything at or under `a`; `#` or `+/x` (empty claim path) and everything. This is conservative: every
 * pair of filters that can match a common topic overlaps, and some that cannot do too (`a/+` and `a`, `#`
 * and `$SYS/x`). The contract refuses a registration or transfer that would overlap another owner's
 * (contracts/FlyTrap.sol, `_enter`); the policy store applies the same rule to what it loads. Decided here.
 */

export interface Claim {
  /** The literal levels before the first wildcard (all levels of an exact name). */
  readonly path: readonly string[]
  /** A filter (claims everything at or under `path`); false for an exact name (claims only itself). */
  readonly subtree: boolean
}

/** The claim of a valid topic name or filter. */
export function claimOf(name: string): Claim {
  const levels = name.split('/')
  const wild = levels.findIndex((l) => l === '+' || l === '#')
  return wild === -1 ? { path: levels, subtree: false } : { path: levels.slice(0, wild), subtree: true }
}

/** True iff `inner` is at or under `outer` (outer's path is a level-wise prefix of inner's). */
function within(inner: readonly string[], outer: readonly string[]): boolean {
  if (outer.length > inner.length) return false
  for (let i = 0; i < outer.length; i++) if (outer[i] !== inner[i]) return false
  return true
}

/**
 * Whether two claims overlap: registrations with overlapping claims may only have one owner. A filter
 * overlaps everything at or under its path; two exact names overlap only when equal.
 */
export function claimsOverlap(a: Claim, b: Claim): boolean {
  if (a.subtree && within(b.path, a.path)) return true
  if (b.subtree && within(a.path, b.path)) return true
  return !a.subtree && !b.subtree && a.path.length === b.path.length && within(a.path, b.path)
}

/** claimsOverlap for two valid topic names or filters. */
export function namespacesOverlap(a: string, b: string): boolean {
  return claimsOverlap(claimOf(a), claimOf(b))
}

/** The claim path as the contract names it in NamespaceClaimed/NamespaceOccupied ('' = every topic). */
export function claimPrefix(claim: Claim): string {
  return claim.path.join('/')
}

export interface Registration {
  name: string
  owner: string
}

/**
 * The registrations that stand in the way of `owner` holding `names` (registering them, or receiving them in
 * one transfer): those of other owners, apart from `names` themselves, that overlap any of them.
 */
export function namespaceConflicts(names: readonly string[], owner: string, registrations: readonly Registration[]): Registration[] {
  const mine = owner.toLowerCase()
  const moving = new Set(names)
  const claims = names.map(claimOf)
  return registrations.filter((r) => !moving.has(r.name) && r.owner.toLowerCase() !== mine && claims.some((c) => claimsOverlap(c, claimOf(r.name))))
}
