/**
 * The hand-rolled coding of the cold start's bulk views (chain/view-codec.ts) against ethers' own, on real
 * answers of a real anvil deployment: calldata byte for byte, decoded topics and grants value for value (every
 * field kind: fees, flags, period, countries, a removed topic's generation, timed, permanent and one-role
 * grants); malformed answers refused as ethers refuses them.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Interface, parseEther } from 'ethers'
import { abi } from '../../../src/lib/chain/artifacts/FlyTrap.js'
import { encodeCountries, topicId } from '../../../src/lib/chain/codec.js'
import { rawEthCall } from '../../../src/lib/chain/raw-rpc.js'
import { decodeGrantsOf, decodeTopicsPage, encodeGrantsOf, encodeTopicsPage } from '../../../src/lib/chain/view-codec.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'

const IFACE = new Interface(abi)
let fx: ChainFixture
let block = 0
const names = ['vc/plain', 'vc/fees/+', 'vc/geo/#', 'vc/gone', 'vc/ünïcode']
let members: string[] = []

before(async () => {
  fx = await chainFixture()
  const o = fx.as(1)
  await o.addTopic({ name: 'vc/plain', pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'r' })
  await o.addTopic({ name: 'vc/fees/+', pubFee: parseEther('0.01'), subFee: parseEther('1.5'), sensitive: true, open: true, period: 86_400, countries: '0x', reason: 'r' })
  await o.addTopic({ name: 'vc/geo/#', pubFee: 0n, subFee: 0n, sensitive: false, open: true, period: 0, countries: encodeCountries(['DE', 'GB', 'US']), reason: 'r' })
  await o.addTopic({ name: 'vc/gone', pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'r' })
  await o.removeTopic('vc/gone', 'removed: owner 0, generation 1')
  await o.addTopic({ name: 'vc/ünïcode', pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'r' })
  members = [2, 3, 4].map((i) => fx.wallet(i).address)
  const later = Math.floor(Date.now() / 1000) + 3600
  await o.allow('vc/plain', members[0]!, 3, 0, 'forever')
  await o.allow('vc/plain', members[1]!, 1, later, 'publish, timed')
  await o.allow('vc/fees/+', members[2]!, 2, later + 7, 'subscribe, timed')
  await o.allow('vc/geo/#', members[0]!, 3, later, 'both timed')
  await o.revoke('vc/geo/#', members[0]!, 1, 'one role left')
  block = await fx.provider.getBlockNumber()
})
after(async () => {
  await fx?.close()
})

test('topicsPage: calldata and decoded page equal ethers (addresses in lower case)', async () => {
  assert.equal(encodeTopicsPage(0, 500), IFACE.encodeFunctionData('topicsPage', [0, 500]))
  for (const [offset, limit] of [[0, 500], [1, 2], [5, 10]] as const) {
    const data = await rawEthCall(fx.rpcUrl, fx.address, encodeTopicsPage(offset, limit), block)
    const ours = decodeTopicsPage(data)
    const theirs = (IFACE.decodeFunctionResult('topicsPage', data)[0] as { toObject(): Record<string, unknown> }[]).map((r) => r.toObject())
    assert.equal(ours.length, theirs.length)
    assert.deepEqual(ours, theirs.map((t) => ({ ...t, id: String(t.id).toLowerCase(), owner: String(t.owner).toLowerCase(), countries: String(t.countries).toLowerCase() })))
  }
  const all = decodeTopicsPage(await rawEthCall(fx.rpcUrl, fx.address, encodeTopicsPage(0, 500), block))
  assert.deepEqual(all.map((t) => t.name), names)
  assert.equal(all[3]!.owner, '0x0000000000000000000000000000000000000000')
  assert.equal(all[3]!.gen, 1n, 'the removed topic carries its new generation')
  assert.equal(all[1]!.subFee, parseEther('1.5'))
})

test('grantsOf: calldata and decoded expiries equal ethers', async () => {
  const ids = [...names, 'vc/plain'].map((n) => topicId(n))
  const clients = [members[0]!, members[2]!, members[0]!, members[0]!, members[1]!, members[1]!]
  const data = IFACE.encodeFunctionData('grantsOf', [ids, clients])
  assert.equal(encodeGrantsOf(ids, clients), data)
  assert.equal(encodeGrantsOf(ids.map((i) => i.toUpperCase().replace('0X', '0x')), clients.map((c) => c.toLowerCase())), data, 'any case in, the same calldata')
  const answer = await rawEthCall(fx.rpcUrl, fx.address, data, block)
  const [pub, sub] = IFACE.decodeFunctionResult('grantsOf', answer) as unknown as [bigint[], bigint[]]
  const ours = decodeGrantsOf(answer)
  assert.deepEqual(ours.pub.map(BigInt), [...pub])
  assert.deepEqual(ours.sub.map(BigInt), [...sub])
  assert.deepEqual(ours.pub.map((x) => (x === 2 ** 40 - 1 ? 'forever' : x > 0 ? 'timed' : 0)), ['forever', 0, 0, 0, 0, 'timed'])
  assert.deepEqual(ours.sub.map((x) => (x === 2 ** 40 - 1 ? 'forever' : x > 0 ? 'timed' : 0)), ['forever', 'timed', 'timed', 0, 0, 0], 'a removed topic (generation) reads as no grant')
})

test('malformed answers are refused, as ethers refuses them', () => {
  const good = IFACE.encodeFunctionResult('grantsOf', [[1n, 2n], [3n, 4n]])
  assert.deepEqual(decodeGrantsOf(good), { pub: [1, 2], sub: [3, 4] })
  for (const bad of [good.slice(0, -64), '0x', `${good}0`, good.replace(/^0x0{62}40/, `0x${'f'.repeat(64)}`)]) {
    assert.throws(() => IFACE.decodeFunctionResult('grantsOf', bad), `ethers refuses ${bad.slice(0, 20)}…`)
    assert.throws(() => decodeGrantsOf(bad), `ours refuses ${bad.slice(0, 20)}…`)
  }
  assert.throws(() => encodeGrantsOf(['0x12'], [members[0]!]), /bytes32/)
  assert.throws(() => encodeGrantsOf([topicId('x')], ['0x12']), /address/)
})
