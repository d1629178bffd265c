import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { parseEther, parseUnits, toUtf8Bytes } from 'ethers'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { chainError, waitForReceipt, type FlyTrapClient, type TxResult } from '../../src/lib/chain/client.js'
import { FOREVER, encodeCountries, topicId } from '../../src/lib/chain/codec.js'
import { FlytrapError } from '../../src/lib/errors.js'
import { ZERO_ADDRESS, expectRevert, hex, plain, randomAddress, topicArgs } from './_helpers.js'

// Accounts: 0 admin, 1 and 2 topic owners, 3 a member.
let fx: ChainFixture
let admin: FlyTrapClient
let alice: FlyTrapClient
let bob: FlyTrapClient
const GWEI = 10n ** 9n

/** Names in first-registration order (what topicsPage must list). */
const order: string[] = []
/** Valid names that claim the whole namespace (a filter whose first level is a wildcard), removed once checked. */
const WHOLE_NAMESPACE = new Set(['#', '+', '+/+/#'])

async function add(c: FlyTrapClient, args: ReturnType<typeof topicArgs>): Promise<TxResult> {
  const res = await c.addTopic(args)
  if (!order.includes(args.name)) order.push(args.name)
  return res
}

/** A raw contract write mapped through the client's error mapping (for arguments the client's types forbid). */
async function raw(c: FlyTrapClient, method: string, ...args: unknown[]): Promise<void> {
  try {
    const tx = await c.contract.getFunction(method).send(...args)
    await waitForReceipt(tx)
  } catch (err) {
    throw chainError(err, method)
  }
}

before(async () => {
  fx = await chainFixture()
  admin = fx.as(0)
  alice = fx.as(1)
  bob = fx.as(2)
})
after(async () => {
  await fx?.close()
})

describe('topic names and filters', () => {
  const valid = ['a', 'a/b', 'a/+/c', 'a/#', '#', '+', '/a', 'a//b', '$SYS/x', 'température/°C', '+/+/#', '$share', 'x'.repeat(1024)]
  for (const name of valid) {
    test(`valid: ${JSON.stringify(name.length > 40 ? `${name.slice(0, 8)}…(${name.length} bytes)` : name)}`, async () => {
      const res = await add(alice, topicArgs(name))
      assert.deepEqual(res.events.map((e) => e.name), ['TopicAdded'])
      const t = await alice.topic(name)
      assert.ok(t)
      assert.equal(t.name, name)
      assert.equal(t.id, topicId(name))
      assert.equal(t.owner, fx.wallet(1).address)
      // A filter with a wildcard first level claims every topic: released so other owners can register below.
      if (WHOLE_NAMESPACE.has(name)) await alice.removeTopic(name, 'whole namespace, released for the other tests')
    })
  }

  // [name, byte position the contract reports]
  const invalid: [string, string, number][] = [
    ['empty', '', 0],
    ['a#', 'a#', 1],
    ['a/#/b', 'a/#/b', 2],
    ['#/a', '#/a', 0],
    ['a+', 'a+', 1],
    ['+a/b', '+a/b', 0],
    ['a/b+', 'a/b+', 3],
    ['a/b#', 'a/b#', 3],
    ['$share/g/a', '$share/g/a', 0],
    ['NUL byte', 'a\u0000b', 1],
    ['NUL after UTF-8', '°\u0000', 2],
    ['1025 bytes', 'x'.repeat(1025), 0],
    ['1025 bytes of UTF-8', 'é'.repeat(512) + 'x', 0],
  ]
  for (const [label, name, position] of invalid) {
    test(`invalid: ${label} → InvalidTopicName(${position})`, async () => {
      await expectRevert(alice.addTopic(topicArgs(name)), 'InvalidTopicName', [BigInt(position)])
      assert.equal(await alice.topic(name), null)
    })
  }

  test('the UTF-8 length counts bytes: 1024 bytes of 2-byte characters is accepted', async () => {
    const name = 'é'.repeat(512)
    assert.equal(toUtf8Bytes(name).length, 1024)
    await add(alice, topicArgs(name))
    assert.equal((await alice.topic(name))?.name, name)
  })

  test('a duplicate name is TopicExists, whoever registers it', async () => {
    for (const c of [alice, bob]) await expectRevert(c.addTopic(topicArgs('a/b')), 'TopicExists', [topicId('a/b')])
    assert.equal((await alice.topic('a/b'))?.owner, fx.wallet(1).address)
  })

  test('names are case- and byte-exact: A/B is a different topic from a/b', async () => {
    await add(bob, topicArgs('A/B'))
    assert.equal((await alice.topic('A/B'))?.owner, fx.wallet(2).address)
    assert.equal((await alice.topic('a/b'))?.owner, fx.wallet(1).address)
  })
})

