/**
 * The anchor sequence rules of FlyTrap.anchor(): a reporter's anchors form one gap-free sequence in time,
 * seq and hash-chain value; a second anchor for covered time or seqs is refused; empty periods are links
 * too; only registered reporters anchor. And what each link costs (≤ 40 k gas, whatever the traffic).
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import type { AnchorArgs, FlyTrapClient } from '../../src/lib/chain/client.js'
import { topicId } from '../../src/lib/chain/codec.js'
import { eventOf, expectRevert } from './_helpers.js'

const ZERO32 = '0x' + '00'.repeat(32)
const T0 = 1_767_225_600
const P = 1_800

let fx: ChainFixture
let admin: FlyTrapClient
before(async () => {
  fx = await chainFixture()
  admin = fx.as(0)
})
after(async () => {
  await fx?.close()
})

/** A fresh reporter (dev account i) with the first link of its sequence anchored: period 0, seq 1..10. */
async function started(i: number): Promise<{ rep: FlyTrapClient; first: AnchorArgs }> {
  await admin.addReporter(fx.wallet(i).address, `proxy ${i}`)
  const rep = fx.as(i)
  const first: AnchorArgs = { fromTime: T0, toTime: T0 + P, firstSeq: 1, count: 10, root: topicId('root 0'), index: topicId('index 0'), prevChain: ZERO32, chain: topicId('chain 10') }
  await rep.anchor(first)
  return { rep, first }
}

/** The link that correctly continues `prev`, with `count` entries. */
function next(prev: AnchorArgs, count: number, tag = 'x'): AnchorArgs {
  return {
    fromTime: prev.toTime,
    toTime: prev.toTime + P,
    firstSeq: prev.firstSeq + prev.count,
    count,
    root: count === 0 ? ZERO32 : topicId(`root ${tag}`),
    index: count === 0 ? ZERO32 : topicId(`index ${tag}`),
    prevChain: prev.chain,
    chain: count === 0 ? prev.chain : topicId(`chain ${tag}`),
  }
}

