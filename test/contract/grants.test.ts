import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { AbiCoder, keccak256, solidityPackedKeccak256 } from 'ethers'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import type { FlyTrapClient, MemberInfo } from '../../src/lib/chain/client.js'
import { FOREVER, topicId, type RoleMask } from '../../src/lib/chain/codec.js'
import { ZERO_ADDRESS, chainNow, eventOf, expectRevert, randomAddress, topicArgs } from './_helpers.js'

// Accounts: 0 admin, 1 topic owner, 3 a self-service member.
let fx: ChainFixture
let owner: FlyTrapClient
const TOPIC = 'plant-7/+/temperature'

before(async () => {
  fx = await chainFixture()
  owner = fx.as(1)
  await owner.addTopic(topicArgs(TOPIC, { reason: 'installer request #42' }))
})
after(async () => {
  await fx?.close()
})

/** The raw storage word of _grants[topic][client] (slot 4 of the contract's layout). */
async function grantSlot(name: string, client: string): Promise<bigint> {
  const coder = AbiCoder.defaultAbiCoder()
  const inner = keccak256(coder.encode(['bytes32', 'uint256'], [topicId(name), 4]))
  const slot = solidityPackedKeccak256(['uint256', 'bytes32'], [BigInt(client), inner])
  return BigInt(await fx.provider.getStorage(owner.address, slot))
}

async function access(name: string, client: string): Promise<[boolean, boolean]> {
  return [await owner.canAccess(name, client, 1), await owner.canAccess(name, client, 2)]
}

describe('allow per role', () => {
  const cases: [RoleMask, bigint, bigint][] = [
    [1, FOREVER, 0n],
    [2, 0n, FOREVER],
    [3, FOREVER, FOREVER],
  ]
  for (const [roles, pub, sub] of cases) {
    test(`mask ${roles} until revoked → member (${pub === 0n ? 0 : 'FOREVER'}, ${sub === 0n ? 0 : 'FOREVER'})`, async () => {
      const client = randomAddress()
      const res = await owner.allow(TOPIC, client, roles, 0, 'installer request #42')
      assert.deepEqual(eventOf(res, 'Granted'), { topic: topicId(TOPIC), client, roles: BigInt(roles), expiresAt: FOREVER, reason: 'installer request #42' })
      assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: pub, subExpiry: sub })
      assert.deepEqual(await access(TOPIC, client), [pub !== 0n, sub !== 0n])
      // One slot: pub | sub << 40 | (generation + 1) << 80.
      assert.equal(await grantSlot(TOPIC, client), pub | (sub << 40n) | (1n << 80n))
    })
  }

  test('FOREVER is 2^40-1', () => {
    assert.equal(FOREVER, 2n ** 40n - 1n)
  })

  test('a second role is added to an existing grant without touching the first', async () => {
    const client = randomAddress()
    const until = (await chainNow(fx)) + 3600
    await owner.allow(TOPIC, client, 1, 0, 'installer request #42')
    await owner.allow(TOPIC, client, 2, until, 'dashboard for a week')
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: FOREVER, subExpiry: BigInt(until) })
    assert.deepEqual(await access(TOPIC, client), [true, true])
  })

  test('allowing again replaces the expiry (it can shorten a grant)', async () => {
    const client = randomAddress()
    await owner.allow(TOPIC, client, 3, 0, 'installer request #42')
    const until = (await chainNow(fx)) + 600
    await owner.allow(TOPIC, client, 1, until, 'probation')
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: BigInt(until), subExpiry: FOREVER })
  })

  test('invalid roles and the zero address are refused', async () => {
    const client = randomAddress()
    for (const roles of [0, 4, 7]) {
      await expectRevert(owner.allow(TOPIC, client, roles as RoleMask, 0, 'x'), 'InvalidRoles')
      await expectRevert(owner.revoke(TOPIC, client, roles as RoleMask, 'x'), 'InvalidRoles')
    }
    await expectRevert(owner.allow(TOPIC, ZERO_ADDRESS, 1, 0, 'x'), 'InvalidAddress')
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: 0n, subExpiry: 0n })
  })

  test('canAccess only answers for role 1 or 2', async () => {
    const client = randomAddress()
    await owner.allow(TOPIC, client, 3, 0, 'installer request #42')
    for (const role of [0, 3, 4]) assert.equal(await owner.canAccess(TOPIC, client, role as 1), false)
  })
})

