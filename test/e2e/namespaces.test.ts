/**
 * Namespace squatting end to end (issue 9, part 1), through real anvil + contract + mosquitto + proxy + MQTT.js.
 * Owner O registers `medical/records` (closed) and `vault/#`, granting one member M. A stranger S then tries
 * every covering shape:
 *  - on this contract, `flytrap topic add '#'` (and `medical/+`, `vault/data`) is refused with the overlapping
 *    registrations named, and S can neither subscribe to nor publish on O's topics;
 *  - on a build of the contract with the namespace check cut out (so overlapping registrations reach the
 *    chain, as from a buggy or older contract), the proxy's policy store still gives S and S's grantee nothing
 *    on O's topics and takes nothing from M: the second line of defence.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import mqtt, { type MqttClient } from 'mqtt'
import solc from 'solc'
import { ContractFactory, Wallet } from 'ethers'
import { abi, FlyTrapClient, waitForReceipt } from '../../src/lib/chain/client.js'
import { evmVersion } from '../../src/lib/chain/artifacts/FlyTrap.js'
import { startMosquitto, type MosquittoHandle } from '../../src/lib/dev/mosquitto.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import { startProxy, type ProxyHandle } from '../../src/lib/proxy/server.js'
import { ReasonCode } from '../../src/lib/mqtt/reason-codes.js'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { runCli, tempCwd } from '../helpers/cli.js'
import { e2eFixture, proxyOptions, type E2E } from '../helpers/stack.js'
import { connectClient, freshDeviceKey, inbox, publishCode, subscribeCodes } from '../helpers/mqtt.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { BOTH, topicArgs } from '../helpers/topics.js'

/** O's member and S's grantee: device keys without ETH. */
const M = freshDeviceKey()
const G = freshDeviceKey()
const OWNER = 0
const STRANGER = 2

/** What S must not get on O's topics, and M must keep, whatever S registered. */
async function assertNoTakeover(connect: (key: number | string) => Promise<MqttClient>, backend: MqttClient, squatters: (number | string)[]): Promise<void> {
  const member = await connect(M)
  const memberInbox = inbox(member)
  assert.deepEqual(await subscribeCodes(member, ['medical/records', 'vault/#']), [1, 1])
  const spies: ReturnType<typeof inbox>[] = []
  for (const who of squatters) {
    const s = await connect(who)
    spies.push(inbox(s))
    for (const filter of ['medical/records', 'medical/+', 'vault/data', 'vault/#', '#']) assert.deepEqual(await subscribeCodes(s, filter), [ReasonCode.NotAuthorized], `${String(who)} subscribe ${filter}`)
    for (const topic of ['medical/records', 'vault/data']) assert.equal(await publishCode(s, topic, 'forged'), ReasonCode.NotAuthorized, `${String(who)} publish ${topic}`)
  }
  await backend.publishAsync('medical/records', 'from O', { qos: 1 })
  await backend.publishAsync('vault/data', 'from O', { qos: 1 })
  assert.equal(await publishCode(member, 'medical/records', 'from M'), 0)
  await waitFor(() => memberInbox.has('medical/records', 'from O') && memberInbox.has('vault/data', 'from O') && memberInbox.has('medical/records', 'from M'), 5_000, 'M receives O\'s messages')
  await sleep(300) // anything S could have been sent has arrived by now
  for (const spy of spies) assert.deepEqual(spy.messages, [], 'the squatter received nothing')
  assert.ok(!memberInbox.has('medical/records', 'forged') && !memberInbox.has('vault/data', 'forged'), 'no forged message reached the broker')
}

