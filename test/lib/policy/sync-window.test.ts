/**
 * A cold start is a window: the proxy pins block B, reads every topic and grant at B, then follows the logs from
 * B + 1. A loopback relay in front of anvil holds the proxy's first grantsOf call and meanwhile a revoke, a topic
 * removal and re-registration and an owner transfer are mined (B + 1 …). Every request the cold start made must
 * be pinned to the B it was answered (views at B, logs up to B), and once live the proxy must refuse what the
 * window's transactions took away: it fails if a view reads `latest` or the live poll starts after B + 1.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { Interface, JsonRpcProvider, Network } from 'ethers'
import { abi } from '../../../src/lib/chain/artifacts/FlyTrap.js'
import { FlyTrapClient } from '../../../src/lib/chain/client.js'
import { PolicyStore } from '../../../src/lib/policy/store.js'
import { startPolicySync } from '../../../src/lib/policy/sync.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'
import { topicArgs } from '../../helpers/topics.js'

const GRANTS_OF = new Interface(abi).getFunction('grantsOf')!.selector

let fx: ChainFixture
let relay: http.Server
let relayUrl = ''
const seen: { method: string; block: string | null }[] = []
let onFirstGrantsOf: (() => Promise<void>) | null = null

before(async () => {
  fx = await chainFixture()
  relay = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', async () => {
      const call = JSON.parse(body) as { method: string; params: unknown[] } | { method: string; params: unknown[] }[]
      for (const c of Array.isArray(call) ? call : [call]) {
        const p = c.params as [{ data?: string; toBlock?: string }, string?]
        const block = c.method === 'eth_call' ? (p[1] ?? null) : c.method === 'eth_getLogs' ? (p[0]?.toBlock ?? null) : null
        seen.push({ method: c.method === 'eth_call' && p[0]?.data?.startsWith(GRANTS_OF) ? 'grantsOf' : c.method, block })
        if (seen[seen.length - 1]!.method === 'grantsOf' && onFirstGrantsOf) {
          const hook = onFirstGrantsOf
          onFirstGrantsOf = null
          await hook()
        }
      }
      const up = await fetch(fx.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      res.setHeader('content-type', 'application/json')
      res.end(await up.text())
    })
  })
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()))
  relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`
})

after(async () => {
  relay?.close()
  await fx?.close()
})

test('what the cold start window takes away (revoke, removal and re-registration, transfer) is refused once live', async () => {
  const owner = fx.as(1)
  const [A, B, C] = [2, 3, 4].map((i) => fx.wallet(i).address) as [string, string, string]
  await owner.addTopic(topicArgs('win/revoked'))
  await owner.addTopic(topicArgs('win/regen'))
  await owner.addTopic(topicArgs('win/moved'))
  await owner.allow('win/revoked', A, 3, 0, 'x')
  await owner.allow('win/regen', A, 3, 0, 'x')
  await owner.allow('win/moved', B, 1, 0, 'x')
  // Filler members, so grantsOf runs to several calls (the first one is held while the window's transactions land).
  for (let i = 0; i < 3; i++) await owner.allow('win/moved', `0x${(i + 1).toString(16).padStart(40, '0')}`, 3, 0, 'filler')

  onFirstGrantsOf = async () => {
    await owner.revoke('win/revoked', A, 3, 'in the window')
    await owner.removeTopic('win/regen', 'in the window')
    await owner.addTopic(topicArgs('win/regen'))
    await owner.transferTopic('win/moved', C, 'in the window')
  }
  const provider = new JsonRpcProvider(relayUrl, Network.from(fx.chainId), { staticNetwork: true, batchMaxCount: 1 })
  const store = new PolicyStore()
  const sync = startPolicySync({ client: new FlyTrapClient(fx.address, provider), store, fromBlock: fx.deployBlock, pollIntervalMs: 100 })
  try {
    await sync.ready
    const pinned = sync.status().block!
    const head = await fx.provider.getBlockNumber()
    assert.ok(head > pinned, `the window's transactions landed after the pinned block (${head} > ${pinned})`)
    // Everything the cold start read was at the pinned block.
    const cold = seen.slice(0, seen.findIndex((s) => s.method === 'grantsOf') + 1)
    assert.ok(cold.some((s) => s.method === 'grantsOf'), 'the cold start read grants with grantsOf')
    const reads = cold.filter((x) => x.block !== null && x.block !== undefined)
    for (const s of reads.filter((x) => x.method !== 'eth_getLogs')) assert.equal(Number(s.block), pinned, `${s.method} pinned to ${pinned}, not ${s.block}`)
    const logEnds = reads.filter((x) => x.method === 'eth_getLogs').map((x) => Number(x.block))
    assert.ok(logEnds.length > 0 && Math.max(...logEnds) === pinned, `the logs were read up to the pinned block (${logEnds.join(', ')})`)
    // The snapshot is the policy at that block: the revoke had not happened there.
    assert.equal(store.canPublish(A, 'win/revoked', null).allowed, true, 'at the pinned block A still held its grant')
    // Live: the poll reads from pinned + 1 and applies what the window took away.
    const deadline = Date.now() + 10_000
    const done = () =>
      !store.canPublish(A, 'win/revoked', null).allowed && !store.canPublish(A, 'win/regen', null).allowed && store.canPublish(C, 'win/moved', null).reason === 'owner' && store.canPublish(fx.wallet(1).address, 'win/moved', null).allowed === false
    while (!done()) {
      assert.ok(Date.now() < deadline, `not applied: revoked ${store.canPublish(A, 'win/revoked', null).reason}, regen ${store.canPublish(A, 'win/regen', null).reason}, moved ${store.canPublish(C, 'win/moved', null).reason}`)
      await delay(20)
    }
    assert.equal(store.canPublish(A, 'win/revoked', null).reason, 'no-grant')
    assert.equal(store.canPublish(A, 'win/regen', null).reason, 'no-grant', 'the new generation dropped the old grant')
    assert.equal(store.canPublish(B, 'win/moved', null).reason, 'granted', 'a grant survives its topic changing hands')
  } finally {
    await sync.stop()
    provider.destroy()
  }
})

test('over WebSocket (ethers, no raw path) the cold start loads the same policy as over HTTP', async () => {
  const { connect } = await import('../../../src/lib/chain/client.js')
  const ws = await connect(fx.rpcUrl.replace(/^http/, 'ws'))
  const plain = await connect(fx.rpcUrl)
  const load = async (p: typeof ws.provider) => {
    const store = new PolicyStore()
    const sync = startPolicySync({ client: new FlyTrapClient(fx.address, p), store, fromBlock: fx.deployBlock, pollIntervalMs: 60_000 })
    await sync.ready
    await sync.stop()
    return [...store.entries()].map((e) => ({ name: e.name, owner: e.owner, generation: e.generation, registeredAt: e.registeredAt, grants: [...e.grants].sort() })).sort((a, b) => a.name.localeCompare(b.name))
  }
  try {
    const viaWs = await load(ws.provider)
    const viaHttp = await load(plain.provider)
    assert.ok(viaHttp.length >= 3 && viaHttp.some((e) => e.grants.length > 0), 'the first test left a policy to load')
    assert.deepEqual(viaWs, viaHttp)
  } finally {
    ws.provider.destroy()
    plain.provider.destroy()
  }
})
