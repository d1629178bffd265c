import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { parseEther } from 'ethers'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { topicId } from '../../src/lib/chain/codec.js'
import type { FlyTrapClient } from '../../src/lib/chain/client.js'
import { ZERO_ADDRESS, expectRevert, failure, hex, randomAddress, topicArgs } from './_helpers.js'

// Accounts: 0 deploys (admin), 1 owns topics, 2 is a stranger, 3 becomes a reporter, 4 becomes admin.
let fx: ChainFixture
let admin: FlyTrapClient
let owner: FlyTrapClient
let stranger: FlyTrapClient
let reporter: FlyTrapClient
let next: FlyTrapClient

before(async () => {
  fx = await chainFixture()
  admin = fx.as(0)
  owner = fx.as(1)
  stranger = fx.as(2)
  reporter = fx.as(3)
  next = fx.as(4)
})
after(async () => {
  await fx?.close()
})

/** Every topic-owner function, called by `c` on `name`. */
function ownerCalls(c: FlyTrapClient, name: string): [string, () => Promise<unknown>][] {
  const someone = randomAddress()
  return [
    ['setFees', () => c.setFees(name, parseEther('1'), 0n, 0, 'price rise')],
    ['setCountries', () => c.setCountries(name, hex('DEGB'), 'geo')],
    ['setFlags', () => c.setFlags(name, { sensitive: true, open: true }, 'open it')],
    ['transferTopic', () => c.transferTopic(name, fx.wallet(2).address, 'takeover')],
    ['removeTopic', () => c.removeTopic(name, 'vandalism')],
    ['allow', () => c.allow(name, someone, 3, 0, 'self-service')],
    ['revoke', () => c.revoke(name, someone, 3, 'kick')],
  ]
}

describe('topic owner functions', () => {
  const name = 'acl/plant-7/temperature'

  before(async () => {
    await owner.addTopic(topicArgs(name, { pubFee: parseEther('0.001'), reason: 'installer request #42' }))
  })

  for (const who of ['stranger', 'admin'] as const) {
    test(`a ${who} gets NotTopicOwner from each of the 7`, async () => {
      const c = who === 'stranger' ? stranger : admin
      for (const [fn, call] of ownerCalls(c, name)) {
        const err = await expectRevert(call(), 'NotTopicOwner', [topicId(name)])
        assert.match(err.message, new RegExp(`^${fn} reverted`))
      }
    })
  }

  test('the refused calls changed nothing', async () => {
    const t = await owner.topic(name)
    assert.ok(t)
    assert.equal(t.owner, fx.wallet(1).address)
    assert.equal(t.pubFee, parseEther('0.001'))
    assert.equal(t.sensitive, false)
    assert.equal(t.open, false)
    assert.deepEqual(t.countries, [])
  })

  test('an unknown topic gets UnknownTopic from each of the 7, even for the would-be owner', async () => {
    const unknown = 'acl/never-registered'
    for (const c of [owner, stranger]) {
      for (const [, call] of ownerCalls(c, unknown)) await expectRevert(call(), 'UnknownTopic', [topicId(unknown)])
    }
    await expectRevert(stranger.join(unknown, 1, 1, 0n), 'UnknownTopic', [topicId(unknown)])
  })

  test('the owner itself may call them', async () => {
    const c = randomAddress()
    await owner.allow(name, c, 1, 0, 'installer request #42')
    await owner.revoke(name, c, 1, 'decommissioned')
    await owner.setFlags(name, { sensitive: true, open: false }, 'audit')
    assert.equal((await owner.topic(name))?.sensitive, true)
  })
})

