import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { parseEther } from 'ethers'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { waitForReceipt, type FlyTrapClient } from '../../src/lib/chain/client.js'
import { FOREVER, topicId, type RoleMask } from '../../src/lib/chain/codec.js'
import { ZERO_ADDRESS, blockTime, eventOf, expectRevert, failure, randomAddress, topicArgs } from './_helpers.js'

// Accounts: 0 admin (deploys the rejecting contract), 1 topic owner, 2 and 3 buyers, 4 second owner.
let fx: ChainFixture
let owner: FlyTrapClient
let buyer: FlyTrapClient
let buyer2: FlyTrapClient

const PUB = parseEther('0.001')
const SUB = parseEther('0.002')
const RENT_PUB = parseEther('0.0001')
const RENT_SUB = parseEther('0.0003')
const HOUR = 3600

const PAID = 'shop/paid'
const CLOSED = 'shop/closed'
const FREE = 'shop/free'
const RENTAL = 'shop/rental'
const FREE_RENTAL = 'shop/free-rental'

/** What the owner should have accrued, added up as the tests pay. */
let accrued = 0n

before(async () => {
  fx = await chainFixture()
  owner = fx.as(1)
  buyer = fx.as(2)
  buyer2 = fx.as(3)
  await owner.addTopic(topicArgs(PAID, { pubFee: PUB, subFee: SUB, open: true, reason: 'public feed' }))
  await owner.addTopic(topicArgs(CLOSED, { pubFee: PUB, subFee: SUB, reason: 'installer request #42' }))
  await owner.addTopic(topicArgs(FREE, { open: true, reason: 'community feed' }))
  await owner.addTopic(topicArgs(RENTAL, { pubFee: RENT_PUB, subFee: RENT_SUB, open: true, period: HOUR, reason: 'hourly data' }))
  await owner.addTopic(topicArgs(FREE_RENTAL, { open: true, period: HOUR, reason: 'free trial' }))
})
after(async () => {
  await fx?.close()
})