describe('countries', () => {
  const codes = (n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(65 + Math.floor(i / 26), 65 + (i % 26))).join('')

  const bad: [string, string][] = [
    ['lower case', hex('gb')],
    ['mixed case', hex('DEgb')],
    ['unsorted', hex('GBDE')],
    ['duplicate', hex('DEDE')],
    ['duplicate not adjacent after sorting is still unsorted', hex('DEGBDE')],
    ['odd length', hex('DEG')],
    ['one byte', '0x44'],
    ['digits', hex('D1')],
    ['punctuation', hex('D@')],
    ['65 codes', hex(codes(65))],
  ]
  for (const [label, countries] of bad) {
    test(`addTopic refuses ${label} → InvalidCountries`, async () => {
      await expectRevert(alice.addTopic(topicArgs(`geo/bad/${label}`, { countries })), 'InvalidCountries')
    })
  }

  test('setCountries applies the same rules', async () => {
    const name = 'geo/set'
    await add(alice, topicArgs(name, { countries: hex('GB') }))
    for (const [, countries] of bad) await expectRevert(alice.setCountries(name, countries, 'geo'), 'InvalidCountries')
    assert.deepEqual((await alice.topic(name))?.countries, ['GB'])
    await alice.setCountries(name, hex('DEFR'), 'expand to EU')
    assert.deepEqual((await alice.topic(name))?.countries, ['DE', 'FR'])
    await alice.setCountries(name, '0x', 'anywhere')
    assert.deepEqual((await alice.topic(name))?.countries, [])
  })

  test('exactly 64 sorted codes are accepted', async () => {
    await add(alice, topicArgs('geo/64', { countries: hex(codes(64)) }))
    const t = await alice.topic('geo/64')
    assert.equal(t?.countries.length, 64)
    assert.equal(t?.countries[0], 'AA')
    assert.equal(t?.countries[63], 'CL')
  })

  test("the codec's encodeCountries upper-cases, sorts and de-duplicates", async () => {
    const packed = encodeCountries(['gb', 'de', 'GB', 'fr,DE'])
    assert.equal(packed, hex('DEFRGB'))
    await add(alice, topicArgs('geo/codec', { countries: packed }))
    assert.deepEqual((await alice.topic('geo/codec'))?.countries, ['DE', 'FR', 'GB'])
  })

  test('encodeCountries refuses what the contract would refuse, as a usage error', () => {
    for (const input of [['GBR'], ['1A'], codes(65).match(/../g)!]) {
      assert.throws(() => encodeCountries(input), (err: unknown) => err instanceof FlytrapError && err.exit === 2)
    }
  })
})

