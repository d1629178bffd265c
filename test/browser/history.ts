/** A small scripted deployment history for the browser test: topics, grants, a revoke, a join, bans, refusals, an anchor. */
import { parseEther, zeroPadValue } from 'ethers'
import { topicId } from '../../src/lib/chain/client.js'
import { encodeCountries } from '../../src/lib/chain/codec.js'
import type { ChainFixture } from '../helpers/chain.js'

export const TOPIC = 'plant/valve'
export const SENSITIVE = 'plant/alarm'
export const REVOKE_REASON = 'contract ended, badge returned'

export interface History {
  owner: string
  member: string
  revoked: string
  payer: string
  reporter: string
  /** Block time of the first and last scripted transaction (ms). */
  startMs: number
  endMs: number
}

export async function scriptHistory(fx: ChainFixture): Promise<History> {
  const admin = fx.as(0)
  const owner = fx.wallet(1).address
  const member = fx.wallet(5).address
  const revoked = fx.wallet(6).address
  const payer = fx.wallet(7).address
  const reporter = fx.wallet(3).address
  const ownerC = fx.as(1)
  const blockMs = async () => ((await fx.provider.getBlock('latest'))!.timestamp as number) * 1000

  const first = await ownerC.addTopic({ name: TOPIC, pubFee: parseEther('0.01'), subFee: 0n, sensitive: false, open: true, period: 86400, countries: encodeCountries(['DE', 'GB']), reason: 'valve telemetry for the plant' })
  const startMs = ((await fx.provider.getBlock(first.blockNumber))!.timestamp as number) * 1000
  await ownerC.addTopic({ name: SENSITIVE, pubFee: 0n, subFee: 0n, sensitive: true, open: false, period: 0, countries: '0x', reason: 'alarms: sensitive' })
  await ownerC.allow(TOPIC, member, 3, 0, 'maintenance contract')
  await ownerC.allow(TOPIC, revoked, 1, Math.floor(startMs / 1000) + 30 * 86400, 'contractor, thirty days')
  await ownerC.revoke(TOPIC, revoked, 1, REVOKE_REASON)
  await fx.as(7).join(TOPIC, 1, 2, parseEther('0.02'))
  await admin.addReporter(reporter, 'proxy on plant-gw-1')
  const rep = fx.as(3)
  const t = Math.floor(startMs / 1000)
  await rep.recordBans([zeroPadValue(revoked, 32), topicId('ip-hash-1')], [t + 3600, t + 1800], 'auth flood')
  await rep.recordDenied(t - 600, t, [topicId('$connect'), topicId(TOPIC)], [4, 2])
  await rep.recordSensitive(topicId(SENSITIVE), t - 600, t, [member], [3], [owner], [3])
  await rep.anchor({ fromTime: t - 600, toTime: t, firstSeq: 1, count: 12, root: `0x${'ab'.repeat(32)}`, index: `0x${'ef'.repeat(32)}`, prevChain: `0x${'00'.repeat(32)}`, chain: `0x${'cd'.repeat(32)}` })
  return { owner, member, revoked, payer, reporter, startMs, endMs: await blockMs() }
}
