import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as delay } from 'node:timers/promises'
import { JsonRpcProvider, Network, Wallet, zeroPadValue } from 'ethers'
import { deployFlyTrap, FlyTrapClient } from '../../../src/lib/chain/client.js'
import { encodeCountries, FOREVER } from '../../../src/lib/chain/codec.js'
import { FlytrapError } from '../../../src/lib/errors.js'
import { PolicyStore, type PolicyChange } from '../../../src/lib/policy/store.js'
import { startPolicySync, type PolicySync } from '../../../src/lib/policy/sync.js'
import type { Logger } from '../../../src/lib/log.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'
import { topicArgs } from '../../helpers/topics.js'

const POLL_MS = 100
/** Generous for a loaded CI box; typical latency is printed (one or two poll intervals). */
const DEADLINE_MS = 10_000

/** Polls `cond` until it holds; returns how long that took. */
async function waitFor(cond: () => boolean, what: string, ms = DEADLINE_MS): Promise<number> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > ms) assert.fail(`timed out after ${ms} ms waiting for: ${what}`)
    await delay(10)
  }
  return Date.now() - start
}

function captureLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = []
  return {
    warnings,
    debug() {},
    info() {},
    warn: (msg, fields) => warnings.push(`${msg} ${JSON.stringify(fields ?? {})}`),
    error: (msg, fields) => warnings.push(`ERROR ${msg} ${JSON.stringify(fields ?? {})}`),
    enabled: () => true,
  }
}

/** Anvil's own RPC methods. */
const rpc = (fx: ChainFixture, method: string, params: unknown[]): Promise<unknown> => fx.rpc.send(method, params)

const nowSec = () => Math.floor(Date.now() / 1000)

