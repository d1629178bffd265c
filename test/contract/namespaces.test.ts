import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import type { FlyTrapClient } from '../../src/lib/chain/client.js'
import { topicId } from '../../src/lib/chain/codec.js'
import { FlytrapError } from '../../src/lib/errors.js'
import { namespaceConflicts, namespacesOverlap } from '../../src/lib/policy/namespace.js'
import { ZERO_ADDRESS, decodeRevert, expectRevert, topicArgs } from './_helpers.js'

// Accounts: 1 owner O (registers first), 2 stranger S, 3 a third owner T.
let fx: ChainFixture
let o: FlyTrapClient
let s: FlyTrapClient
let t: FlyTrapClient
let O: string
let S: string
let T: string

before(async () => {
  fx = await chainFixture()
  o = fx.as(1)
  s = fx.as(2)
  t = fx.as(3)
  O = fx.wallet(1).address
  S = fx.wallet(2).address
  T = fx.wallet(3).address
})
after(async () => {
  await fx?.close()
})

const add = (c: FlyTrapClient, name: string) => c.addTopic(topicArgs(name))
const ownerOf = async (name: string) => (await o.topic(name))?.owner ?? null

describe('squatting over an exact name is refused (NamespaceOccupied)', () => {
  before(async () => {
    await add(o, 'medical/records')
  })
  const shapes: [string, string][] = [
    ['#', ''], // the whole namespace
    ['+', ''],
    ['+/records', ''], // a wildcard first level claims everything
    ['medical/+', 'medical'], // + in the middle
    ['medical/#', 'medical'],
    ['medical/+/x', 'medical'], // claims all of medical/, conservatively
    ['medical/records/#', 'medical/records'], // # also matches its parent level: medical/records itself
    ['medical/records/+', 'medical/records'], // conservative: a filter claims its claim path too
  ]
  for (const [filter, prefix] of shapes) {
    test(`${filter} by a stranger → NamespaceOccupied("${prefix}", O)`, async () => {
      const err = await expectRevert(add(s, filter), 'NamespaceOccupied', [prefix, O])
      assert.match(err.message, /first registered wins/)
      assert.equal(await ownerOf(filter), null)
      assert.ok(namespacesOverlap(filter, 'medical/records'), 'the TypeScript rule agrees')
    })
  }
  test('the error names the owner and the claim in words', async () => {
    const err = await expectRevert(add(s, 'medical/+'), 'NamespaceOccupied')
    assert.equal(err.message, `addTopic reverted: this filter would claim "medical" and everything under it, where ${O} holds a registration (first registered wins) (NamespaceOccupied)`)
    const all = await expectRevert(add(s, '#'), 'NamespaceOccupied')
    assert.match(all.message, /would claim every topic \(the whole namespace\)/)
  })
  test('other exact names beside or below it are not overlaps, and then block a covering filter by either owner', async () => {
    await add(s, 'medical/billing')
    await add(s, 'medical/records/s-notes') // an exact name claims only itself
    assert.equal(await ownerOf('medical/billing'), S)
    assert.ok(!namespacesOverlap('medical/records', 'medical/records/s-notes'))
    // O cannot claim S's names either; the revert says "other owners" (0) rather than naming O to O.
    const err = await expectRevert(add(o, 'medical/#'), 'NamespaceOccupied', ['medical', ZERO_ADDRESS])
    assert.match(err.message, /where other owners hold a registration/)
    await expectRevert(add(s, 'medical/#'), 'NamespaceOccupied', ['medical', O])
  })
})

describe('registering inside another owner\'s filter is refused (NamespaceClaimed)', () => {
  before(async () => {
    await add(o, 'vault/#')
  })
  const shapes: [string, string][] = [
    ['vault/data', 'vault'], // a narrower name
    ['vault', 'vault'], // vault/# matches vault itself
    ['vault/a/b/c', 'vault'],
    ['vault/+', 'vault'], // a filter at the same claim path
    ['vault/+/x', 'vault'], // a narrower filter
    ['vault/data/#', 'vault'],
  ]
  for (const [name, prefix] of shapes) {
    test(`${name} by a stranger → NamespaceClaimed("${prefix}", O)`, async () => {
      await expectRevert(add(s, name), 'NamespaceClaimed', [prefix, O])
      assert.equal(await ownerOf(name), null)
      assert.ok(namespacesOverlap(name, 'vault/#'))
    })
  }
  test('the same filter again is TopicExists; a wider one is NamespaceOccupied', async () => {
    await expectRevert(add(s, 'vault/#'), 'TopicExists', [topicId('vault/#')])
    await expectRevert(add(s, '#'), 'NamespaceOccupied', ['', O])
  })
  test('the error explains the claim', async () => {
    const err = await expectRevert(add(s, 'vault/data'), 'NamespaceClaimed')
    assert.equal(err.message, `addTopic reverted: "vault" and everything under it is claimed by a filter of ${O}, which holds this name (first registered wins) (NamespaceClaimed)`)
  })
  test('a sibling namespace is free', async () => {
    await add(s, 'vaults/data') // a different first level, even if it shares characters
    await add(s, 'vault2/#')
    assert.equal(await ownerOf('vaults/data'), S)
  })
})