describe('fees', () => {
  test('fees must be whole gwei → InvalidFee', async () => {
    const cases: [bigint, bigint][] = [
      [1n, 0n],
      [0n, GWEI + 1n],
      [parseUnits('1.5', 'gwei'), 0n],
      [2n ** 40n * GWEI, 0n], // one gwei over the uint40 range
      [0n, 2n ** 40n * GWEI],
    ]
    for (const [pubFee, subFee] of cases) {
      await expectRevert(alice.addTopic(topicArgs('fees/bad', { pubFee, subFee })), 'InvalidFee')
    }
  })

  test('the largest fee (2^40-1 gwei) and 1 gwei are stored exactly', async () => {
    const max = (2n ** 40n - 1n) * GWEI
    await add(alice, topicArgs('fees/edges', { pubFee: max, subFee: GWEI }))
    const t = await alice.topic('fees/edges')
    assert.equal(t?.pubFee, max)
    assert.equal(t?.subFee, GWEI)
  })

  test('setFees validates and replaces fees and period', async () => {
    await expectRevert(alice.setFees('fees/edges', GWEI + 1n, 0n, 0, 'x'), 'InvalidFee')
    await expectRevert(alice.setFees('fees/edges', 0n, 1n, 0, 'x'), 'InvalidFee')
    await alice.setFees('fees/edges', parseEther('0.002'), parseEther('0.003'), 86_400, 'price rise')
    const t = await alice.topic('fees/edges')
    assert.equal(t?.pubFee, parseEther('0.002'))
    assert.equal(t?.subFee, parseEther('0.003'))
    assert.equal(t?.period, 86_400)
  })
})

describe('flags', () => {
  test('sensitive and open are stored and changed by setFlags', async () => {
    const name = 'flags/t'
    await add(alice, topicArgs(name, { sensitive: true }))
    let t = await alice.topic(name)
    assert.equal(t?.sensitive, true)
    assert.equal(t?.open, false)
    await alice.setFlags(name, { sensitive: false, open: true }, 'self-service')
    t = await alice.topic(name)
    assert.equal(t?.sensitive, false)
    assert.equal(t?.open, true)
    await alice.setFlags(name, { sensitive: true, open: true }, 'audit')
    t = await alice.topic(name)
    assert.equal(t?.sensitive, true)
    assert.equal(t?.open, true)
    await alice.setFlags(name, { sensitive: false, open: false }, 'close')
    t = await alice.topic(name)
    assert.equal(t?.sensitive, false)
    assert.equal(t?.open, false)
  })

  test('unknown flag bits (4, 128 = the internal LISTED bit) → InvalidRoles', async () => {
    for (const flags of [4, 128, 255]) {
      await expectRevert(raw(alice, 'setFlags', 'flags/t', flags, 'x'), 'InvalidRoles')
      await expectRevert(raw(alice, 'addTopic', `flags/bad/${flags}`, 0n, 0n, flags, 0, '0x', 'x'), 'InvalidRoles')
    }
  })
})

describe('transferTopic', () => {
  const name = 'xfer/t'
  const member = randomAddress()

  before(async () => {
    await add(alice, topicArgs(name, { pubFee: GWEI }))
    await alice.allow(name, member, 3, 0, 'installer request #42')
  })

  test('moves ownership; the old owner loses control and implicit access', async () => {
    await expectRevert(alice.transferTopic(name, ZERO_ADDRESS, 'oops'), 'InvalidAddress')
    await alice.transferTopic(name, fx.wallet(2).address, 'sold to bob')
    assert.equal((await alice.topic(name))?.owner, fx.wallet(2).address)
    await expectRevert(alice.setFees(name, 0n, 0n, 0, 'x'), 'NotTopicOwner', [topicId(name)])
    await expectRevert(alice.transferTopic(name, fx.wallet(1).address, 'take back'), 'NotTopicOwner', [topicId(name)])
    assert.equal(await alice.canAccess(name, fx.wallet(1).address, 1), false)
    assert.equal(await alice.canAccess(name, fx.wallet(2).address, 1), true)
    await bob.setFees(name, 0n, GWEI, 0, 'new pricing')
    assert.equal((await bob.topic(name))?.subFee, GWEI)
  })

  test('existing grants survive a transfer', async () => {
    assert.deepEqual(await bob.member(name, member), { client: member, pubExpiry: FOREVER, subExpiry: FOREVER })
    assert.equal(await bob.canAccess(name, member, 2), true)
  })
})

