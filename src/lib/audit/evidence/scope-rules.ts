/**
 * The scope index's rules (src/lib/audit/scope-index.ts) as a bundle's scope uses them: a bundle's scope is
 * a topic, a client, or neither (the whole journal); with neither, or a topic with no literal prefix (`#`,
 * `+/…`), every entry of each period is disclosed instead of index keys. Pure and isomorphic.
 */
import type { JournalEntry } from '../entry.js'
import { inScope as indexInScope, keysToOpen, type Scope as IndexScope } from '../scope-index.js'

export { absenceProof, buildScopeIndex, indexLeafOf, keyHash, membershipProof, scopeKeys, seqsDigest, topicsOverlap, verifyAbsence, verifyMembership } from '../scope-index.js'

/** A bundle's scope (null = not filtered on that). */
export interface Scope {
  topic: string | null
  client: string | null
}

const toIndexScope = (s: Scope): IndexScope => ({ ...(s.topic !== null ? { topic: s.topic } : {}), ...(s.client !== null ? { client: s.client } : {}) })

/** What each period must carry: the keys to open, or (wholePeriod) every entry of the period. */
export function bundleKeys(scope: Scope): { keys: string[]; wholePeriod: boolean } {
  if (scope.topic === null && scope.client === null) return { keys: [], wholePeriod: true }
  const k = keysToOpen(toIndexScope(scope))
  return k.wholePeriod ? { keys: [], wholePeriod: true } : k
}

/** Whether an entry is in the bundle's scope (everything, for a whole-journal bundle). */
export function inScope(entry: Pick<JournalEntry, 'address' | 'topic'>, scope: Scope): boolean {
  if (scope.topic === null && scope.client === null) return true
  return indexInScope(entry, toIndexScope(scope))
}