describe('anchor sequence rules', () => {
  test('the continuing link is accepted and moves the cursor', async () => {
    const { rep, first } = await started(1)
    const link = next(first, 5)
    const res = await rep.anchor(link)
    assert.deepEqual(eventOf(res, 'Anchored'), { reporter: fx.wallet(1).address, fromTime: BigInt(link.fromTime), toTime: BigInt(link.toTime), firstSeq: 11n, count: 5n, root: link.root, index: link.index, chain: link.chain })
    assert.deepEqual(await admin.anchorCursor(fx.wallet(1).address), { lastSeq: 15, toTime: link.toTime, chain: link.chain, anchors: 2 })
  })

  test('a gap in time (a skipped period) is AnchorGap', async () => {
    const { rep, first } = await started(2)
    const skip = next(first, 5)
    await expectRevert(rep.anchor({ ...skip, fromTime: skip.fromTime + P, toTime: skip.toTime + P }), 'AnchorGap', [BigInt(first.toTime)])
  })

  test('a second anchor for an anchored period (a forged root, same range) is AnchorOverlap', async () => {
    const { rep, first } = await started(3)
    await expectRevert(rep.anchor({ ...first, root: topicId('forged root') }), 'AnchorOverlap', [BigInt(first.toTime)])
    const half = next(first, 5)
    await expectRevert(rep.anchor({ ...half, fromTime: first.toTime - 60 }), 'AnchorOverlap', [BigInt(first.toTime)])
  })

  test('a wrong start seq (overlapping or skipping seqs) is AnchorWrongSeq', async () => {
    const { rep, first } = await started(4)
    const link = next(first, 5)
    await expectRevert(rep.anchor({ ...link, firstSeq: 10 }), 'AnchorWrongSeq', [11n])
    await expectRevert(rep.anchor({ ...link, firstSeq: 13 }), 'AnchorWrongSeq', [11n])
  })

  test('a wrong previous chain value (a journal that does not continue the anchored one) is AnchorWrongChain', async () => {
    const { rep, first } = await started(5)
    await expectRevert(rep.anchor({ ...next(first, 5), prevChain: topicId('another journal') }), 'AnchorWrongChain', [first.chain])
  })

  test('an empty period is a link: root 0, the chain unchanged, the seq cursor unchanged', async () => {
    const { rep, first } = await started(6)
    const empty = next(first, 0)
    const res = await rep.anchor(empty)
    assert.deepEqual(eventOf(res, 'Anchored'), { reporter: fx.wallet(6).address, fromTime: BigInt(empty.fromTime), toTime: BigInt(empty.toTime), firstSeq: 11n, count: 0n, root: ZERO32, index: ZERO32, chain: first.chain })
    assert.deepEqual(await admin.anchorCursor(fx.wallet(6).address), { lastSeq: 10, toTime: empty.toTime, chain: first.chain, anchors: 2 })
    await rep.anchor(next(empty, 3)) // the next period with entries starts at seq 11 and the same chain value
    // An "empty" link that changes the chain or names a root, and an empty time range, are malformed.
    const after = next(next(empty, 3), 0)
    await expectRevert(rep.anchor({ ...after, chain: topicId('moved') }), 'InvalidAnchor')
    await expectRevert(rep.anchor({ ...after, root: topicId('something') }), 'InvalidAnchor')
    // An empty range commits to no scope index either: a non-zero index there would be a claim about nothing.
    await expectRevert(rep.anchor({ ...after, index: topicId('an index of nothing') }), 'InvalidAnchor')
    await expectRevert(rep.anchor({ ...after, toTime: after.fromTime }), 'InvalidAnchor')
    await expectRevert(rep.anchor({ ...next(next(empty, 3), 2), root: ZERO32 }), 'InvalidAnchor')
    // A range with entries may have index 0 (none of its entries has a scope key, e.g. only bans by hash).
    const keyless = { ...next(next(empty, 3), 2), index: ZERO32 }
    const got = await rep.anchor(keyless)
    assert.equal((eventOf(got, 'Anchored') as { index: string }).index, ZERO32)
  })

  test('a non-reporter, and a reporter after its removal, are NotReporter; re-adding continues the same sequence', async () => {
    await expectRevert(fx.as(8).anchor({ fromTime: T0, toTime: T0 + P, firstSeq: 1, count: 1, root: topicId('r'), index: topicId('i'), prevChain: ZERO32, chain: topicId('c') }), 'NotReporter')
    const { rep, first } = await started(7)
    await admin.removeReporter(fx.wallet(7).address, 'key retired')
    await expectRevert(rep.anchor(next(first, 5)), 'NotReporter')
    await admin.addReporter(fx.wallet(7).address, 'back')
    await expectRevert(rep.anchor({ ...first, root: topicId('forged') }), 'AnchorOverlap', [BigInt(first.toTime)])
    await rep.anchor(next(first, 5))
  })
})

describe('anchor gas', () => {
  test('each link ≤ 40 k gas, the same for 10 or 10,000,000 entries; the first link too (addReporter pre-fills its slot)', async () => {
    await admin.addReporter(fx.wallet(9).address, 'gas')
    const rep = fx.as(9)
    const gas: Record<string, number> = {}
    const firstLink: AnchorArgs = { fromTime: T0, toTime: T0 + P, firstSeq: 1, count: 10, root: topicId('r0'), index: topicId('i0'), prevChain: ZERO32, chain: topicId('c0') }
    gas.first = Number((await rep.anchor(firstLink)).gasUsed)
    const big = next(firstLink, 10_000_000, 'big')
    gas.big = Number((await rep.anchor(big)).gasUsed)
    const empty = next(big, 0)
    gas.empty = Number((await rep.anchor(empty)).gasUsed)
    const small = next(empty, 10, 'small')
    gas.small = Number((await rep.anchor(small)).gasUsed)
    console.log(`anchor gas: ${JSON.stringify(gas)}`)
    for (const [k, g] of Object.entries(gas)) assert.ok(g <= 40_000, `${k}: ${g} gas`)
    assert.ok(Math.abs(gas.big! - gas.small!) <= 200, `O(1) in traffic: ${gas.big} vs ${gas.small} (calldata bytes only)`)
    assert.ok(gas.empty! < gas.small!, 'an empty period is cheaper')
  })
})