describe('policy sync against anvil', () => {
  let fx: ChainFixture
  let reader: FlyTrapClient
  let owner: FlyTrapClient
  let A: string
  let B: string
  let C: string
  let D: string
  const syncs: PolicySync[] = []
  const latencies: number[] = []

  before(async () => {
    fx = await chainFixture()
    reader = new FlyTrapClient(fx.address, fx.provider)
    owner = fx.as(1)
    ;[A, B, C] = [2, 3, 4].map((i) => fx.wallet(i).address) as [string, string, string]
  })

  after(async () => {
    await Promise.all(syncs.map((s) => s.stop()))
    await fx.close()
    if (latencies.length > 0) console.log(`policy sync: change visible after ${Math.min(...latencies)}–${Math.max(...latencies)} ms (poll ${POLL_MS} ms)`)
  })

  /** A fresh funded account (the fixture's dev keys are only five). */
  async function account(): Promise<{ address: string; client: FlyTrapClient; wallet: Wallet }> {
    const wallet = new Wallet(Wallet.createRandom().privateKey, fx.provider)
    await rpc(fx, 'anvil_setBalance', [wallet.address, '0x56BC75E2D63100000']) // 100 ETH
    return { address: wallet.address, client: new FlyTrapClient(fx.address, wallet), wallet }
  }

  function start(store: PolicyStore, extra: Partial<Parameters<typeof startPolicySync>[0]> = {}): PolicySync {
    const sync = startPolicySync({ client: reader, store, fromBlock: fx.deployBlock, pollIntervalMs: POLL_MS, ...extra })
    syncs.push(sync)
    return sync
  }

  test('cold start loads every topic and current grant at one block', async () => {
    const later = nowSec() + 3600
    const exactTx = await owner.addTopic(topicArgs('cold/exact'))
    await owner.addTopic(topicArgs('cold/+/temp', { sensitive: true, countries: ['GB'] }))
    await owner.allow('cold/exact', A, 3, 0, 'both, forever')
    await owner.allow('cold/+/temp', B, 2, later, 'subscribe for an hour')
    await owner.allow('cold/exact', B, 1, 0, 'publish')
    await owner.revoke('cold/exact', B, 1, 'changed my mind')
    await owner.addTopic(topicArgs('cold/gone'))
    await owner.allow('cold/gone', A, 3, 0, 'x')
    await owner.removeTopic('cold/gone', 'gone')
    const head = await fx.provider.getBlockNumber()

    const store = new PolicyStore()
    assert.equal(store.canPublish(A, 'cold/exact', null).reason, 'not-synced')
    const sync = start(store)
    await sync.ready
    const status = sync.status()
    assert.equal(status.synced, true)
    assert.ok(status.block !== null && status.block >= head)
    assert.equal(status.lastError, undefined)

    assert.deepEqual(store.grant('cold/exact', A), { pubExpiry: FOREVER, subExpiry: FOREVER })
    assert.deepEqual(store.grant('cold/+/temp', B), { pubExpiry: 0n, subExpiry: BigInt(later) })
    assert.equal(store.grant('cold/exact', B), undefined, 'a fully revoked grant is not loaded')
    assert.equal(store.entry('cold/gone'), undefined, 'removed topics are not loaded')
    assert.equal(store.entry('cold/exact')?.owner, fx.wallet(1).address.toLowerCase())
    assert.deepEqual([...(store.entry('cold/+/temp')?.countries ?? [])], ['GB'])
    // The namespace rule's order: the chain position of the TopicAdded (block × 1,000,000 + log index).
    const added = await fx.provider.getTransactionReceipt(exactTx.hash)
    assert.equal(store.entry('cold/exact')?.registeredAt, exactTx.blockNumber * 1_000_000 + (added?.logs[0]?.index ?? -1))
    assert.ok((store.entry('cold/exact')?.registeredAt ?? 0) < (store.entry('cold/+/temp')?.registeredAt ?? 0))
    assert.equal(store.entry('cold/exact')?.effective, true)

    assert.equal(store.canPublish(A, 'cold/exact', null).reason, 'granted')
    assert.equal(store.canPublish(fx.wallet(1).address, 'cold/exact', null).reason, 'owner')
    assert.equal(store.canPublish(B, 'cold/exact', null).reason, 'no-grant')
    assert.deepEqual(store.canReceive(B, 'cold/x/temp', 'GB'), { allowed: true, reason: 'granted', rule: 'cold/+/temp', sensitive: true })
    assert.equal(store.canReceive(B, 'cold/x/temp', 'FR').reason, 'country')
    assert.equal(store.canPublish(A, 'cold/gone', null).reason, 'unregistered')
    const stats = store.stats()
    assert.equal(stats.topics, 2)
    assert.equal(stats.grants, 2)
  })

  test('changes made after start reach the store within a few poll intervals', async () => {
    const store = new PolicyStore()
    const changes: PolicyChange[] = []
    store.on('change', (c) => changes.push(c))
    const sync = start(store)
    await sync.ready
    const timed = async (p: Promise<unknown>, cond: () => boolean, what: string) => {
      await p
      latencies.push(await waitFor(cond, what))
    }

    await timed(owner.addTopic(topicArgs('live/#')), () => store.entry('live/#') !== undefined, 'topic added')
    await timed(owner.allow('live/#', A, 3, 0, 'x'), () => store.canPublish(A, 'live/a', null).allowed, 'allow')
    assert.ok(changes.some((c) => c.topics.includes('live/#') && c.clients.includes(A.toLowerCase())), 'a change event names the topic and client')

    await timed(owner.revoke('live/#', A, 1, 'x'), () => !store.canPublish(A, 'live/a', null).allowed, 'revoke publish')
    assert.equal(store.canPublish(A, 'live/a', null).reason, 'no-grant')
    assert.equal(store.canReceive(A, 'live/a', null).reason, 'granted', 'subscribe survives a publish revoke')

    await timed(owner.setCountries('live/#', encodeCountries(['DE']), 'x'), () => store.canReceive(A, 'live/a', 'FR').reason === 'country', 'countries')
    assert.equal(store.canReceive(A, 'live/a', 'DE').allowed, true)

    await timed(owner.setFlags('live/#', { sensitive: true, open: true }, 'x'), () => store.canReceive(A, 'live/a', 'DE').sensitive, 'flags')
    const joiner = await account()
    D = joiner.address
    await timed(joiner.client.join('live/#', 2, 1, 0n), () => store.canReceive(D, 'live/a', 'DE').allowed, 'join an open topic')

    await timed(owner.transferTopic('live/#', C, 'x'), () => store.canPublish(C, 'live/a', 'DE').reason === 'owner', 'transfer')
    assert.equal(store.canPublish(fx.wallet(1).address, 'live/a', 'DE').reason, 'no-grant')

    const newOwner = fx.as(4)
    await timed(newOwner.removeTopic('live/#', 'x'), () => store.entry('live/#') === undefined, 'removeTopic')
    assert.equal(store.canReceive(A, 'live/a', 'DE').reason, 'unregistered')

    // Registered again: the old grants belong to the previous generation and must not come back.
    const readded = owner.addTopic(topicArgs('live/#'))
    await timed(readded, () => store.entry('live/#') !== undefined, 're-added')
    const receipt = await fx.provider.getTransactionReceipt((await readded).hash)
    assert.ok(receipt)
    assert.equal(store.entry('live/#')?.registeredAt, receipt.blockNumber * 1_000_000 + (receipt.logs[0]?.index ?? -1), 'a new generation is ordered by its own TopicAdded')
    assert.equal(store.entry('live/#')?.generation, 1)
    assert.equal(store.canReceive(A, 'live/a', null).reason, 'no-grant')
    assert.equal(store.canReceive(D, 'live/a', null).reason, 'no-grant')

    const status = sync.status()
    assert.equal(status.synced, true)
    assert.equal(status.lastError, undefined)
    assert.ok(status.lagBlocks >= 0)
  })

  test('bans in force reach onBan only from registered reporters of this contract', async () => {
    const bans: { subject: string; until: number; reporter: string }[] = []
    const store = new PolicyStore()
    const sync = start(store, { onBan: (subject, until, reporter) => bans.push({ subject, until, reporter }) })
    await sync.ready
    const subject = (n: number) => zeroPadValue(`0x${n.toString(16).padStart(2, '0')}`, 32)
    const until = nowSec() + 600

    const admin = fx.as(0)
    const { address: reporterWallet, client: reporter } = await account()
    await admin.addReporter(reporterWallet, 'edge proxy')
    await reporter.recordBans([subject(1), subject(2)], [until, until], 'auth flood')
    await waitFor(() => bans.length === 2, 'two bans')
    assert.deepEqual(bans[0], { subject: subject(1), until, reporter: reporterWallet })
    assert.equal(bans[1]?.subject, subject(2))

    // Someone who is not a reporter cannot produce a Banned event: the contract refuses.
    const outsider = await account()
    await assert.rejects(outsider.client.recordBans([subject(3)], [until], 'forged'), (err: unknown) => err instanceof FlytrapError && err.code === 'NotReporter')

    // Nor can another deployment's Banned events (its admin made itself a reporter there) leak in.
    const other = await deployFlyTrap(outsider.wallet)
    const otherAdmin = new FlyTrapClient(other.address, outsider.wallet)
    await otherAdmin.addReporter(outsider.address, 'mine')
    await otherAdmin.recordBans([subject(4)], [until], 'forged elsewhere')

    // A removed reporter is refused too.
    await admin.removeReporter(reporterWallet, 'retired')
    await assert.rejects(reporter.recordBans([subject(5)], [until], 'late'), (err: unknown) => err instanceof FlytrapError && err.code === 'NotReporter')

    // A later ban from a current reporter is the marker: everything before it has been processed.
    const second = await account()
    await admin.addReporter(second.address, 'edge proxy 2')
    await second.client.recordBans([subject(6), subject(7)], [until, nowSec() - 60], 'later')
    await waitFor(() => bans.some((b) => b.subject === subject(6)), 'marker ban')
    assert.deepEqual(
      bans.map((b) => b.subject),
      [subject(1), subject(2), subject(6)], // subject 7's ban was over before it was recorded
    )

    // A proxy starting now replays the bans that are still in force, and only those.
    const replayed: string[] = []
    const late = start(new PolicyStore(), { onBan: (s) => replayed.push(s) })
    await late.ready
    assert.deepEqual(replayed, [subject(1), subject(2), subject(6)])
  })

  test('before the first load it fails closed and keeps retrying without throwing', async () => {
    const dead = new JsonRpcProvider('http://127.0.0.1:9', Network.from(31337), { staticNetwork: true, batchMaxCount: 1 })
    const logger = captureLogger()
    const store = new PolicyStore()
    const sync = startPolicySync({ client: new FlyTrapClient(fx.address, dead), store, pollIntervalMs: 20, maxBackoffMs: 100, logger })
    let ready = false
    void sync.ready.then(() => (ready = true))
    await waitFor(() => logger.warnings.length >= 3, 'three failed attempts')
    assert.equal(ready, false)
    assert.equal(store.synced, false)
    assert.equal(store.canPublish(A, 'cold/exact', null).reason, 'not-synced')
    assert.match(sync.status().lastError ?? '', /did not answer|policy load/)
    await sync.stop()
    await sync.ready // resolves on stop, never rejects
    assert.equal(sync.status().synced, false)
    dead.destroy()
  })
})