describe('remove and re-register (generation)', () => {
  const name = 'gen/plant-7'
  const member = randomAddress()

  before(async () => {
    await add(alice, topicArgs(name, { pubFee: GWEI, subFee: 2n * GWEI, sensitive: true, open: true, period: 3600, countries: hex('GB') }))
    await alice.allow(name, member, 3, 0, 'installer request #42')
  })

  test('removing clears the topic and every grant on it', async () => {
    await alice.removeTopic(name, 'decommissioned')
    assert.equal(await alice.topic(name), null)
    assert.deepEqual(await alice.member(name, member), { client: member, pubExpiry: 0n, subExpiry: 0n })
    assert.equal(await alice.canAccess(name, member, 1), false)
    assert.equal(await alice.canAccess(name, fx.wallet(1).address, 1), false)
    await expectRevert(alice.removeTopic(name, 'again'), 'UnknownTopic', [topicId(name)])
    await expectRevert(alice.allow(name, member, 1, 0, 'x'), 'UnknownTopic', [topicId(name)])
    const rawTopic = plain(await alice.contract.getFunction('topic').staticCall(name)) as unknown[]
    assert.deepEqual(rawTopic, [topicId(name), name, ZERO_ADDRESS, 0n, 0n, false, false, 0n, '0x', 1n])
  })

  test('someone else re-registers the name: new owner, generation 1, no members, no leftovers', async () => {
    const before = (await admin.info()).topicCount
    await add(bob, topicArgs(name))
    const t = await bob.topic(name)
    assert.deepEqual(t, {
      id: topicId(name),
      name,
      owner: fx.wallet(2).address,
      pubFee: 0n,
      subFee: 0n,
      sensitive: false,
      open: false,
      period: 0,
      countries: [],
      generation: 1,
    })
    assert.equal((await admin.info()).topicCount, before, 'a re-registered name is not listed twice')
    assert.deepEqual(await bob.member(name, member), { client: member, pubExpiry: 0n, subExpiry: 0n })
    assert.equal(await bob.canAccess(name, member, 1), false)
    assert.equal(await bob.canAccess(name, member, 2), false)
    assert.equal(await bob.canAccess(name, fx.wallet(1).address, 1), false)
  })

  test('a new grant does not resurrect roles of the old generation', async () => {
    await bob.allow(name, member, 1, 0, 'fresh start')
    assert.deepEqual(await bob.member(name, member), { client: member, pubExpiry: FOREVER, subExpiry: 0n })
    assert.equal(await bob.canAccess(name, member, 2), false)
  })
})

describe('retirement after 255 generations', () => {
  test('a name removed 255 times is retired: registering it again fails (NameRetired)', async () => {
    const name = 'gen/churn'
    const countBefore = (await admin.info()).topicCount
    // 510 transactions: sent with explicit nonce, gas and fees so each is a single round trip.
    const signer = fx.wallet(1)
    const fees = await fx.provider.getFeeData()
    let nonce = await fx.provider.getTransactionCount(signer.address, 'pending')
    const overrides = () => ({ nonce: nonce++, gasLimit: 300_000n, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas })
    const addFn = alice.contract.getFunction('addTopic')
    const removeFn = alice.contract.getFunction('removeTopic')
    let last
    order.push(name) // listed by its first registration below
    for (let gen = 0; gen < 255; gen++) {
      await addFn.send(name, 0n, 0n, 0, 0, '0x', 'churn', overrides())
      last = await removeFn.send(name, 'churn', overrides())
    }
    assert.equal((last && (await waitForReceipt(last)))?.status, 1)
    assert.equal((await alice.contract.getFunction('topic').staticCall(name)).gen, 255n)
    await expectRevert(add(alice, topicArgs(name)), 'NameRetired', [topicId(name)])
    assert.equal(await alice.topic(name), null)
    assert.equal((await admin.info()).topicCount, countBefore + 1) // listed once, however often re-registered
    // Nobody owns it, so nobody can grant on it.
    await expectRevert(alice.allow(name, randomAddress(), 3, 0, 'installer request #42'), 'UnknownTopic', [topicId(name)])
  })
})

