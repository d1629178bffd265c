/**
 * `flytrap dev --broker embedded`: the zero-install stack (aedes from npm in the dev process, no mosquitto)
 * forced even where mosquitto is installed. MQTT 5 and 3.1.1 devices meet through the proxy; a shared
 * subscription is refused by the broker and the proxy passes its 0x9E through (what the output says it
 * lacks); a developer's typos do not ban them; the proxy keeps its journal and anchors it with dev account
 * #9, so `audit verify` shows verified anchors within seconds.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import type { MqttClient } from 'mqtt'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { EMBEDDED_BROKER_VERSION } from '../../src/lib/dev/embedded-broker.js'
import { runCli, tempCwd } from '../helpers/cli.js'
import { connectClient, connectWhenReady, inbox, publish, spawnCli, subscribe, subscribeCodes, waitFor, type LongCli } from '../helpers/e2e.js'

interface DevResult {
  rpcUrl: string
  chainId: number
  contract: string
  broker: string
  brokerKind: string
  brokerName: string
  brokerLacks: string[]
  proxy: string
  dataDir: string
  period: number
  reporter: string
  bans: { threshold: number; windowSeconds: number; durationSeconds: number }
}

interface VerifyResult {
  ok: boolean
  anchors: { reporters: string[]; periods: { status: string; local: { count: number } }[] }
}

function childCommands(root: number): string[] {
  const out: string[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${d}/stat`, 'utf8'))
      if (m && Number(m[2]) === root) out.push(m[1]!)
    } catch {
      // gone meanwhile
    }
  }
  return out
}

describe('flytrap dev --broker embedded', () => {
  const cwd = tempCwd('flytrap-dev-embedded-')
  const clients = new Set<MqttClient>()
  let dev: LongCli | undefined
  after(async () => {
    for (const c of clients) c.end(true)
    await dev?.stop('SIGKILL', 2_000)
    rmSync(cwd, { recursive: true, force: true })
  })

  let r: DevResult
  const chain = () => ({ chainId: r.chainId, address: r.contract })
  const client = async (version: 4 | 5, clientId: string) => {
    const c = await connectWhenReady({ key: ANVIL_DEV_KEYS[1], url: r.proxy, version, clientId }, chain())
    clients.add(c)
    return c
  }

  test('starts without mosquitto and says which broker runs and what it lacks', async () => {
    dev = spawnCli(['dev', '--json', '--broker', 'embedded', '--port', '0', '--anvil-port', '0', '--period', '2s', '--log-level', 'error'], { cwd })
    r = await dev.firstJsonLine<DevResult>(60_000)
    assert.equal(r.brokerKind, 'embedded')
    assert.equal(r.brokerName, `aedes ${EMBEDDED_BROKER_VERSION} (embedded, in this process)`)
    assert.match(r.broker, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
    assert.ok(r.brokerLacks.some((l) => /shared subscriptions/.test(l)), r.brokerLacks.join('; '))
    const children = childCommands(dev.child.pid!)
    assert.ok(children.includes('anvil'), children.join(' '))
    assert.ok(!children.includes('mosquitto'), `no mosquitto among ${children.join(' ')}`)
    assert.equal(r.reporter, new Wallet(ANVIL_DEV_KEYS[9]).address)
    assert.equal(r.period, 2)
  })

  test('MQTT 5 and 3.1.1 devices publish and receive through the proxy at QoS 0, 1 and 2', async (t) => {
    if (!r) return t.skip('needs the dev stack')
    const sub5 = await client(5, 'sub-5')
    const sub4 = await client(4, 'sub-4')
    const boxes = [['v5', inbox(sub5)], ['v3.1.1', inbox(sub4)]] as const
    await subscribe(sub5, 'demo/hello', 2)
    await subscribe(sub4, 'demo/hello', 2)
    const pub5 = await client(5, 'pub-5')
    const pub4 = await client(4, 'pub-4')
    for (const qos of [0, 1, 2] as const) {
      await publish(pub5, 'demo/hello', `v5 q${qos}`, { qos })
      await publish(pub4, 'demo/hello', `v4 q${qos}`, { qos })
    }
    for (const [name, box] of boxes) {
      await waitFor(() => [0, 1, 2].every((q) => box.has('demo/hello', `v5 q${q}`) && box.has('demo/hello', `v4 q${q}`)), 10_000, `${name} subscriber to receive all six messages (got ${JSON.stringify(box.messages)})`)
    }
  })

  test('a shared subscription is refused by the embedded broker (0x9E), and the proxy passes its answer through', async (t) => {
    if (!r) return t.skip('needs the dev stack')
    const c = await client(5, 'share-5')
    assert.deepEqual(await subscribeCodes(c, '$share/g/demo/hello', 1), [0x9e])
  })

  test('typos do not lock the developer out: more failed CONNECTs than the default ban threshold, then a good one connects', async (t) => {
    if (!r) return t.skip('needs the dev stack')
    assert.ok(r.bans.threshold > 5 && r.bans.durationSeconds <= 30, JSON.stringify(r.bans))
    const wrongContract = { chainId: r.chainId, address: Wallet.createRandom().address }
    for (let i = 0; i < 7; i++) {
      await assert.rejects(connectClient({ key: ANVIL_DEV_KEYS[1], url: r.proxy, clientId: `typo-${i}` }, wrongContract), (err: Error & { code?: number }) => err.code === 0x86)
    }
    const ok = await connectClient({ key: ANVIL_DEV_KEYS[1], url: r.proxy, clientId: 'after-typos' }, chain())
    clients.add(ok)
    assert.equal(ok.connected, true)
  })

  test('the proxy journals and anchors: `audit verify` on the dev data dir shows verified periods with entries, by dev account #9', async (t) => {
    if (!r) return t.skip('needs the dev stack')
    let last: VerifyResult | undefined
    let out = ''
    await waitFor(
      async () => {
        const v = await runCli(['audit', 'verify', '--data-dir', r.dataDir, '--rpc', r.rpcUrl, '--contract', r.contract, '--json'], { cwd, env: { FLYTRAP_RPC: undefined, FLYTRAP_CONTRACT: undefined, FLYTRAP_HOME: undefined } })
        out = v.stdout + v.stderr
        if (v.code !== 0) return false
        last = v.json<VerifyResult>()
        return last.anchors.periods.some((p) => p.status === 'verified' && p.local.count > 0)
      },
      30_000,
      'an anchored period with journal entries',
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${out}`)
    })
    assert.equal(last!.ok, true)
    assert.deepEqual(last!.anchors.reporters, [r.reporter])
    assert.ok(join(cwd, '.flytrap', 'dev', 'proxy') === r.dataDir, r.dataDir)
  })

  test('SIGINT stops the proxy, the embedded broker and anvil', async (t) => {
    if (!dev) return t.skip('needs the dev stack')
    for (const c of clients) c.end(true)
    clients.clear()
    const stopped = await dev.stop('SIGINT', 20_000)
    assert.equal(stopped.hung, false, dev.stderr())
    assert.equal(stopped.code, 0, dev.stderr())
  })
})
