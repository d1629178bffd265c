/** Time → block mapping against a real anvil with 500 blocks 12 s apart: exact bounds, O(log n) look-ups. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { JsonRpcProvider } from 'ethers'
import { blockAtOrAfter, blockAtOrBefore, blockRange, blockTime, deploymentBlock } from '../../../src/lib/audit/blocks.js'
import { connect } from '../../../src/lib/chain/client.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'

let fx: ChainFixture
let rpc: JsonRpcProvider
/** Ground truth: every block's timestamp, read with raw RPC (not through the cache under test). */
let times: number[]

before(async () => {
  fx = await chainFixture()
  rpc = fx.rpc
  await rpc.send('anvil_mine', ['0x1f4', '0xc']) // 500 blocks, 12 s apart
  const head = await fx.provider.getBlockNumber()
  const at = async (n: number) => Number(BigInt(((await rpc.send('eth_getBlockByNumber', [`0x${n.toString(16)}`, false])) as { timestamp: string }).timestamp))
  times = []
  for (let n = 0; n <= head; n += 100) times.push(...(await Promise.all(Array.from({ length: Math.min(100, head + 1 - n) }, (_, i) => at(n + i)))))
})
after(async () => {
  await fx?.close()
})

const firstAtOrAfter = (t: number) => {
  const i = times.findIndex((x) => x >= t)
  return i === -1 ? null : i
}
const lastAtOrBefore = (t: number) => {
  let r: number | null = null
  times.forEach((x, i) => {
    if (x <= t) r = i
  })
  return r
}

describe('blocks', () => {
  test('blockAtOrAfter / blockAtOrBefore agree with a linear scan, at, between and beyond block times', async () => {
    const head = times.length - 1
    const probes = [times[0]! - 100, times[0]!, times[1]! - 1, times[5]!, times[5]! + 1, times[300]! - 5, times[300]!, times[434]! + 11, times[head]!, times[head]! + 1, times[head]! + 10_000]
    for (const t of probes) {
      assert.equal(await blockAtOrAfter(fx.provider, t), firstAtOrAfter(t), `at or after ${t}`)
      assert.equal(await blockAtOrBefore(fx.provider, t), lastAtOrBefore(t), `at or before ${t}`)
    }
  })

  test('a logarithmic number of look-ups, and none for a repeated question (cached)', async () => {
    const { provider } = await connect(fx.rpcUrl) // a fresh provider: an empty cache
    try {
      const stats = { calls: 0 }
      const t = times[387]! + 3
      assert.equal(await blockAtOrAfter(provider, t, { stats }), 388)
      const bound = 2 + Math.ceil(Math.log2(times.length))
      assert.ok(stats.calls <= bound, `${stats.calls} getBlock calls for ${times.length} blocks (bound ${bound})`)
      const again = { calls: 0 }
      assert.equal(await blockAtOrAfter(provider, t, { stats: again }), 388)
      assert.equal(again.calls, 0)
      assert.equal(await blockTime(provider, 388), times[388])
    } finally {
      provider.destroy()
    }
  })

  test('blockRange is half-open [from, to): the block exactly at `to` is out; an empty range is null', async () => {
    assert.deepEqual(await blockRange(fx.provider, times[100]!, times[200]!), { fromBlock: 100, toBlock: 199 })
    assert.deepEqual(await blockRange(fx.provider, times[100]! - 1, times[200]! + 1), { fromBlock: 100, toBlock: 200 })
    assert.equal(await blockRange(fx.provider, times[100]! + 1, times[100]! + 5), null, 'between two blocks')
    assert.equal(await blockRange(fx.provider, times[times.length - 1]! + 1, times[times.length - 1]! + 100), null, 'after the head')
    assert.equal(await blockRange(fx.provider, 50, 40), null)
    assert.deepEqual(await blockRange(fx.provider, times[100]!, times[200]!, { lo: 150 }), { fromBlock: 150, toBlock: 199 }, 'lo bounds the search')
  })

  test('deploymentBlock finds the contract’s block by eth_getCode; null for an address without code', async () => {
    assert.equal(await deploymentBlock(fx.provider, fx.address), fx.deployBlock)
    assert.equal(await deploymentBlock(fx.provider, '0x000000000000000000000000000000000000dEaD'), null)
  })
})