describe('one owner may overlap their own registrations', () => {
  test('filters over names, names under filters, nested filters', async () => {
    for (const name of ['home/kitchen/temp', 'home/+/temp', 'home/#', 'home/kitchen', 'home/kitchen/#', 'home']) await add(t, name)
    for (const name of ['home/kitchen/temp', 'home/+/temp', 'home/#', 'home/kitchen', 'home/kitchen/#', 'home']) assert.equal(await ownerOf(name), T)
    await expectRevert(add(s, 'home/hall'), 'NamespaceClaimed', ['home', T])
  })
})

describe('removal releases the claim', () => {
  test('a removed filter no longer claims; a removed name no longer occupies', async () => {
    await add(o, 'rel/#')
    await expectRevert(add(s, 'rel/x'), 'NamespaceClaimed', ['rel', O])
    await o.removeTopic('rel/#', 'released')
    await add(s, 'rel/x')
    await expectRevert(add(o, 'rel/#'), 'NamespaceOccupied', ['rel', S]) // now S was first
    await s.removeTopic('rel/x', 'released')
    await add(o, 'rel/#') // re-registered: generation 1, claims again
    assert.equal((await o.topic('rel/#'))?.generation, 1)
    await expectRevert(add(s, 'rel/y'), 'NamespaceClaimed', ['rel', O])
  })

  test('conservative: once the first owner under a path leaves while another stays, no filter can claim it until it empties', async () => {
    await add(o, 'shared/a')
    await add(s, 'shared/b')
    await o.removeTopic('shared/a', 'gone')
    await expectRevert(add(s, 'shared/#'), 'NamespaceOccupied', ['shared', ZERO_ADDRESS]) // only S is left, but the contract no longer knows
    await add(o, 'shared/c') // exact names still coexist
    await o.removeTopic('shared/c', 'gone')
    await s.removeTopic('shared/b', 'gone')
    await add(s, 'shared/#')
    assert.equal(await ownerOf('shared/#'), S)
  })
})