describe('expiry', () => {
  test('a grant until now+100 s works now and lapses after 200 s', async () => {
    const client = randomAddress()
    const until = (await chainNow(fx)) + 100
    const res = await owner.allow(TOPIC, client, 3, until, 'visitor badge')
    assert.equal(eventOf(res, 'Granted').expiresAt, BigInt(until))
    assert.deepEqual(await access(TOPIC, client), [true, true])
    await fx.increaseTime(200)
    assert.deepEqual(await access(TOPIC, client), [false, false])
    // member() still reports the (past) expiry: it is the stored grant, not a verdict.
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: BigInt(until), subExpiry: BigInt(until) })
  })

  test('access ends exactly at the expiry second (valid while block time < expiry)', async () => {
    const client = randomAddress()
    const until = (await chainNow(fx)) + 50
    await owner.allow(TOPIC, client, 1, until, 'visitor badge')
    const rpc = fx.rpc
    const mineAt = async (t: number) => {
      await rpc.send('evm_setNextBlockTimestamp', [t])
      await rpc.send('evm_mine', [])
    }
    const at = (blockTag: number) => owner.contract.getFunction('canAccess').staticCall(TOPIC, client, 1, { blockTag }) as Promise<boolean>
    await mineAt(until - 1)
    assert.equal(await at(await fx.provider.getBlockNumber()), true)
    await mineAt(until)
    assert.equal(await at(await fx.provider.getBlockNumber()), false)
  })

  test('expiresAt 0 means forever', async () => {
    const client = randomAddress()
    await owner.allow(TOPIC, client, 2, 0, 'installer request #42')
    await fx.increaseTime(10 * 365 * 86_400)
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: 0n, subExpiry: 2n ** 40n - 1n })
    assert.equal(await owner.canAccess(TOPIC, client, 2), true)
  })

  test('an expiry in the past (or now) is InvalidExpiry', async () => {
    const client = randomAddress()
    const now = await chainNow(fx)
    for (const t of [1, now - 3600, now - 1, now]) await expectRevert(owner.allow(TOPIC, client, 1, t, 'x'), 'InvalidExpiry')
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: 0n, subExpiry: 0n })
  })
})

describe('owner', () => {
  test('the owner can access both roles without a grant', async () => {
    const me = fx.wallet(1).address
    assert.deepEqual(await access(TOPIC, me), [true, true])
    assert.deepEqual(await owner.member(TOPIC, me), { client: me, pubExpiry: 0n, subExpiry: 0n })
  })

  test('nobody can access an unknown topic', async () => {
    assert.deepEqual(await access('plant-7/unknown', fx.wallet(1).address), [false, false])
    const c = randomAddress()
    assert.deepEqual(await owner.member('plant-7/unknown', c), { client: c, pubExpiry: 0n, subExpiry: 0n })
  })
})

describe('revoke', () => {
  test('revoking one of two roles keeps the other', async () => {
    const client = randomAddress()
    await owner.allow(TOPIC, client, 3, 0, 'installer request #42')
    const res = await owner.revoke(TOPIC, client, 2, 'no more dashboard')
    assert.deepEqual(eventOf(res, 'Revoked'), { topic: topicId(TOPIC), client, roles: 2n, reason: 'no more dashboard' })
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: FOREVER, subExpiry: 0n })
    assert.deepEqual(await access(TOPIC, client), [true, false])
  })

  test('revoking the last role clears member() to (0,0) and zeroes the storage slot', async () => {
    const client = randomAddress()
    await owner.allow(TOPIC, client, 1, 0, 'installer request #42')
    assert.notEqual(await grantSlot(TOPIC, client), 0n)
    await owner.revoke(TOPIC, client, 1, 'decommissioned')
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: 0n, subExpiry: 0n })
    assert.deepEqual(await access(TOPIC, client), [false, false])
    assert.equal(await grantSlot(TOPIC, client), 0n)
  })

  test('revoking both roles at once clears the slot too', async () => {
    const client = randomAddress()
    await owner.allow(TOPIC, client, 3, 0, 'installer request #42')
    await owner.revoke(TOPIC, client, 3, 'decommissioned')
    assert.equal(await grantSlot(TOPIC, client), 0n)
  })

  test('revoking someone without a grant is a no-op that still records the intent', async () => {
    const client = randomAddress()
    const res = await owner.revoke(TOPIC, client, 3, 'pre-emptive')
    assert.equal(eventOf(res, 'Revoked').client, client)
    assert.deepEqual(await owner.member(TOPIC, client), { client, pubExpiry: 0n, subExpiry: 0n })
  })
})

