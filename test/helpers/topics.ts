/**
 * Builders for the contract's topic registrations and grants, so a test states only what it cares about
 * (a plain topic is free, closed, not sensitive, everywhere, forever).
 */
import type { FlyTrapClient } from '../../src/lib/chain/client.js'
import { encodeCountries, type RoleMask } from '../../src/lib/chain/codec.js'

/** Grant roles (the contract's role mask). */
export const PUB = 1 as const
export const SUB = 2 as const
export const BOTH = 3 as const

export type TopicArgs = Parameters<FlyTrapClient['addTopic']>[0]

export interface TopicOptions {
  pubFee?: bigint
  subFee?: bigint
  sensitive?: boolean
  open?: boolean
  period?: number
  /** Country codes (['GB', 'DE']), or the contract's packed hex form; none = everywhere. */
  countries?: string | readonly string[]
  reason?: string
  /** Registration fee sent with the transaction. */
  value?: bigint
}

/** The arguments of FlyTrapClient.addTopic for a plain topic, with `over` applied. */
export function topicArgs(name: string, over: TopicOptions = {}): TopicArgs {
  const { countries, ...rest } = over
  const packed = countries === undefined ? '0x' : typeof countries === 'string' ? countries : countries.length > 0 ? encodeCountries(countries) : '0x'
  return { name, pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, reason: 'test', ...rest, countries: packed }
}

/** Registers plain topics as `owner` and grants each listed client its roles on every one of them, until revoked. */
export async function registerTopics(owner: FlyTrapClient, names: readonly string[], grants: Readonly<Record<string, RoleMask>> = {}, over: TopicOptions = {}): Promise<void> {
  for (const name of names) {
    await owner.addTopic(topicArgs(name, over))
    for (const [client, roles] of Object.entries(grants)) await owner.allow(name, client, roles, 0, over.reason ?? 'test')
  }
}
