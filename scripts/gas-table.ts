/**
 * Measures the gas (receipt gasUsed) of every FlyTrap operation in representative configurations on a
 * fresh deployment, and compares the ones it can with the 2020 prototype measured on the same EVM.
 *
 *   npx tsx scripts/gas-table.ts        starts its own anvil, prints a markdown table
 *
 * measureGas(rpcUrl) is also used by test/contract/gas.test.ts. It deploys a new contract and sends from
 * anvil dev accounts #0 (admin and topic owner), #1 (member / new owner) and #2 (reporter). The addTopic rows
 * register beside an existing name; the depth rows show the namespace check's cost per level on a path never
 * used before (a fresh slot per level) and beside a name already there.
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Wallet, parseEther, zeroPadValue } from 'ethers'
import { ANVIL_DEV_KEYS, startAnvil } from '../src/lib/dev/anvil.js'
import { FlyTrapClient, connect, deployFlyTrap, type TxResult } from '../src/lib/chain/client.js'
import { encodeCountries, topicId } from '../src/lib/chain/codec.js'

export interface Row {
  operation: string
  gas: number
  /** The 2020 prototype's figure for the equivalent operation, when there is one. */
  prototype2020: number | null
  /** "better (-x %)", "worse (+x %)" or "" when there is nothing to compare with. */
  verdict: string
}

/** The 2020 prototype's figures (same EVM), by what they compare with. */
export const PROTOTYPE_2020 = {
  /** addTopic, a topic with fees, sensitive and open. */
  addTopic: 103_000,
  /** addPub / addSub: one role granted to a new client. */
  grant: 56_000,
  /** revoke: the client's last role. */
  revoke: 31_000,
  /** one ban, one transaction each. */
  ban: 28_800,
  /** a sensitive-topic summary of 10 publishers and 10 receivers. */
  sensitive: 64_500,
} as const

export function verdict(gas: number, prototype: number | null): string {
  if (prototype === null) return ''
  const pct = Math.round(((gas - prototype) / prototype) * 1000) / 10
  return gas <= prototype ? `better (${pct} %)` : `worse (+${pct} %)`
}

function row(operation: string, gas: bigint | number, prototype: number | null = null): Row {
  const g = Number(gas)
  return { operation, gas: g, prototype2020: prototype, verdict: verdict(g, prototype) }
}

const fmt = (n: number) => n.toLocaleString('en-US')

export function formatTable(rows: readonly Row[]): string {
  const lines = ['| operation | gas | 2020 prototype | verdict |', '|---|---:|---:|---|']
  for (const r of rows) lines.push(`| ${r.operation} | ${fmt(r.gas)} | ${r.prototype2020 === null ? '' : fmt(r.prototype2020)} | ${r.verdict} |`)
  return lines.join('\n')
}

/** Deepest name of the namespace-check rows. */
export const MAX_DEPTH = 6

/** A path of `depth` levels whose first level no other row uses: ns-3/l2/l3. */
export function namespacePath(depth: number): string[] {
  return [`ns-${depth}`, ...Array.from({ length: depth - 1 }, (_, i) => `l${i + 2}`)]
}

/** Deterministic stand-ins for addresses and hashes the proxy would report. */
function fakeAddress(i: number): string {
  return zeroPadValue(`0x${(0x1000 + i).toString(16)}`, 20)
}