describe('join: price', () => {
  test('paying less, more or nothing is WrongPayment(price)', async () => {
    for (const value of [0n, PUB - 1n, PUB + 1n, PUB + SUB]) {
      await expectRevert(buyer.join(PAID, 1, 1, value), 'WrongPayment', [PUB])
    }
    for (const value of [PUB, SUB, PUB + SUB - parseEther('0.000000001')]) {
      await expectRevert(buyer.join(PAID, 3, 1, value), 'WrongPayment', [PUB + SUB])
    }
    assert.deepEqual(await owner.member(PAID, fx.wallet(2).address), { client: fx.wallet(2).address, pubExpiry: 0n, subExpiry: 0n })
    assert.equal(await owner.balanceOf(fx.wallet(1).address), 0n)
  })

  test('the WrongPayment message tells the buyer the price in wei', async () => {
    let err = await failure(buyer.join(PAID, 1, 1, PUB - 1n))
    assert.equal(err.code, 'WrongPayment')
    assert.equal(err.message, `join reverted: wrong payment: the price is ${PUB} wei (WrongPayment)`)
    err = await failure(buyer.join(PAID, 3, 1, PUB + SUB + 1n))
    assert.match(err.message, new RegExp(`the price is ${PUB + SUB} wei`))
    err = await failure(buyer.join(RENTAL, 2, 5, 0n))
    assert.match(err.message, new RegExp(`the price is ${5n * RENT_SUB} wei`))
  })

  test('the exact fee buys permanent access to one role', async () => {
    const me = fx.wallet(2).address
    const res = await buyer.join(PAID, 1, 1, PUB)
    accrued += PUB
    assert.deepEqual(eventOf(res, 'Joined'), { topic: topicId(PAID), client: me, roles: 1n, paid: PUB, pubExpiresAt: FOREVER, subExpiresAt: 0n })
    assert.deepEqual(await owner.member(PAID, me), { client: me, pubExpiry: FOREVER, subExpiry: 0n })
    assert.equal(await owner.canAccess(PAID, me, 1), true)
    assert.equal(await owner.canAccess(PAID, me, 2), false)
    assert.equal(await owner.balanceOf(fx.wallet(1).address), accrued)
  })

  test('both roles cost the sum of the two fees', async () => {
    const me = fx.wallet(3).address
    const res = await buyer2.join(PAID, 3, 1, PUB + SUB)
    accrued += PUB + SUB
    assert.equal(eventOf(res, 'Joined').paid, PUB + SUB)
    assert.deepEqual(await owner.member(PAID, me), { client: me, pubExpiry: FOREVER, subExpiry: FOREVER })
    assert.equal(await owner.balanceOf(fx.wallet(1).address), accrued)
  })

  test('a permanent member adds the other role for its fee, then is AlreadyMember', async () => {
    const me = fx.wallet(2).address
    await buyer.join(PAID, 2, 1, SUB)
    accrued += SUB
    assert.deepEqual(await owner.member(PAID, me), { client: me, pubExpiry: FOREVER, subExpiry: FOREVER })
    for (const roles of [1, 2, 3] as RoleMask[]) {
      const price = (roles & 1 ? PUB : 0n) + (roles & 2 ? SUB : 0n)
      await expectRevert(buyer.join(PAID, roles, 1, price), 'AlreadyMember')
    }
    assert.equal(await owner.balanceOf(fx.wallet(1).address), accrued)
  })

  test('the owner joining its own topic is AlreadyMember', async () => {
    await expectRevert(owner.join(PAID, 1, 1, PUB), 'AlreadyMember')
    await expectRevert(owner.join(FREE, 3, 1, 0n), 'AlreadyMember')
  })

  test('a closed topic is NotOpen, an unknown one UnknownTopic, a bad role mask InvalidRoles', async () => {
    await expectRevert(buyer.join(CLOSED, 1, 1, PUB), 'NotOpen', [topicId(CLOSED)])
    await expectRevert(buyer.join('shop/none', 1, 1, PUB), 'UnknownTopic', [topicId('shop/none')])
    for (const roles of [0, 4]) await expectRevert(buyer.join(PAID, roles as RoleMask, 1, 0n), 'InvalidRoles')
  })

  test('opening a closed topic with setFlags lets people join', async () => {
    await owner.setFlags(CLOSED, { sensitive: false, open: true }, 'self-service')
    await buyer.join(CLOSED, 2, 1, SUB)
    accrued += SUB
    assert.equal(await owner.canAccess(CLOSED, fx.wallet(2).address, 2), true)
    await owner.setFlags(CLOSED, { sensitive: false, open: false }, 'closed again')
    await expectRevert(buyer2.join(CLOSED, 2, 1, SUB), 'NotOpen', [topicId(CLOSED)])
  })
})

describe('join: free topics', () => {
  test('a free open topic is joined with value 0', async () => {
    const me = fx.wallet(2).address
    const res = await buyer.join(FREE, 3, 1, 0n)
    assert.deepEqual(eventOf(res, 'Joined'), { topic: topicId(FREE), client: me, roles: 3n, paid: 0n, pubExpiresAt: FOREVER, subExpiresAt: FOREVER })
    assert.deepEqual(await owner.member(FREE, me), { client: me, pubExpiry: FOREVER, subExpiry: FOREVER })
    assert.equal(await owner.balanceOf(fx.wallet(1).address), accrued)
  })

  test('sending ETH to a free topic is WrongPayment(0)', async () => {
    await expectRevert(buyer2.join(FREE, 1, 1, 1n), 'WrongPayment', [0n])
  })
})