describe('policy sync when the chain goes away', () => {
  test('keeps serving the last synced policy, records the error, no unhandled rejection', async () => {
    const rejections: unknown[] = []
    const onRejection = (reason: unknown) => rejections.push(reason)
    process.on('unhandledRejection', onRejection)
    const fx = await chainFixture()
    try {
      const A = fx.wallet(2).address
      await fx.as(1).addTopic(topicArgs('outage/#'))
      await fx.as(1).allow('outage/#', A, 3, 0, 'x')
      const logger = captureLogger()
      const store = new PolicyStore()
      const sync = startPolicySync({ client: new FlyTrapClient(fx.address, fx.provider), store, fromBlock: fx.deployBlock, pollIntervalMs: POLL_MS, logger })
      await sync.ready
      assert.equal(store.canPublish(A, 'outage/x', null).allowed, true)

      // The head going backwards (here: a revert to a snapshot) is survived, not followed.
      const snapshot = (await rpc(fx, 'evm_snapshot', [])) as string
      await rpc(fx, 'anvil_mine', ['0x5'])
      const mined = await fx.provider.getBlockNumber()
      await waitFor(() => sync.status().block === mined, 'sync reaches the mined blocks')
      await rpc(fx, 'evm_revert', [snapshot])
      await waitFor(() => logger.warnings.some((w) => w.includes('backwards')), 'head went backwards')
      assert.equal(sync.status().block, mined)
      assert.equal(store.canPublish(A, 'outage/x', null).allowed, true)

      await fx.anvil.stop()
      await waitFor(() => sync.status().lastError !== undefined, 'an error recorded')
      const failuresBefore = logger.warnings.filter((w) => w.includes('policy sync failed')).length
      await waitFor(() => logger.warnings.filter((w) => w.includes('policy sync failed')).length >= failuresBefore + 2, 'it keeps retrying')

      const status = sync.status()
      assert.equal(status.synced, true)
      assert.equal(status.block, mined)
      assert.match(status.lastError ?? '', /did not answer/)
      assert.equal(store.synced, true)
      assert.deepEqual(store.canPublish(A, 'outage/x', null), { allowed: true, reason: 'granted', rule: 'outage/#', sensitive: false })

      await sync.stop()
      await delay(50)
      assert.deepEqual(rejections, [])
    } finally {
      process.off('unhandledRejection', onRejection)
      await fx.close()
    }
  })
})