describe('transferTopic keeps namespaces single-owner', () => {
  before(async () => {
    await add(o, 'xfer/#')
    await add(o, 'xfer/a')
  })
  test('a name under the sender\'s filter cannot be handed to someone else alone (NamespaceClaimed)', async () => {
    await expectRevert(o.transferTopic('xfer/a', S, 'split'), 'NamespaceClaimed', ['xfer', O])
    assert.equal(await ownerOf('xfer/a'), O)
  })
  test('nor the filter over the sender\'s names (NamespaceOccupied)', async () => {
    await expectRevert(o.transferTopic('xfer/#', S, 'split'), 'NamespaceOccupied', ['xfer', O])
    assert.equal(await ownerOf('xfer/#'), O)
  })
  // (A registration can only overlap the sender's own ones, so those are the only transfers to refuse.)
  test('exact names move freely between owners', async () => {
    await add(o, 'xfer3/o-name')
    await add(s, 'xfer3/s-name')
    await o.transferTopic('xfer3/o-name', S, 'merge') // two exact names: no overlap
    assert.equal(await ownerOf('xfer3/o-name'), S)
    await s.transferTopic('xfer3/o-name', O, 'back')
    await expectRevert(o.addTopic(topicArgs('xfer3/#')), 'NamespaceOccupied', ['xfer3', ZERO_ADDRESS])
  })
  test('transferTopics moves a filter and the names under it together, grants intact', async () => {
    await add(o, 'bundle/#')
    await add(o, 'bundle/a')
    await add(o, 'bundle')
    await o.allow('bundle/a', T, 3, 0, 'member')
    await expectRevert(o.transferTopics(['bundle/#', 'bundle/a'], S, 'sold'), 'NamespaceOccupied', ['bundle', O]) // `bundle` left behind
    const res = await o.transferTopics(['bundle/a', 'bundle/#', 'bundle'], S, 'sold') // any order
    assert.equal(res.events.filter((e) => e.name === 'TopicTransferred').length, 3)
    for (const name of ['bundle/#', 'bundle/a', 'bundle']) assert.equal(await ownerOf(name), S)
    assert.equal(await s.canAccess('bundle/a', T, 1), true)
    await expectRevert(add(o, 'bundle/b'), 'NamespaceClaimed', ['bundle', S])
    await expectRevert(o.transferTopics(['bundle/a'], O, 'take back'), 'NotTopicOwner', [topicId('bundle/a')])
    await expectRevert(s.transferTopics(['bundle/a', 'bundle/a'], T, 'twice'), 'UnknownTopic', [topicId('bundle/a')])
    await s.removeTopic('bundle/a', 'done') // the bookkeeping is consistent after the move: removal releases
    await s.removeTopic('bundle/#', 'done')
    await s.removeTopic('bundle', 'done')
    await add(o, 'bundle/#')
  })

  test('once the names under it are gone, the filter moves, and its claim moves with it', async () => {
    await o.removeTopic('xfer/a', 'moving')
    await o.transferTopic('xfer/#', S, 'sold')
    assert.equal(await ownerOf('xfer/#'), S)
    await expectRevert(add(o, 'xfer/b'), 'NamespaceClaimed', ['xfer', S])
    await add(s, 'xfer/b')
  })
  test('transferring to oneself changes nothing', async () => {
    await s.transferTopic('xfer/b', S, 'noop')
    await expectRevert(add(o, 'xfer/c'), 'NamespaceClaimed', ['xfer', S])
  })
})

describe('empty levels and $ topics', () => {
  test('/# claims names whose first level is empty; # claims $SYS too (conservative)', async () => {
    await add(o, '/#')
    await expectRevert(add(s, '/x'), 'NamespaceClaimed', ['', O])
    await add(s, 'x/') // a different first level ("x")
    await add(o, '$SYS/broker')
    await expectRevert(add(s, '#'), 'NamespaceOccupied', ['', O])
  })
})

describe('the contract agrees with the TypeScript rule (random sequences)', () => {
  test('every refusal is an overlap the rule sees (or the documented conservative edge); every overlap is refused', async () => {
    const names = ['#', 'r', 'r/a', 'r/b', 'r/+', 'r/#', 'r/a/#', 'r/a/x', 'r/+/x', '+/a', 'q/a', 'q/#']
    const owners: [FlyTrapClient, () => string][] = [
      [o, () => O],
      [s, () => S],
      [t, () => T],
    ]
    const live = new Map<string, string>((await o.topics()).map((x) => [x.name, x.owner])) // name → owner, the earlier tests' too
    let seed = 42
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed % n
    }
    let accepted = 0
    let refused = 0
    let edge = 0
    for (let step = 0; step < 80; step++) {
      const name = names[rand(names.length)]!
      const owner = live.get(name)
      if (owner !== undefined && rand(2) === 0) {
        const [client] = owners.find(([, addr]) => addr() === owner)!
        await client.removeTopic(name, 'random')
        live.delete(name)
        continue
      }
      const [client, addr] = owners[rand(owners.length)]!
      const who = addr()
      const conflicts = namespaceConflicts([name], who, [...live].map(([n, w]) => ({ name: n, owner: w })))
      let err: FlytrapError | null = null
      try {
        await client.addTopic(topicArgs(name))
      } catch (e) {
        assert.ok(e instanceof FlytrapError)
        err = e
      }
      const context = `step ${step}: ${name} by ${who} with ${JSON.stringify([...live])}`
      if (owner !== undefined) {
        assert.equal(err?.code, 'TopicExists', context)
      } else if (conflicts.length > 0) {
        assert.ok(err && ['NamespaceClaimed', 'NamespaceOccupied'].includes(err.code), context)
        refused++
      } else if (err) {
        // The one conservative edge: a claim node whose first owner left while others stayed.
        assert.equal(err.code, 'NamespaceOccupied', context)
        assert.equal(decodeRevert(err)?.args[1], ZERO_ADDRESS, context)
        edge++
      } else {
        live.set(name, who)
        accepted++
      }
    }
    assert.ok(accepted > 5 && refused > 5, `accepted ${accepted}, refused ${refused}, edge ${edge}`)
  })
})