describe('join: periods', () => {
  test('periods=3 buys 3 periods from the block time', async () => {
    const me = fx.wallet(2).address
    const res = await buyer.join(RENTAL, 1, 3, 3n * RENT_PUB)
    accrued += 3n * RENT_PUB
    const expiry = BigInt((await blockTime(fx, res.blockNumber)) + 3 * HOUR)
    assert.deepEqual(eventOf(res, 'Joined'), { topic: topicId(RENTAL), client: me, roles: 1n, paid: 3n * RENT_PUB, pubExpiresAt: expiry, subExpiresAt: 0n })
    assert.deepEqual(await owner.member(RENTAL, me), { client: me, pubExpiry: expiry, subExpiry: 0n })
    assert.equal(await owner.balanceOf(fx.wallet(1).address), accrued)
  })

  test('joining again before expiry extends from the current expiry, not from now', async () => {
    const me = fx.wallet(2).address
    const before = (await owner.member(RENTAL, me)).pubExpiry
    await fx.increaseTime(1000)
    const res = await buyer.join(RENTAL, 1, 1, RENT_PUB)
    accrued += RENT_PUB
    assert.equal(eventOf(res, 'Joined').pubExpiresAt, before + BigInt(HOUR))
    assert.equal((await owner.member(RENTAL, me)).pubExpiry, before + BigInt(HOUR))
  })

  test('after a lapse, joining starts again from now', async () => {
    const me = fx.wallet(2).address
    await fx.increaseTime(5 * HOUR)
    assert.equal(await owner.canAccess(RENTAL, me, 1), false)
    const res = await buyer.join(RENTAL, 1, 2, 2n * RENT_PUB)
    accrued += 2n * RENT_PUB
    const expiry = BigInt((await blockTime(fx, res.blockNumber)) + 2 * HOUR)
    assert.equal((await owner.member(RENTAL, me)).pubExpiry, expiry)
    assert.equal(await owner.canAccess(RENTAL, me, 1), true)
  })

  test('both roles over periods cost (pub + sub) × periods', async () => {
    const me = fx.wallet(3).address
    const res = await buyer2.join(RENTAL, 3, 4, 4n * (RENT_PUB + RENT_SUB))
    accrued += 4n * (RENT_PUB + RENT_SUB)
    const expiry = BigInt((await blockTime(fx, res.blockNumber)) + 4 * HOUR)
    assert.deepEqual(await owner.member(RENTAL, me), { client: me, pubExpiry: expiry, subExpiry: expiry })
    assert.equal(await owner.balanceOf(fx.wallet(1).address), accrued)
  })

  test('periods=0 is InvalidPeriods, on a timed or a permanent topic', async () => {
    await expectRevert(buyer.join(RENTAL, 1, 0, 0n), 'InvalidPeriods')
    await expectRevert(buyer2.join(FREE, 1, 0, 0n), 'InvalidPeriods')
  })

  test('a topic without a period sells permanent access only: periods=2 is InvalidPeriods', async () => {
    await expectRevert(fx.as(4).join(PAID, 1, 2, 2n * PUB), 'InvalidPeriods')
    await expectRevert(fx.as(4).join(FREE, 1, 2, 0n), 'InvalidPeriods')
  })

  test('periods that would reach the FOREVER sentinel are InvalidPeriods', async () => {
    await expectRevert(fx.as(4).join(FREE_RENTAL, 1, 2 ** 32 - 1, 0n), 'InvalidPeriods')
    await fx.as(4).join(FREE_RENTAL, 1, 1000, 0n) // a free trial of 1000 h is fine
  })

  test('someone the owner granted until revoked cannot buy time (AlreadyMember)', async () => {
    const c = fx.as(4)
    await owner.allow(RENTAL, fx.wallet(4).address, 2, 0, 'installer request #42')
    await expectRevert(c.join(RENTAL, 2, 1, RENT_SUB), 'AlreadyMember')
    await expectRevert(c.join(RENTAL, 3, 1, RENT_PUB + RENT_SUB), 'AlreadyMember')
  })
})