describe('2020 bug: granting on a topic one does not own', () => {
  const name = 'acl/open-paid'
  const fee = parseEther('0.01')

  before(async () => {
    await owner.addTopic(topicArgs(name, { pubFee: fee, subFee: fee, open: true, reason: 'public feed' }))
  })

  test('a stranger cannot allow anyone (itself included) on an open paid topic', async () => {
    const victim = randomAddress()
    await expectRevert(stranger.allow(name, victim, 3, 0, 'free ride'), 'NotTopicOwner', [topicId(name)])
    await expectRevert(stranger.allow(name, fx.wallet(2).address, 3, 0, 'free ride'), 'NotTopicOwner', [topicId(name)])
    assert.equal(await owner.canAccess(name, victim, 1), false)
    assert.equal(await owner.canAccess(name, victim, 2), false)
    assert.equal(await owner.canAccess(name, fx.wallet(2).address, 2), false)
  })

  test('a paying member still cannot grant or revoke others', async () => {
    await stranger.join(name, 3, 1, 2n * fee)
    assert.equal(await owner.canAccess(name, fx.wallet(2).address, 1), true)
    const friend = randomAddress()
    await expectRevert(stranger.allow(name, friend, 2, 0, 'sharing'), 'NotTopicOwner', [topicId(name)])
    assert.deepEqual(await owner.member(name, friend), { client: friend, pubExpiry: 0n, subExpiry: 0n })

    const legit = randomAddress()
    await owner.allow(name, legit, 2, 0, 'installer request #42')
    await expectRevert(stranger.revoke(name, legit, 2, 'grief'), 'NotTopicOwner', [topicId(name)])
    assert.equal(await owner.canAccess(name, legit, 2), true)
  })

  test('the only way in for a stranger is paying the fee', async () => {
    await expectRevert(fx.as(3).join(name, 1, 1, 0n), 'WrongPayment', [fee])
    assert.equal(await owner.canAccess(name, fx.wallet(3).address, 1), false)
  })
})

describe('admin functions', () => {
  test('non-admins (topic owner, stranger) get NotAdmin from each of the 4', async () => {
    for (const c of [owner, stranger]) {
      await expectRevert(c.transferAdmin(fx.wallet(2).address), 'NotAdmin')
      await expectRevert(c.setRegistrationFee(1n), 'NotAdmin')
      await expectRevert(c.addReporter(fx.wallet(2).address, 'edge proxy'), 'NotAdmin')
      await expectRevert(c.removeReporter(fx.wallet(3).address, 'retired'), 'NotAdmin')
    }
    const info = await admin.info()
    assert.equal(info.admin, fx.wallet(0).address)
    assert.equal(info.pendingAdmin, null)
    assert.equal(info.registrationFee, 0n)
    assert.equal(await admin.isReporter(fx.wallet(2).address), false)
  })

  test('acceptAdmin with no transfer pending is NotPendingAdmin for everyone', async () => {
    await expectRevert(stranger.acceptAdmin(), 'NotPendingAdmin')
    await expectRevert(admin.acceptAdmin(), 'NotPendingAdmin')
  })
})

describe('reporter functions', () => {
  const calls = (c: FlyTrapClient): [string, () => Promise<unknown>][] => {
    const t0 = 1_700_000_000
    return [
      ['recordBans', () => c.recordBans([topicId('subject')], [t0 + 3600], 'flood')],
      ['recordDenied', () => c.recordDenied(t0, t0 + 3600, [topicId('acl/x')], [3])],
      ['recordSensitive', () => c.recordSensitive(topicId('acl/x'), t0, t0 + 3600, [fx.wallet(1).address], [1], [fx.wallet(2).address], [2])],
      ['anchor', () => c.anchor({ fromTime: t0, toTime: t0 + 3600, firstSeq: 1, count: 10, root: topicId('root'), index: topicId('index'), prevChain: '0x' + '00'.repeat(32), chain: topicId('chain') })],
    ]
  }

  test('strangers and the admin itself get NotReporter', async () => {
    for (const c of [reporter, admin, owner]) {
      for (const [, call] of calls(c)) await expectRevert(call(), 'NotReporter')
    }
  })

  test('they succeed after addReporter', async () => {
    await admin.addReporter(fx.wallet(3).address, 'edge proxy eu-west-1')
    assert.equal(await admin.isReporter(fx.wallet(3).address), true)
    for (const [fn, call] of calls(reporter)) {
      const res = (await call()) as { events: { name: string }[] }
      assert.equal(res.events.length, 1, fn)
    }
    assert.equal((await admin.anchorCursor(fx.wallet(3).address)).anchors, 1)
    // Another account is still refused.
    await expectRevert(calls(stranger)[0]![1](), 'NotReporter')
  })

  test('and fail again after removeReporter', async () => {
    await admin.removeReporter(fx.wallet(3).address, 'decommissioned')
    assert.equal(await admin.isReporter(fx.wallet(3).address), false)
    for (const [, call] of calls(reporter)) await expectRevert(call(), 'NotReporter')
    assert.equal((await admin.anchorCursor(fx.wallet(3).address)).anchors, 1)
  })

  test('addReporter refuses the zero address', async () => {
    await expectRevert(admin.addReporter(ZERO_ADDRESS, 'oops'), 'InvalidAddress')
  })
})

