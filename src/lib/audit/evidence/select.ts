/**
 * Which contract events an evidence bundle must cite, decided by one rule the exporter and the checker both
 * apply to the chain's own logs (so a bundle that leaves one out fails): the policy events of the scope's
 * topics or client up to the bundle's `asOf` block, and the period summaries whose interval lies in the
 * scope. Pure and isomorphic.
 */
import { keccak256, toUtf8Bytes } from 'ethers'
import { topicsOverlap } from '../scope-index.js'
import type { CitedEvent, EventValue } from './format.js'

export { topicsOverlap }

/** Events that say who may access a topic, and who decided it. */
export const POLICY_EVENTS = ['TopicAdded', 'TopicFeesChanged', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved', 'Granted', 'Revoked', 'Joined'] as const
const MEMBER_EVENTS = new Set(['Granted', 'Revoked', 'Joined'])
/** Per-period summaries the reporter files. */
export const SUMMARY_EVENTS = ['SensitiveReport', 'SensitiveReportClear', 'DeniedSummary'] as const
export const REPORTER_EVENT_NAMES = ['ReporterAdded', 'ReporterRemoved'] as const

/** keccak256(utf8(name)): the contract's topic id. */
export const topicIdOf = (name: string): string => keccak256(toUtf8Bytes(name)).toLowerCase()

const str = (v: EventValue | undefined): string => (typeof v === 'string' ? v : '')
const pos = (e: CitedEvent) => [e.ref.blockNumber, e.ref.logIndex] as const
export const chainOrder = (a: CitedEvent, b: CitedEvent): number => a.ref.blockNumber - b.ref.blockNumber || a.ref.logIndex - b.ref.logIndex
export const refKey = (e: { ref: { txHash: string; logIndex: number } }): string => `${e.ref.txHash.toLowerCase()}:${e.ref.logIndex}`

/**
 * The policy events a bundle for `scope` cites, from `events` (decoded logs of the contract, any names):
 * - topic X: every policy event of a topic whose registered name or filter overlaps X (names from TopicAdded);
 * - client A: its Granted/Revoked/Joined, and the other policy events of the topics those name;
 * - neither: every policy event.
 * Only events at or before block `asOf`.
 */
export function selectPolicy(events: readonly CitedEvent[], scope: { topic: string | null; client: string | null }, asOf: number): CitedEvent[] {
  const policy = events.filter((e) => (POLICY_EVENTS as readonly string[]).includes(e.event) && e.ref.blockNumber <= asOf)
  let keep: (e: CitedEvent) => boolean
  if (scope.topic !== null) {
    const ids = new Set([topicIdOf(scope.topic)])
    for (const e of policy) if (e.event === 'TopicAdded' && topicsOverlap(str(e.args.name), scope.topic)) ids.add(str(e.args.topic))
    keep = (e) => ids.has(str(e.args.topic))
  } else if (scope.client !== null) {
    const who = scope.client.toLowerCase()
    const ids = new Set(policy.filter((e) => MEMBER_EVENTS.has(e.event) && str(e.args.client) === who).map((e) => str(e.args.topic)))
    keep = (e) => (MEMBER_EVENTS.has(e.event) ? str(e.args.client) === who : ids.has(str(e.args.topic)))
  } else keep = () => true
  return policy.filter(keep).sort(chainOrder)
}

/** The summaries a bundle cites: SensitiveReport/SensitiveReportClear/DeniedSummary at or before `asOf` whose [fromTime, toTime) lies in [fromMs, toMs). */
export function selectSummaries(events: readonly CitedEvent[], range: { fromMs: number; toMs: number }, asOf: number): CitedEvent[] {
  return events
    .filter((e) => (SUMMARY_EVENTS as readonly string[]).includes(e.event) && e.ref.blockNumber <= asOf)
    .filter((e) => Number(str(e.args.fromTime)) * 1000 >= range.fromMs && Number(str(e.args.toTime)) * 1000 <= range.toMs)
    .sort(chainOrder)
}

export { pos as eventPosition }
