import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { parseEther, toBeHex, zeroPadValue } from 'ethers'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import type { FlyTrapClient, TxResult } from '../../src/lib/chain/client.js'
import { FOREVER, encodeCountries, topicId } from '../../src/lib/chain/codec.js'
import { ZERO_ADDRESS, blockTime, chainNow, eventOf, eventsOf, expectRevert, hex, plain, randomAddress, topicArgs } from './_helpers.js'

// Accounts: 0 admin, 1 topic owner, 2 joins, 3 reporter, 4 next admin.
let fx: ChainFixture
let admin: FlyTrapClient
let owner: FlyTrapClient
let reporter: FlyTrapClient
let A: string[]

before(async () => {
  fx = await chainFixture()
  admin = fx.as(0)
  owner = fx.as(1)
  reporter = fx.as(3)
  A = [0, 1, 2, 3, 4].map((i) => fx.wallet(i).address)
})
after(async () => {
  await fx?.close()
})

/** Asserts the transaction emitted exactly these events, in order. */
function only(res: TxResult, ...names: string[]): void {
  assert.deepEqual(res.events.map((e) => e.name), names)
}

const NAME = 'plant-7/line-2/temperature'
const ID = topicId(NAME)

const ZERO32 = '0x' + '00'.repeat(32)

describe('topic events', () => {
  test('constructor: AdminChanged(0, deployer)', async () => {
    const logs = await fx.provider.getLogs({ address: admin.address, fromBlock: fx.deployBlock, toBlock: fx.deployBlock })
    const parsed = admin.parseLogs(logs)
    assert.deepEqual(parsed.map((e) => [e.name, ...plain([...e.args]) as unknown[]]), [['AdminChanged', ZERO_ADDRESS, A[0]]])
  })

  test('TopicAdded carries name, fees, flags, period, countries and reason', async () => {
    const countries = encodeCountries(['GB', 'DE'])
    const res = await owner.addTopic(topicArgs(NAME, { pubFee: parseEther('0.001'), subFee: parseEther('0.002'), sensitive: true, open: true, period: 3600, countries, reason: 'installer request #42' }))
    only(res, 'TopicAdded')
    assert.deepEqual(eventOf(res, 'TopicAdded'), {
      topic: ID,
      owner: A[1],
      name: NAME,
      pubFee: parseEther('0.001'),
      subFee: parseEther('0.002'),
      flags: 3n,
      period: 3600n,
      countries: hex('DEGB'),
      reason: 'installer request #42',
    })
  })

  test('TopicAdded for a plain topic: flags 0, no countries', async () => {
    const res = await owner.addTopic(topicArgs('plain', { reason: '' }))
    assert.deepEqual(eventOf(res, 'TopicAdded'), { topic: topicId('plain'), owner: A[1], name: 'plain', pubFee: 0n, subFee: 0n, flags: 0n, period: 0n, countries: '0x', reason: '' })
  })

  test('TopicFeesChanged', async () => {
    const res = await owner.setFees(NAME, parseEther('0.003'), 0n, 600, 'price rise')
    only(res, 'TopicFeesChanged')
    assert.deepEqual(eventOf(res, 'TopicFeesChanged'), { topic: ID, actor: A[1], pubFee: parseEther('0.003'), subFee: 0n, period: 600n, reason: 'price rise' })
  })

  test('TopicCountriesChanged', async () => {
    const res = await owner.setCountries(NAME, hex('FRGB'), 'geo-fence')
    only(res, 'TopicCountriesChanged')
    assert.deepEqual(eventOf(res, 'TopicCountriesChanged'), { topic: ID, actor: A[1], countries: hex('FRGB'), reason: 'geo-fence' })
  })

  test('TopicFlagsChanged', async () => {
    const res = await owner.setFlags(NAME, { sensitive: false, open: true }, 'no longer sensitive')
    only(res, 'TopicFlagsChanged')
    assert.deepEqual(eventOf(res, 'TopicFlagsChanged'), { topic: ID, actor: A[1], flags: 2n, reason: 'no longer sensitive' })
  })

  test('TopicTransferred (both ways)', async () => {
    let res = await owner.transferTopic('plain', A[2]!, 'handover')
    only(res, 'TopicTransferred')
    assert.deepEqual(eventOf(res, 'TopicTransferred'), { topic: topicId('plain'), from: A[1], to: A[2], reason: 'handover' })
    res = await fx.as(2).transferTopic('plain', A[1]!, 'handback')
    assert.deepEqual(eventOf(res, 'TopicTransferred'), { topic: topicId('plain'), from: A[2], to: A[1], reason: 'handback' })
  })

  test('TopicRemoved', async () => {
    const res = await owner.removeTopic('plain', 'decommissioned')
    only(res, 'TopicRemoved')
    assert.deepEqual(eventOf(res, 'TopicRemoved'), { topic: topicId('plain'), actor: A[1], reason: 'decommissioned' })
  })
})

