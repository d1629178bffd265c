/** Stable JSON shapes for command results (bigints as decimal strings, fees in ETH and wei). */
import { formatExpiry, formatFee, FOREVER } from './codec.js'
import type { MemberInfo, TopicInfo, TxResult } from './client.js'

export interface TxJson {
  hash: string
  block: number
  gasUsed: string
}

export interface TopicJson {
  name: string
  id: string
  owner: string
  pubFeeEth: string
  subFeeEth: string
  pubFeeWei: string
  subFeeWei: string
  sensitive: boolean
  open: boolean
  periodSeconds: number
  countries: string[]
}

export interface MemberJson {
  client: string
  publish: boolean
  subscribe: boolean
  /** ISO time, "never" (until revoked) or "none". */
  pubExpiry: string
  subExpiry: string
}

export function txJson(tx: TxResult): TxJson {
  return { hash: tx.hash, block: tx.blockNumber, gasUsed: tx.gasUsed.toString() }
}

export function topicJson(t: TopicInfo): TopicJson {
  return {
    name: t.name,
    id: t.id,
    owner: t.owner,
    pubFeeEth: formatFee(t.pubFee),
    subFeeEth: formatFee(t.subFee),
    pubFeeWei: t.pubFee.toString(),
    subFeeWei: t.subFee.toString(),
    sensitive: t.sensitive,
    open: t.open,
    periodSeconds: t.period,
    countries: t.countries,
  }
}

export function memberJson(m: MemberInfo, now = BigInt(Math.floor(Date.now() / 1000))): MemberJson {
  const live = (e: bigint) => e === FOREVER || e > now
  return {
    client: m.client,
    publish: live(m.pubExpiry),
    subscribe: live(m.subExpiry),
    pubExpiry: formatExpiry(m.pubExpiry),
    subExpiry: formatExpiry(m.subExpiry),
  }
}