describe('withdraw', () => {
  test('balanceOf holds exactly what was paid; withdraw moves exactly that to the recipient', async () => {
    const ownerAddr = fx.wallet(1).address
    assert.ok(accrued > 0n)
    assert.equal(await owner.balanceOf(ownerAddr), accrued)
    assert.equal(await fx.provider.getBalance(owner.address), accrued, 'the contract holds the accrued fees')

    await expectRevert(owner.withdraw(ZERO_ADDRESS), 'InvalidAddress')
    const to = randomAddress()
    const res = await owner.withdraw(to)
    assert.deepEqual(eventOf(res, 'Withdrawn'), { owner: ownerAddr, to, amount: accrued })
    assert.equal(await fx.provider.getBalance(to), accrued)
    assert.equal(await owner.balanceOf(ownerAddr), 0n)
    assert.equal(await fx.provider.getBalance(owner.address), 0n)
  })

  test('a second withdraw is NothingToWithdraw, as is one by someone never paid', async () => {
    await expectRevert(owner.withdraw(randomAddress()), 'NothingToWithdraw')
    await expectRevert(buyer.withdraw(fx.wallet(2).address), 'NothingToWithdraw')
  })

  test("withdrawing to oneself credits the owner's account with the amount minus the gas it paid", async () => {
    const ownerAddr = fx.wallet(1).address
    await buyer2.join(FREE_RENTAL, 1, 1, 0n) // free: accrues nothing
    await expectRevert(buyer2.join(CLOSED, 1, 1, PUB), 'NotOpen', [topicId(CLOSED)])
    await owner.setFlags(CLOSED, { sensitive: false, open: true }, 'reopen')
    await buyer2.join(CLOSED, 1, 1, PUB)
    assert.equal(await owner.balanceOf(ownerAddr), PUB)
    const before = await fx.provider.getBalance(ownerAddr)
    const res = await owner.withdraw(ownerAddr)
    const receipt = await fx.provider.getTransactionReceipt(res.hash)
    assert.ok(receipt)
    assert.equal(await fx.provider.getBalance(ownerAddr), before + PUB - receipt.gasUsed * receipt.gasPrice)
  })

  test('payments made after a transfer accrue to the new owner', async () => {
    await owner.transferTopic(PAID, fx.wallet(4).address, 'sold')
    await fx.as(0).join(PAID, 1, 1, PUB)
    assert.equal(await owner.balanceOf(fx.wallet(4).address), PUB)
    assert.equal(await owner.balanceOf(fx.wallet(1).address), 0n)
  })
})

describe('withdraw to a contract that rejects ETH', () => {
  // Runtime 60 00 60 00 fd = PUSH1 0 PUSH1 0 REVERT (5 bytes). Constructor (12 bytes):
  // PUSH1 5 (size) PUSH1 0x0c (code offset) PUSH1 0 (mem) CODECOPY PUSH1 5 PUSH1 0 RETURN.
  const RUNTIME = '0x60006000fd'
  const INIT = '0x6005600c600039' + '60056000f3' + RUNTIME.slice(2)
  let rejecter = ''

  before(async () => {
    const tx = await fx.wallet(0).sendTransaction({ data: INIT })
    const receipt = await waitForReceipt(tx)
    assert.ok(receipt?.contractAddress)
    rejecter = receipt.contractAddress
  })

  test('the rejecting contract is deployed with the intended runtime and refuses plain ETH', async () => {
    assert.equal(INIT.length, 2 + 2 * 17)
    assert.equal(await fx.provider.getCode(rejecter), RUNTIME)
    await assert.rejects(fx.wallet(0).sendTransaction({ to: rejecter, value: 1n }))
  })

  test('WithdrawFailed, and the balance is not lost', async () => {
    const second = fx.as(4)
    const ownerAddr = fx.wallet(4).address
    const amount = await second.balanceOf(ownerAddr)
    assert.equal(amount, PUB)
    await expectRevert(second.withdraw(rejecter), 'WithdrawFailed')
    assert.equal(await second.balanceOf(ownerAddr), amount)
    assert.equal(await fx.provider.getBalance(rejecter), 0n)
    assert.equal(await fx.provider.getBalance(second.address), amount)

    const to = randomAddress()
    await second.withdraw(to)
    assert.equal(await fx.provider.getBalance(to), amount)
    assert.equal(await second.balanceOf(ownerAddr), 0n)
  })
})