describe('grant events', () => {
  const clients = [randomAddress(), randomAddress()]

  test('Granted (forever and timed)', async () => {
    let res = await owner.allow(NAME, clients[0]!, 3, 0, 'installer request #42')
    only(res, 'Granted')
    assert.deepEqual(eventOf(res, 'Granted'), { topic: ID, client: clients[0], roles: 3n, expiresAt: FOREVER, reason: 'installer request #42' })
    const until = (await chainNow(fx)) + 86_400
    res = await owner.allow(NAME, clients[1]!, 2, until, 'visitor badge')
    assert.deepEqual(eventOf(res, 'Granted'), { topic: ID, client: clients[1], roles: 2n, expiresAt: BigInt(until), reason: 'visitor badge' })
  })

  test('Revoked', async () => {
    const res = await owner.revoke(NAME, clients[0]!, 1, 'decommissioned')
    only(res, 'Revoked')
    assert.deepEqual(eventOf(res, 'Revoked'), { topic: ID, client: clients[0], roles: 1n, reason: 'decommissioned' })
  })

  test('Joined (paid, expiresAt) and Withdrawn', async () => {
    const res = await fx.as(2).join(NAME, 1, 2, 2n * parseEther('0.003'))
    only(res, 'Joined')
    const expiresAt = BigInt((await blockTime(fx, res.blockNumber)) + 2 * 600)
    assert.deepEqual(eventOf(res, 'Joined'), { topic: ID, client: A[2], roles: 1n, paid: parseEther('0.006'), pubExpiresAt: expiresAt, subExpiresAt: 0n })

    const to = randomAddress()
    const w = await owner.withdraw(to)
    only(w, 'Withdrawn')
    assert.deepEqual(eventOf(w, 'Withdrawn'), { owner: A[1], to, amount: parseEther('0.006') })
  })

  test(
    'Joined for both roles reports each role\'s own expiry',
    async () => {
      const me = A[4]!
      const until = (await chainNow(fx)) + 10 * 86_400
      await owner.allow(NAME, me, 1, until, 'pilot')
      const res = await fx.as(4).join(NAME, 3, 1, parseEther('0.003'))
      const ev = eventOf(res, 'Joined')
      const m = await owner.member(NAME, me)
      assert.equal(m.pubExpiry, BigInt(until + 600)) // extended from the grant
      assert.equal(ev.subExpiresAt, m.subExpiry)
      assert.equal(ev.pubExpiresAt, m.pubExpiry)
      assert.notEqual(ev.pubExpiresAt, ev.subExpiresAt)
    },
  )
})

describe('admin and reporter events', () => {
  test('ReporterAdded / ReporterRemoved', async () => {
    let res = await admin.addReporter(A[2]!, 'edge proxy eu-west-1')
    only(res, 'ReporterAdded')
    assert.deepEqual(eventOf(res, 'ReporterAdded'), { reporter: A[2], actor: A[0], reason: 'edge proxy eu-west-1' })
    res = await admin.removeReporter(A[2]!, 'decommissioned')
    only(res, 'ReporterRemoved')
    assert.deepEqual(eventOf(res, 'ReporterRemoved'), { reporter: A[2], actor: A[0], reason: 'decommissioned' })
    await admin.addReporter(A[3]!, 'edge proxy eu-central-1')
  })

  test('RegistrationFeeChanged', async () => {
    const res = await admin.setRegistrationFee(parseEther('0.05'))
    only(res, 'RegistrationFeeChanged')
    assert.deepEqual(eventOf(res, 'RegistrationFeeChanged'), { actor: A[0], fee: parseEther('0.05') })
  })

  test('AdminTransferStarted / AdminChanged', async () => {
    const res = await admin.transferAdmin(A[4]!)
    only(res, 'AdminTransferStarted')
    assert.deepEqual(eventOf(res, 'AdminTransferStarted'), { admin: A[0], pendingAdmin: A[4] })
    const acc = await fx.as(4).acceptAdmin()
    only(acc, 'AdminChanged')
    assert.deepEqual(eventOf(acc, 'AdminChanged'), { previousAdmin: A[0], newAdmin: A[4] })
    const fee = await fx.as(4).setRegistrationFee(0n)
    assert.deepEqual(eventOf(fee, 'RegistrationFeeChanged'), { actor: A[4], fee: 0n })
  })
})