describe('two-step admin transfer', () => {
  test('transferAdmin only nominates; the old admin keeps power until acceptance', async () => {
    await admin.transferAdmin(fx.wallet(4).address)
    const info = await admin.info()
    assert.equal(info.admin, fx.wallet(0).address)
    assert.equal(info.pendingAdmin, fx.wallet(4).address)
    await admin.setRegistrationFee(0n) // still admin
    await expectRevert(next.setRegistrationFee(1n), 'NotAdmin')
  })

  test('nobody but the nominee can accept', async () => {
    await expectRevert(stranger.acceptAdmin(), 'NotPendingAdmin')
    await expectRevert(admin.acceptAdmin(), 'NotPendingAdmin')
  })

  test('a nomination can be replaced and cancelled', async () => {
    await admin.transferAdmin(fx.wallet(2).address)
    await expectRevert(next.acceptAdmin(), 'NotPendingAdmin')
    await admin.transferAdmin(ZERO_ADDRESS)
    assert.equal((await admin.info()).pendingAdmin, null)
    await expectRevert(stranger.acceptAdmin(), 'NotPendingAdmin')
    await admin.transferAdmin(fx.wallet(4).address)
  })

  test('the nominee accepts: admin moves, pending clears, the old admin is refused', async () => {
    await next.acceptAdmin()
    const info = await admin.info()
    assert.equal(info.admin, fx.wallet(4).address)
    assert.equal(info.pendingAdmin, null)
    await expectRevert(next.acceptAdmin(), 'NotPendingAdmin')
    for (const call of [
      () => admin.transferAdmin(fx.wallet(0).address),
      () => admin.setRegistrationFee(1n),
      () => admin.addReporter(fx.wallet(0).address, 'x'),
      () => admin.removeReporter(fx.wallet(3).address, 'x'),
    ]) {
      await expectRevert(call(), 'NotAdmin')
    }
    await next.addReporter(fx.wallet(3).address, 'edge proxy eu-central-1')
    assert.equal(await next.isReporter(fx.wallet(3).address), true)
    await next.setRegistrationFee(parseEther('0.001'))
    assert.equal((await next.info()).registrationFee, parseEther('0.001'))
  })
})

describe('client error mapping', () => {
  // ethers decodes custom errors for eth_call but not for the estimateGas behind a send; the client must
  // decode the revert data itself so that writes, too, name the contract's error.
  test('a reverted write is a FlytrapError whose .code and message name the custom error', async () => {
    const err = await failure(stranger.setRegistrationFee(1n))
    assert.equal(err.exit, 5)
    assert.equal(err.code, 'NotAdmin')
    assert.equal(err.message, 'setRegistrationFee reverted: only the contract admin can do this (NotAdmin)')
  })

  test('error arguments reach the message', async () => {
    const err = await failure(stranger.setFees('acl/plant-7/temperature', 0n, 0n, 0, 'x'))
    assert.equal(err.code, 'NotTopicOwner')
    assert.equal(err.message, 'setFees reverted: only the topic owner can do this (NotTopicOwner)')
    const bad = await failure(owner.addTopic(topicArgs('a+', { value: parseEther('0.001') }))) // the fee set above
    assert.equal(bad.message, 'addTopic reverted: invalid topic name or filter (at byte 1) (InvalidTopicName)')
  })
})