export async function measureGas(rpcUrl: string): Promise<Row[]> {
  const { provider } = await connect(rpcUrl)
  try {
    const [adminW, memberW, reporterW] = [0, 1, 2].map((i) => new Wallet(ANVIL_DEV_KEYS[i]!, provider)) as [Wallet, Wallet, Wallet]
    const rows: Row[] = []
    const measure = async (operation: string, tx: Promise<TxResult>, prototype: number | null = null): Promise<TxResult> => {
      const res = await tx
      rows.push(row(operation, res.gasUsed, prototype))
      return res
    }

    const deployed = await deployFlyTrap(adminW)
    rows.push(row('deploy', deployed.gasUsed))
    const owner = new FlyTrapClient(deployed.address, adminW)
    const member = new FlyTrapClient(deployed.address, memberW)
    const reporter = new FlyTrapClient(deployed.address, reporterW)

    const FEED = 'plant-7/line-2/temperature' // fees + sensitive + open: grants, joins
    const PLAIN = 'plant-7/line-2/humidity' // no fees: transferred, then removed
    const GEO = 'plant-7/line-2/pressure' // two countries
    const TIMED = 'plant-7/line-2/vibration' // a period: setFees / setCountries / setFlags
    const pubFee = parseEther('0.001')
    const subFee = parseEther('0.002')
    const base = { pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x' }

    // Not measured: creates the namespace nodes of plant-7/line-2 (and the root), so the four rows below all
    // register beside an existing name and differ only in what they store.
    await owner.addTopic({ ...base, name: 'plant-7/line-2/setup', reason: 'installer request #42' })
    await measure('addTopic (fees + sensitive + open)', owner.addTopic({ ...base, name: FEED, pubFee, subFee, sensitive: true, open: true, reason: 'installer request #42' }), PROTOTYPE_2020.addTopic)
    await measure('addTopic (no fees)', owner.addTopic({ ...base, name: PLAIN, reason: 'installer request #42' }))
    await measure('addTopic (2 countries)', owner.addTopic({ ...base, name: GEO, countries: encodeCountries(['GB', 'DE']), reason: 'installer request #42' }))
    await measure('addTopic (fees + open + period)', owner.addTopic({ ...base, name: TIMED, pubFee, subFee, open: true, period: 86_400, reason: 'installer request #42' }))

    // The namespace check walks the claim path: one node per level, written fresh the first time a path is used.
    for (let depth = 1; depth <= MAX_DEPTH; depth++) {
      const path = namespacePath(depth)
      await measure(`addTopic, depth ${depth}, new path`, owner.addTopic({ ...base, name: path.join('/'), reason: 'installer request #42' }))
      await measure(`addTopic, depth ${depth}, beside a name`, owner.addTopic({ ...base, name: [...path.slice(0, -1), 'sibling'].join('/'), reason: 'installer request #42' }))
    }

    await measure('setFees', owner.setFees(TIMED, parseEther('0.002'), parseEther('0.003'), 3_600, 'price review'))
    await measure('setCountries (2 codes, none before)', owner.setCountries(TIMED, encodeCountries(['FR', 'NL']), 'geo-fence'))
    await measure('setFlags', owner.setFlags(TIMED, { sensitive: true, open: true }, 'audit'))
    await measure('transferTopic', owner.transferTopic(PLAIN, memberW.address, 'handover'))
    await measure('removeTopic', member.removeTopic(PLAIN, 'decommissioned'))

    const device = fakeAddress(1)
    await measure('allow (first grant, one role)', owner.allow(FEED, device, 1, 0, 'installer request #42'), PROTOTYPE_2020.grant)
    await measure('allow (second role on existing grant)', owner.allow(FEED, device, 2, 0, 'installer request #42'))
    await measure('revoke (one of two roles)', owner.revoke(FEED, device, 2, 'decommissioned'))
    await measure('revoke (last role: clears the slot)', owner.revoke(FEED, device, 1, 'decommissioned'), PROTOTYPE_2020.revoke)

    await measure('join (pay, one role)', member.join(FEED, 2, 1, subFee))
    await measure('withdraw', owner.withdraw(adminW.address))

    await measure('addReporter', owner.addReporter(reporterW.address, 'edge proxy eu-west-1'))
    const until = 1_767_225_600 + 86_400
    const subjects = Array.from({ length: 10 }, (_, i) => (i % 2 ? topicId(`ip-hmac-${i}`) : zeroPadValue(fakeAddress(100 + i), 32)))
    await measure('recordBans (1 subject)', reporter.recordBans(subjects.slice(0, 1), [until], 'auth flood'), PROTOTYPE_2020.ban)
    const ten = await measure('recordBans (10 subjects)', reporter.recordBans(subjects, subjects.map(() => until), 'auth flood'))
    rows.push(row('recordBans, per subject (10 per tx)', Math.round(Number(ten.gasUsed) / 10), PROTOTYPE_2020.ban))

    const from = 1_767_225_600
    const topics = Array.from({ length: 10 }, (_, i) => topicId(`plant-7/line-${i}/#`))
    await measure('recordDenied (10 topics)', reporter.recordDenied(from, from + 3_600, topics, topics.map((_, i) => 3 + i)))
    const pubs = Array.from({ length: 10 }, (_, i) => fakeAddress(200 + i))
    const subs = Array.from({ length: 10 }, (_, i) => fakeAddress(300 + i))
    await measure(
      'recordSensitive (10 + 10 addresses)',
      reporter.recordSensitive(topicId(FEED), from, from + 3_600, pubs, pubs.map((_, i) => 60 + i), subs, subs.map((_, i) => 120 + i)),
      PROTOTYPE_2020.sensitive,
    )
    // The anchor sequence: one link per period, O(1) in traffic (the entry count is just a number).
    const zero = '0x' + '00'.repeat(32)
    const first = { fromTime: from, toTime: from + 3_600, firstSeq: 1, count: 1_250, root: topicId('journal-root 0'), index: topicId('index-root 0'), prevChain: zero, chain: topicId('chain 1250') }
    await measure('anchor (first of a reporter, 1,250 entries)', reporter.anchor(first))
    const busy = { fromTime: from + 3_600, toTime: from + 7_200, firstSeq: 1_251, count: 10, root: topicId('journal-root 1'), index: topicId('index-root 1'), prevChain: first.chain, chain: topicId('chain 1260') }
    await measure('anchor (next period, 10 entries)', reporter.anchor(busy))
    const huge = { fromTime: from + 7_200, toTime: from + 10_800, firstSeq: 1_261, count: 10_000_000, root: topicId('journal-root 2'), index: topicId('index-root 2'), prevChain: busy.chain, chain: topicId('chain 10001260') }
    await measure('anchor (next period, 10,000,000 entries)', reporter.anchor(huge))
    await measure('anchor (empty period)', reporter.anchor({ fromTime: from + 10_800, toTime: from + 14_400, firstSeq: 10_001_261, count: 0, root: zero, index: zero, prevChain: huge.chain, chain: huge.chain }))
    return rows
  } finally {
    provider.destroy()
  }
}

async function main(): Promise<void> {
  const anvil = await startAnvil()
  try {
    console.log(formatTable(await measureGas(anvil.rpcUrl)))
  } finally {
    await anvil.stop()
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exitCode = 1
  })
}