describe('reporter records', () => {
  const t0 = 1_767_225_600 // 2026-01-01T00:00:00Z
  const subjects = [zeroPadValue(randomAddress(), 32), topicId('ip-hash-1'), topicId('ip-hash-2')]

  test('Banned, one per subject, in order', async () => {
    const untils = [t0 + 3600, t0 + 7200, 0]
    const res = await reporter.recordBans(subjects, untils, 'auth flood')
    only(res, 'Banned', 'Banned', 'Banned')
    assert.deepEqual(
      eventsOf(res, 'Banned'),
      subjects.map((subject, i) => ({ subject, reporter: A[3], until: BigInt(untils[i]!), reason: 'auth flood' })),
    )
  })

  test('DeniedSummary', async () => {
    const topics = [topicId('a/b'), topicId('c/#')]
    const res = await reporter.recordDenied(t0, t0 + 3600, topics, [7, 4_000_000_000])
    only(res, 'DeniedSummary')
    assert.deepEqual(eventOf(res, 'DeniedSummary'), { reporter: A[3], fromTime: BigInt(t0), toTime: BigInt(t0 + 3600), topics, counts: [7n, 4_000_000_000n] })
  })

  test('SensitiveReport', async () => {
    const pubs = [randomAddress(), randomAddress()]
    const recv = [randomAddress()]
    const res = await reporter.recordSensitive(ID, t0, t0 + 60, pubs, [3, 1], recv, [4])
    only(res, 'SensitiveReport')
    assert.deepEqual(eventOf(res, 'SensitiveReport'), {
      topic: ID,
      reporter: A[3],
      fromTime: BigInt(t0),
      toTime: BigInt(t0 + 60),
      publishers: pubs,
      published: [3n, 1n],
      receivers: recv,
      received: [4n],
    })
  })

  test('mismatched array lengths are LengthMismatch and emit nothing', async () => {
    await expectRevert(reporter.recordBans(subjects, [1], 'x'), 'LengthMismatch')
    await expectRevert(reporter.recordDenied(t0, t0, [ID], []), 'LengthMismatch')
    await expectRevert(reporter.recordSensitive(ID, t0, t0, [A[1]!], [], [], []), 'LengthMismatch')
    await expectRevert(reporter.recordSensitive(ID, t0, t0, [], [], [A[1]!], [1, 2]), 'LengthMismatch')
  })

  test('Anchored names its time range, seq range, count, root, index root and chain value; three links in a row', async () => {
    let prev = ZERO32
    for (let i = 0; i < 3; i++) {
      const root = topicId(`root-${i}`)
      const chain = topicId(`chain-${i}`)
      const index = topicId(`index-${i}`)
      const firstSeq = 1 + i * 100
      const res = await reporter.anchor({ fromTime: t0 + i * 60, toTime: t0 + (i + 1) * 60, firstSeq, count: 100, root, index, prevChain: prev, chain })
      only(res, 'Anchored')
      assert.deepEqual(eventOf(res, 'Anchored'), { reporter: A[3], fromTime: BigInt(t0 + i * 60), toTime: BigInt(t0 + (i + 1) * 60), firstSeq: BigInt(firstSeq), count: 100n, root, index, chain })
      prev = chain
    }
    assert.deepEqual(await admin.anchorCursor(A[3]!), { lastSeq: 300, toTime: t0 + 180, chain: prev, anchors: 3 })
  })
})

describe('indexed filters with provider.getLogs', () => {
  const other = 'plant-8/pressure'
  const alice = randomAddress()
  const bob = randomAddress()
  let granted = ''

  before(async () => {
    granted = owner.contract.interface.getEvent('Granted')!.topicHash
    await owner.addTopic(topicArgs(other, { reason: 'installer request #42' }))
    await owner.allow(other, alice, 1, 0, 'installer request #42')
    await owner.allow(other, bob, 3, 0, 'installer request #43')
    await owner.allow(NAME, alice, 2, 0, 'installer request #44')
  })

  const logs = (topics: (string | string[] | null)[]) => fx.provider.getLogs({ address: owner.address, fromBlock: fx.deployBlock, toBlock: 'latest', topics })
  const decoded = async (topics: (string | string[] | null)[]) => owner.parseLogs(await logs(topics)).map((e) => [e.name, e.args[0], e.args[1], e.args[2]])

  test('by topic id', async () => {
    assert.deepEqual(await decoded([granted, topicId(other)]), [
      ['Granted', topicId(other), alice, 1n],
      ['Granted', topicId(other), bob, 3n],
    ])
  })

  test('by client across topics', async () => {
    assert.deepEqual(await decoded([granted, null, zeroPadValue(alice, 32)]), [
      ['Granted', topicId(other), alice, 1n],
      ['Granted', ID, alice, 2n],
    ])
  })

  test('by topic and client together, and by roles', async () => {
    assert.deepEqual(await decoded([granted, topicId(other), zeroPadValue(bob, 32)]), [['Granted', topicId(other), bob, 3n]])
    const both = await decoded([granted, topicId(other), null, zeroPadValue(toBeHex(3), 32)])
    assert.deepEqual(both, [['Granted', topicId(other), bob, 3n]])
  })

  test('any event about a topic (first indexed arg)', async () => {
    const names = owner.parseLogs(await logs([null, topicId(other)])).map((e) => e.name)
    assert.deepEqual(names, ['TopicAdded', 'Granted', 'Granted'])
  })

  test('Banned by subject, Anchored by reporter and start time', async () => {
    const banned = owner.contract.interface.getEvent('Banned')!.topicHash
    const anchored = owner.contract.interface.getEvent('Anchored')!.topicHash
    const b = owner.parseLogs(await logs([banned, topicId('ip-hash-2')]))
    assert.equal(b.length, 1)
    assert.equal(b[0]!.args[0], topicId('ip-hash-2'))
    const a = owner.parseLogs(await logs([anchored, zeroPadValue(A[3]!, 32), zeroPadValue(toBeHex(1_767_225_600 + 60), 32)]))
    assert.equal(a.length, 1)
    assert.equal(a[0]!.args[5], topicId('root-1'))
  })
})