describe('namespace squatting, on this contract', () => {
  let e: E2E
  let backend: MqttClient
  const cwd = tempCwd('flytrap-ns-e2e-')
  const flytrap = (args: string[]) => runCli([...args, '--rpc', e.chain.rpcUrl, '--contract', e.chain.address], { cwd, env: { FLYTRAP_KEY: undefined, FLYTRAP_RPC: undefined, FLYTRAP_CONTRACT: undefined }, timeoutMs: 30_000 })
  const flat = (stderr: string) => stderr.replace(/\s*\n\s*›\s*/g, ' ').replace(/\s+/g, ' ')

  before(async () => {
    e = await e2eFixture({
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 } },
      setup: async (chain) => {
        const o = chain.as(OWNER)
        for (const name of ['medical/records', 'vault/#']) {
          await o.addTopic(topicArgs(name))
          await o.allow(name, new Wallet(M).address, BOTH, 0, 'e2e')
        }
      },
    })
    backend = await mqtt.connectAsync(e.mosquitto.url, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'backend' })
  })
  after(async () => {
    backend?.end(true)
    await e?.close()
  })

  test("flytrap topic add '#' by a stranger is refused, naming O's registrations", async () => {
    const r = await flytrap(['topic', 'add', '#', '--key', e.key(STRANGER)])
    assert.equal(r.code, 5, r.stderr)
    const text = flat(r.stderr)
    assert.match(text, /topic add refused: "#" would overlap 2 registrations of another owner \(first registered wins\)/)
    assert.ok(text.includes(`medical/records (owner ${e.address(OWNER)})`), text)
    assert.ok(text.includes(`vault/# (owner ${e.address(OWNER)})`), text)
    for (const shape of ['medical/+', 'medical/#', 'vault/data', 'vault/+/x']) {
      const s = await flytrap(['topic', 'add', shape, '--key', e.key(STRANGER)])
      assert.equal(s.code, 5, `${shape}: ${s.stderr}`)
    }
    assert.deepEqual((await e.chain.as(STRANGER).topics()).map((t) => t.name), ['medical/records', 'vault/#'])
  })

  test('the stranger can neither subscribe to nor publish on O\'s topics; O\'s member keeps working', async () => {
    await e.synced()
    await assertNoTakeover((key) => e.connect({ key }), backend, [STRANGER])
  })

  test('the stranger\'s own namespace works (the refusals above are about O\'s topics only)', async () => {
    const r = await flytrap(['topic', 'add', 'stranger/#', '--key', e.key(STRANGER)])
    assert.equal(r.code, 0, r.stderr)
    await e.synced()
    const s = await e.connect({ key: STRANGER })
    assert.deepEqual(await subscribeCodes(s, 'stranger/#'), [1])
    assert.equal(await publishCode(s, 'stranger/x', 'mine'), 0)
  })
})

describe('namespace squatting, when overlapping registrations reach the chain anyway (the proxy\'s second line)', () => {
  let chain: ChainFixture
  let mosquitto: MosquittoHandle
  let proxy: ProxyHandle
  let backend: MqttClient
  let address: string
  const clients: MqttClient[] = []

  before(async () => {
    // This contract with the namespace check cut out of addTopic: every squatting shape is accepted on chain.
    const source = readFileSync(new URL('../../contracts/FlyTrap.sol', import.meta.url), 'utf8')
    const check = '        _enter(name, msg.sender);\n'
    assert.equal(source.split(check).length, 2, 'addTopic calls the namespace check exactly once')
    const input = {
      language: 'Solidity',
      sources: { 'FlyTrap.sol': { content: source.replace(check, '') } },
      settings: { optimizer: { enabled: true, runs: 200 }, viaIR: true, evmVersion, outputSelection: { '*': { FlyTrap: ['evm.bytecode.object'] } } },
    }
    const out = JSON.parse(solc.compile(JSON.stringify(input))) as { errors?: { severity: string; message: string }[]; contracts: Record<string, Record<string, { evm: { bytecode: { object: string } } }>> }
    assert.deepEqual((out.errors ?? []).filter((x) => x.severity === 'error'), [])
    const bytecode = `0x${out.contracts['FlyTrap.sol']!.FlyTrap!.evm.bytecode.object}`

    chain = await chainFixture({ deploy: false })
    const deployed = await new ContractFactory(abi, bytecode, chain.wallet(OWNER)).deploy(false)
    const deployBlock = (await waitForReceipt(deployed.deploymentTransaction()!))!.blockNumber
    address = await deployed.getAddress()
    const as = (i: number) => new FlyTrapClient(address, chain.wallet(i))
    for (const name of ['medical/records', 'vault/#']) {
      await as(OWNER).addTopic(topicArgs(name))
      await as(OWNER).allow(name, new Wallet(M).address, BOTH, 0, 'e2e')
    }
    // Later, S: a filter over everything, over medical/, a name inside vault/#, a filter inside it; all granted to G.
    for (const name of ['#', 'medical/+', 'vault/data', 'vault/+/x']) {
      await as(STRANGER).addTopic(topicArgs(name))
      await as(STRANGER).allow(name, new Wallet(G).address, BOTH, 0, 'e2e')
    }
    assert.equal((await as(OWNER).topics()).length, 6, 'the squatting registrations are on chain')

    mosquitto = await startMosquitto()
    const deployment: ChainFixture = { ...chain, address, deployBlock, as }
    proxy = await startProxy(proxyOptions(deployment, mosquitto.url, { bans: { ...DEFAULTS.bans, threshold: 1_000_000 } }))
    await waitFor(() => proxy.policyStatus().synced, 15_000, 'policy sync')
    backend = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'backend' })
  })
  after(async () => {
    for (const c of clients) c.end(true)
    backend?.end(true)
    await proxy?.close({ graceMs: 500 })
    await mosquitto?.stop()
    await chain?.close()
  })

  test('neither S nor S\'s grantee gets anything on O\'s topics; O\'s member keeps every right', async () => {
    const connect = async (key: number | string) => {
      const c = await connectClient({ key: typeof key === 'number' ? chain.wallet(key).privateKey : key, url: `mqtt://127.0.0.1:${proxy.address.port}` }, { chainId: chain.chainId, address })
      clients.push(c)
      return c
    }
    await assertNoTakeover(connect, backend, [STRANGER, G])
  })
})
