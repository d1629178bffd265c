/**
 * A small scripted deployment history for the browser test: topics, grants, a revoke, a join, bans, refusals;
 * then real traffic through the proxy and mosquitto journaled in `dataDir` (live-traffic.ts: a sensitive
 * delivery, refusals for a ban, an expired credential, no grant and an unregistered topic); then a scripted
 * journal period (a connect, a publish under the member's grant, a refused connect whose unverified
 * credential claimed the member's address) anchored with its true root by the reporter.
 */
import { parseEther, zeroPadValue } from 'ethers'
import { topicId } from '../../src/lib/chain/client.js'
import { openJournal } from '../../src/lib/audit/journal.js'
import { indexedLink, type ChainFixture } from '../helpers/chain.js'
import { topicArgs } from '../helpers/topics.js'
import { liveTraffic } from './live-traffic.js'

export const TOPIC = 'plant/valve'
export const SENSITIVE = 'plant/alarm'
/** A topic nobody registered: refusals on it show its name from the journal, its id from the chain. */
export const UNLISTED = 'plant/unlisted'
export const REVOKE_REASON = 'contract ended, badge returned'

export interface History {
  owner: string
  member: string
  revoked: string
  payer: string
  reporter: string
  /** The reporter's private key (it anchors the journal and signs evidence bundles). */
  reporterKey: string
  /** Entries in the anchored journal period. */
  journaled: number
  /** Block time of the first and last scripted transaction (ms). */
  startMs: number
  endMs: number
}

/** Journal period length (ms): short, so the chain need not jump far ahead of the wall clock. */
const PERIOD_MS = 60_000

export async function scriptHistory(fx: ChainFixture, dataDir: string): Promise<History> {
  const admin = fx.as(0)
  const owner = fx.wallet(1).address
  const member = fx.wallet(5).address
  const revoked = fx.wallet(6).address
  const payer = fx.wallet(7).address
  const reporter = fx.wallet(3).address
  const ownerC = fx.as(1)
  const blockMs = async () => ((await fx.provider.getBlock('latest'))!.timestamp as number) * 1000

  const first = await ownerC.addTopic(topicArgs(TOPIC, { pubFee: parseEther('0.01'), open: true, period: 86400, countries: ['DE', 'GB'], reason: 'valve telemetry for the plant' }))
  const startMs = ((await fx.provider.getBlock(first.blockNumber))!.timestamp as number) * 1000
  await ownerC.addTopic(topicArgs(SENSITIVE, { sensitive: true, reason: 'alarms: sensitive' }))
  await ownerC.allow(TOPIC, member, 3, 0, 'maintenance contract')
  await ownerC.allow(SENSITIVE, member, 2, 0, 'alarm console')
  await ownerC.allow(TOPIC, revoked, 1, Math.floor(startMs / 1000) + 30 * 86400, 'contractor, thirty days')
  await ownerC.revoke(TOPIC, revoked, 1, REVOKE_REASON)
  await fx.as(7).join(TOPIC, 1, 2, parseEther('0.02'))
  await admin.addReporter(reporter, 'proxy on plant-gw-1')
  const rep = fx.as(3)
  const t = Math.floor(startMs / 1000)
  await rep.recordBans([zeroPadValue(revoked, 32), topicId('ip-hash-1')], [t + 3600, t + 1800], 'auth flood')
  await rep.recordDenied(t - 600, t, [topicId('$connect'), topicId(TOPIC), topicId(UNLISTED)], [4, 2, 1])
  await rep.recordSensitive(topicId(SENSITIVE), t - 600, t, { publishers: 1, published: 3, receivers: 1, received: 3, membersRoot: topicId('members of the alarms') })

  // Real traffic through the proxy first (its own, earlier period; not anchored), then the scripted period.
  await liveTraffic(fx, dataDir, { owner: 1, member: 5, revoked: 6, payer: 7 }, { topic: TOPIC, sensitive: SENSITIVE, unlisted: UNLISTED }, PERIOD_MS)

  // The proxy's journal for the next whole period after the grants, then its anchor once the period is over.
  const pStart = Math.ceil(((await blockMs()) + 1) / PERIOD_MS) * PERIOD_MS
  let clock = pStart
  const journal = await openJournal({ dataDir, periodMs: PERIOD_MS, now: () => clock })
  const entry = async (offset: number, e: Parameters<typeof journal.append>[0]) => {
    clock = pStart + offset
    await journal.append(e)
  }
  await entry(1000, { kind: 'connect', outcome: 'allow', reason: 'signature', address: member, clientId: 'valve-ctl', country: 'DE', ip: '203.0.113.9' })
  await entry(2000, { kind: 'publish', outcome: 'allow', reason: 'granted', address: member, clientId: 'valve-ctl', topic: TOPIC })
  await entry(3000, { kind: 'connect', outcome: 'deny', reason: 'signature', address: member, clientId: 'impostor', country: 'GB', ip: '198.51.100.7', unverified: true })
  clock = pStart + PERIOD_MS + 1000
  const period = await journal.periodRoot(pStart / PERIOD_MS)
  await journal.close()
  await fx.rpc.send('evm_setNextBlockTimestamp', [(pStart + PERIOD_MS) / 1000 + 5])
  await rep.anchor(await indexedLink(dataDir, period))
  return { owner, member, revoked, payer, reporter, reporterKey: fx.wallet(3).privateKey, journaled: 3, startMs, endMs: await blockMs() }
}