describe('topicsPage and topic()', () => {
  test('topic() returns every field', async () => {
    const name = 'view/all-fields'
    await add(bob, topicArgs(name, { pubFee: parseEther('0.01'), subFee: parseEther('0.02'), sensitive: true, open: true, period: 600, countries: encodeCountries(['FR', 'DE']) }))
    assert.deepEqual(await bob.topic(name), {
      id: topicId(name),
      name,
      owner: fx.wallet(2).address,
      pubFee: parseEther('0.01'),
      subFee: parseEther('0.02'),
      sensitive: true,
      open: true,
      period: 600,
      countries: ['DE', 'FR'],
      generation: 0,
    })
    assert.equal(await bob.topic('view/never'), null)
  })

  test('pages list names in registration order; removed topics keep their place with owner 0', async () => {
    await add(alice, topicArgs('view/removed'))
    await alice.removeTopic('view/removed', 'decommissioned')
    const total = (await admin.info()).topicCount
    assert.equal(total, order.length)

    const page = (offset: number, limit: number) => alice.contract.getFunction('topicsPage').staticCall(offset, limit) as Promise<{ name: string; owner: string }[]>
    const names: string[] = []
    for (let offset = 0; offset < total; offset += 7) {
      const p = await page(offset, 7)
      assert.equal(p.length, Math.min(7, total - offset))
      names.push(...p.map((t) => t.name))
    }
    assert.deepEqual(names, order)
    assert.deepEqual(plain(await page(total, 5)), [])
    assert.deepEqual(plain(await page(total + 100, 5)), [])
    assert.deepEqual(plain(await page(0, 0)), [])
    const last = await page(total - 1, 5)
    assert.equal(last.length, 1)
    assert.equal(last[0]?.name, 'view/removed')
    assert.equal(last[0]?.owner, ZERO_ADDRESS)

    // The client's topics() walks all pages and drops removed topics, whatever the page size.
    const live = order.filter((n) => n !== 'view/removed' && n !== 'gen/churn' && !WHOLE_NAMESPACE.has(n))
    assert.deepEqual((await alice.topics(3)).map((t) => t.name), live)
    assert.deepEqual((await alice.topics()).map((t) => t.name), live)
  })

  test('topicsPage with limit 2^256-1 returns the rest of the list', async () => {
    const total = (await admin.info()).topicCount
    const rest = (await alice.contract.getFunction('topicsPage').staticCall(1n, 2n ** 256n - 1n)) as unknown[]
    assert.equal(rest.length, total - 1)
  })
})

describe('registration fee', () => {
  const fee = parseEther('0.01')

  test('the admin sets it; addTopic must pay exactly that', async () => {
    await admin.setRegistrationFee(fee)
    assert.equal((await admin.info()).registrationFee, fee)
    await expectRevert(alice.addTopic(topicArgs('reg/a')), 'WrongPayment', [fee])
    await expectRevert(alice.addTopic(topicArgs('reg/a', { value: fee - 1n })), 'WrongPayment', [fee])
    await expectRevert(alice.addTopic(topicArgs('reg/a', { value: fee + 1n })), 'WrongPayment', [fee])
    assert.equal(await alice.topic('reg/a'), null)
  })

  test("exact payments accrue to the admin's balanceOf and the admin withdraws them", async () => {
    const adminAddr = fx.wallet(0).address
    const start = await admin.balanceOf(adminAddr)
    await add(alice, topicArgs('reg/a', { value: fee }))
    await add(bob, topicArgs('reg/b', { value: fee }))
    assert.equal(await admin.balanceOf(adminAddr), start + 2n * fee)
    assert.equal(await admin.balanceOf(fx.wallet(1).address), 0n)

    const to = randomAddress()
    await admin.withdraw(to)
    assert.equal(await fx.provider.getBalance(to), start + 2n * fee)
    assert.equal(await admin.balanceOf(adminAddr), 0n)
    assert.equal(await fx.provider.getBalance(admin.address), 0n, 'the contract holds nothing more')
  })

  test('setting it back to 0 makes registration free (and paying is then WrongPayment(0))', async () => {
    await admin.setRegistrationFee(0n)
    await expectRevert(alice.addTopic(topicArgs('reg/c', { value: 1n })), 'WrongPayment', [0n])
    await add(alice, topicArgs('reg/c'))
  })
})