describe('members() enumeration', () => {
  const name = 'plant-7/members'
  const sort = (m: MemberInfo[]) => [...m].sort((a, b) => a.client.localeCompare(b.client))

  test('returns everyone granted or joined, once each, with current expiries', async () => {
    const self = fx.wallet(3).address
    const [pubOnly, both, revoked] = [randomAddress(), randomAddress(), randomAddress()]
    await owner.addTopic(topicArgs(name, { open: true, reason: 'self-service' }))
    const t1 = (await chainNow(fx)) + 3600
    const t2 = (await chainNow(fx)) + 7200
    await owner.allow(name, pubOnly, 1, 0, 'installer request #42')
    await owner.allow(name, both, 3, t1, 'visitor badge')
    await owner.allow(name, revoked, 2, 0, 'installer request #42')
    await owner.revoke(name, revoked, 2, 'decommissioned')
    await owner.allow(name, pubOnly, 2, t2, 'dashboard') // a second grant: still one entry
    await fx.as(3).join(name, 1, 1, 0n)
    await owner.allow(TOPIC, randomAddress(), 3, 0, 'another topic') // must not appear

    const expected: MemberInfo[] = [
      { client: pubOnly, pubExpiry: FOREVER, subExpiry: BigInt(t2) },
      { client: both, pubExpiry: BigInt(t1), subExpiry: BigInt(t1) },
      { client: revoked, pubExpiry: 0n, subExpiry: 0n },
      { client: self, pubExpiry: FOREVER, subExpiry: 0n },
    ]
    const got = await owner.members(name)
    assert.equal(got.length, 4)
    assert.deepEqual(sort(got), sort(expected))
    assert.deepEqual(sort(await owner.members(name, { fromBlock: fx.deployBlock, chunk: 3 })), sort(expected))
  })

  test('after the topic is removed every former member reads (0,0)', async () => {
    await owner.removeTopic(name, 'decommissioned')
    const got = await owner.members(name)
    assert.equal(got.length, 4)
    for (const m of got) assert.deepEqual([m.pubExpiry, m.subExpiry], [0n, 0n])
  })

  test('a topic nobody was granted has no members', async () => {
    await owner.addTopic(topicArgs('plant-7/lonely'))
    assert.deepEqual(await owner.members('plant-7/lonely'), [])
  })
})

describe('grantsOf (many topic/client pairs in one view, for a proxy cold start)', () => {
  test('equals member() for each client: granted, revoked, never granted; after the topic is removed and registered again, old grants are absent', async () => {
    const name = 'bulk-view/+/t'
    await owner.addTopic(topicArgs(name))
    const granted = [randomAddress(), randomAddress(), randomAddress()]
    const revoked = randomAddress()
    const stranger = randomAddress()
    await owner.allow(name, granted[0]!, 1, 0, 'pub')
    await owner.allow(name, granted[1]!, 2, 0, 'sub')
    await owner.allow(name, granted[2]!, 3, 0, 'both')
    await owner.allow(name, revoked, 3, 0, 'soon revoked')
    await owner.revoke(name, revoked, 3, 'revoked')
    const all = [...granted, revoked, stranger]
    const bulk = async (n: string, clients: string[]) => {
      const [pub, sub] = (await owner.contract.getFunction('grantsOf').staticCall(clients.map(() => topicId(n)), clients)) as [bigint[], bigint[]]
      return clients.map((client, i) => ({ client, pubExpiry: BigInt(pub[i]!), subExpiry: BigInt(sub[i]!) }))
    }
    const single = async (n: string, clients: string[]) => Promise.all(clients.map((c) => owner.member(n, c)))
    assert.deepEqual(await bulk(name, all), await single(name, all))
    assert.deepEqual((await bulk(name, all)).map((m) => m.pubExpiry !== 0n || m.subExpiry !== 0n), [true, true, true, false, false])
    // Removed: everything reads as absent; registered again (a new generation): the old grants stay dead.
    await owner.removeTopic(name, 'gone')
    assert.ok((await bulk(name, all)).every((m) => m.pubExpiry === 0n && m.subExpiry === 0n))
    await owner.addTopic(topicArgs(name))
    assert.deepEqual(await bulk(name, all), await single(name, all))
    assert.ok((await bulk(name, all)).every((m) => m.pubExpiry === 0n && m.subExpiry === 0n))
    assert.deepEqual(await bulk('never-registered', [stranger]), [{ client: stranger, pubExpiry: 0n, subExpiry: 0n }])
  })
})
