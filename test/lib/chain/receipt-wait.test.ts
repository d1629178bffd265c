/**
 * Waiting for a transaction's receipt must not depend on a block arriving after the waiter first looked.
 *
 * ethers' tx.wait() checks the receipt once, then only on "new block" events, and its block poller takes the
 * chain head it first sees as its baseline. When the transaction's block is mined after the receipt checks but
 * before that first look (a slow anvil under load: it mines in its own task, after answering the send), the
 * poller never sees a newer block on an idle automining chain and the wait never resolves (e2e and contract
 * suites hung for 20 minutes on it). Here a real anvil, with automine off, mines the block exactly in that
 * window; the provider only decides when.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { JsonRpcProvider, Network, Wallet, type JsonRpcPayload, type JsonRpcResult } from 'ethers'
import { ANVIL_DEV_KEYS } from '../../../src/lib/dev/anvil.js'
import { FlyTrapClient } from '../../../src/lib/chain/client.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'
import { topicArgs } from '../../helpers/topics.js'

/** Mines one block (automine is off) in the window between the waiter's second receipt check and its block poller's first look. */
class LateMiner extends JsonRpcProvider {
  receiptChecks: Promise<unknown>[] = []
  mined = false

  override async _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    const first = Array.isArray(payload) ? payload[0] : payload
    if (first?.method === 'eth_blockNumber' && !this.mined && this.receiptChecks.length >= 2) {
      this.mined = true
      await this.receiptChecks[1] // the second check has answered "not mined yet"
      await super._send({ jsonrpc: '2.0', id: 1_000_000, method: 'evm_mine', params: [] })
    }
    const answer = super._send(payload)
    if (first?.method === 'eth_getTransactionReceipt') this.receiptChecks.push(answer.catch(() => undefined))
    return answer
  }
}

describe('waiting for a receipt', () => {
  let fx: ChainFixture
  before(async () => {
    fx = await chainFixture()
  })
  after(async () => {
    await fx?.close()
  })

  test('a transaction mined before the block poller first looks is still seen (no later block on an idle chain)', async () => {
    const provider = new LateMiner(fx.rpcUrl, Network.from(fx.chainId), { staticNetwork: true, batchMaxCount: 1, cacheTimeout: -1, pollingInterval: 100 })
    const client = new FlyTrapClient(fx.address, new Wallet(ANVIL_DEV_KEYS[0], provider))
    await fx.rpc.send('evm_setAutomine', [false])
    let timer: NodeJS.Timeout | undefined
    try {
      const res = await Promise.race([
        client.addTopic(topicArgs('late/miner')),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('addTopic never saw its receipt (mined before the poller looked)')), 10_000))),
      ])
      assert.equal(provider.mined, true, 'the block was not mined in the window: the test did not exercise the race')
      assert.equal(res.blockNumber, await fx.provider.getBlockNumber())
      assert.ok(res.events.some((e) => e.name === 'TopicAdded'))
    } finally {
      clearTimeout(timer)
      provider.destroy() // a wait still pending on the old code would keep its pollers (and this file) alive
      await fx.rpc.send('evm_setAutomine', [true])
    }
  })
})
