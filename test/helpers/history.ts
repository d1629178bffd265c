/**
 * One scripted chain history for the read side (audit report, web API): anvil with a FlyTrap deployment,
 * the proxy's journal written at chosen times, and contract calls each mined at its own timestamp S + offset
 * (S on an hour boundary, so 10-minute journal periods align).
 *
 * The plot both suites share — a reporter, Alice's plant namespace, Bob's grant and paid join, a fee change,
 * bans, a denied summary, the sensitive report and the anchor of period A — is `plantSteps`; each suite adds
 * its own steps, and Mallory's look-alike deployment (`forgedDeployment`) whose events must not show.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet, parseEther, type HDNodeWallet } from 'ethers'
import { FlyTrapClient, deployFlyTrap } from '../../src/lib/chain/client.js'
import { topicId } from '../../src/lib/chain/codec.js'
import { openJournal, type PeriodRoot } from '../../src/lib/audit/journal.js'
import type { EntryInput } from '../../src/lib/audit/entry.js'
import { rangeTally } from '../../src/lib/audit/journal-files.js'
import { membersRecords, type MembersCommitment } from '../../src/lib/audit/sensitive-members.js'
import { subjectForAddress, subjectForIp } from '../../src/lib/proxy/bans.js'
import { chainFixture, indexedLink, type ChainFixture } from './chain.js'
import { topicArgs } from './topics.js'

/** Journal periods of the scripted hour: 10 minutes. */
export const PERIOD_MS = 600_000

export interface History {
  fx: ChainFixture
  /** Start of the scripted hour (unix seconds, a multiple of 3600). */
  S: number
  /** The proxy's journal directory (empty until writeJournal). */
  dataDir: string
  ADMIN: string
  REPORTER: string
  ALICE: string
  BOB: string
  CAROL: string
  /** Anvil dev accounts #0..#4 as contract clients. */
  admin: FlyTrapClient
  reporter: FlyTrapClient
  alice: FlyTrapClient
  bob: FlyTrapClient
  carol: FlyTrapClient
  /** A funded stranger with no part in the real deployment. */
  mallory: HDNodeWallet
  /** Runs `fn` with its transaction mined at S + offset. */
  at<T>(offset: number, fn: () => Promise<T>): Promise<T>
}

export async function historyFixture(tmpPrefix: string): Promise<History> {
  const fx = await chainFixture()
  const rpc = fx.rpc
  const mallory = Wallet.createRandom().connect(fx.provider)
  await rpc.send('anvil_setBalance', [mallory.address, '0x56bc75e2d63100000']) // 100 ETH
  const latest = (await fx.provider.getBlock('latest'))!.timestamp
  const S = (Math.floor(latest / 3600) + 2) * 3600
  const addrOf = (i: number) => fx.wallet(i).address
  return {
    fx,
    S,
    dataDir: mkdtempSync(join(tmpdir(), tmpPrefix)),
    ADMIN: addrOf(0),
    REPORTER: addrOf(1),
    ALICE: addrOf(2),
    BOB: addrOf(3),
    CAROL: addrOf(4),
    admin: fx.as(0),
    reporter: fx.as(1),
    alice: fx.as(2),
    bob: fx.as(3),
    carol: fx.as(4),
    mallory,
    at: async (offset, fn) => {
      await rpc.send('evm_setNextBlockTimestamp', [S + offset])
      return fn()
    },
  }
}

/**
 * Writes the proxy's journal for the hour (each entry at S + offset) and closes it an hour later; resolves
 * with the roots of the first `periods` periods (A = [S, S+600), B = [S+600, S+1200), ...).
 */
export async function writeJournal(h: History, entries: readonly [offset: number, entry: EntryInput][], periods = 1): Promise<PeriodRoot[]> {
  let clock = 0
  const journal = await openJournal({ dataDir: h.dataDir, periodMs: PERIOD_MS, now: () => clock })
  for (const [offset, e] of entries) {
    clock = (h.S + offset) * 1000
    await journal.append(e)
  }
  const roots: PeriodRoot[] = []
  for (let i = 0; i < periods; i++) roots.push(await journal.periodRoot(h.S / 600 + i))
  clock = (h.S + 3600) * 1000
  await journal.close()
  return roots
}

/** A topic's sensitive report for [S + from, S + to) as the proxy files it: counts and the root of the journal's member records. */
export async function sensitiveMembers(h: History, topic: string, from: number, to: number): Promise<MembersCommitment> {
  return membersRecords((await rangeTally(h.dataDir, (h.S + from) * 1000, (h.S + to) * 1000)).sensitive.get(topic)!)
}

/** One contract call of the script, mined at S + offset. */
export type Step = [offset: number, run: () => Promise<unknown>]

/** Runs the steps in time order (a block's timestamp can only grow). */
export async function runSteps(h: History, steps: readonly Step[]): Promise<void> {
  for (const [offset, run] of [...steps].sort((a, b) => a[0] - b[0])) await h.at(offset, run)
}

/** Bans recorded at S + 720 last until S + 86 400. */
export const banUntil = (h: History): number => h.S + 86_400

/**
 * The shared plot. Where the suites differ: the countries plant/valve starts with, and the reason of Bob's
 * publish grant (the report's has quotes, for CSV).
 */
export function plantSteps(h: History, o: { periodA: PeriodRoot; members: MembersCommitment; valveCountries?: string[]; bobGrantReason: string }): Step[] {
  const until = banUntil(h)
  return [
    [60, () => h.admin.addReporter(h.REPORTER, 'proxy eu-1')],
    [120, () => h.alice.addTopic(topicArgs('plant/valve', { pubFee: parseEther('0.001'), subFee: parseEther('0.002'), sensitive: true, open: true, countries: o.valveCountries, reason: 'installer request #1' }))],
    [180, () => h.alice.addTopic(topicArgs('plant/#', { reason: 'site-wide feed' }))],
    [240, () => h.alice.allow('plant/valve', h.BOB, 1, 0, o.bobGrantReason)],
    [300, () => h.bob.join('plant/valve', 2, 1, parseEther('0.002'))],
    [360, () => h.alice.setFees('plant/valve', parseEther('0.003'), parseEther('0.004'), 0, 'price review')],
    [720, () => h.reporter.recordBans([subjectForAddress(h.BOB), subjectForIp('198.51.100.66', 'k')!], [until, until], 'threshold')],
    [780, () => h.reporter.recordDenied(h.S, h.S + 600, [topicId('plant/valve'), topicId('$connect')], [5, 2])],
    [840, () => h.reporter.recordSensitive(topicId('plant/valve'), h.S, h.S + 600, o.members)],
    [900, async () => h.reporter.anchor(await indexedLink(h.dataDir, o.periodA))],
  ]
}

/** Mallory's own FlyTrap, deployed at S + offset: her client on it (same events, same topics, another address). */
export async function forgedDeployment(h: History, offset: number): Promise<FlyTrapClient> {
  const d = await h.at(offset, () => deployFlyTrap(h.mallory))
  return new FlyTrapClient(d.address, h.mallory)
}
