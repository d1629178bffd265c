/**
 * The stock Debian mosquitto clients (mosquitto_pub / mosquitto_sub) through the proxy, with credentials
 * produced by the built CLI (`flytrap device sign --format mosquitto`), exactly as the README tells users to
 * do it: MQTT 5 user properties and MQTT 3.1.1 username/password.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import type { DecisionEvent } from '../../src/lib/policy/types.js'
import { runCli, startCliProxy, tempCwd } from '../helpers/cli.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { inbox, subscribe, type ConnectOptions } from '../helpers/mqtt.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { topicArgs } from '../helpers/topics.js'

type MqttVersion = '5' | '3.1.1'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Spawns a mosquitto client; `exit` resolves with its status and output. */
function spawnClient(bin: 'mosquitto_pub' | 'mosquitto_sub', args: string[], timeoutMs = 20_000) {
  // Line-buffered stdout (stdbuf, coreutils), so `-d` progress lines arrive as they happen, not at exit.
  const child = spawn('stdbuf', ['-oL', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const out = { stdout: '', stderr: '' }
  child.stdout.on('data', (c: Buffer) => (out.stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (out.stderr += c.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const exit = new Promise<Run>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, ...out })
    })
  })
  return { child, out, exit }
}

describe('mosquitto_pub / mosquitto_sub with CLI-made credentials', () => {
  let e: E2E
  /** e.connect with a CONNACK timeout that tolerates a loaded machine (the suites run in parallel). */
  const connect = (o: ConnectOptions) => e.connect({ ...o, extra: { connectTimeout: 15_000, ...o.extra } })
  let cwd: string
  const decisions: DecisionEvent[] = []
  let seq = 0
  const uid = (p: string) => `${p}-${++seq}-${Math.random().toString(36).slice(2, 6)}`

  /** `flytrap device sign … --format mosquitto`, split on spaces as a shell would. */
  async function signArgs(key: number, clientId: string, version: MqttVersion): Promise<string[]> {
    const args = ['device', 'sign', '--key', e.key(key), '--client-id', clientId, '--format', 'mosquitto', '--chain-id', String(e.chain.chainId), '--contract', e.chain.address]
    if (version === '3.1.1') args.push('--mqtt-version', '3.1.1')
    const r = await runCli(args, { cwd, env: { FLYTRAP_KEY: undefined, FLYTRAP_RPC: undefined, FLYTRAP_CONTRACT: undefined } })
    assert.equal(r.code, 0, `flytrap device sign failed:\n${r.stdout}\n${r.stderr}`)
    const line = r.stdout.trim()
    assert.ok(!line.includes('\n'), 'one line of arguments')
    const split = line.split(' ')
    assert.deepEqual(split.slice(0, 4), ['-V', version === '5' ? 'mqttv5' : 'mqttv311', '-i', clientId])
    if (version === '5') {
      assert.ok(split.includes('user-property') && split.includes('flytrap-sig'), 'MQTT 5: user properties')
      assert.ok(!split.includes('-u') && !split.includes('-P'))
    } else {
      assert.ok(split.includes('-u') && split.includes('-P'), '3.1.1: username and password')
      assert.equal(split[split.indexOf('-u') + 1], e.address(key))
      assert.match(split[split.indexOf('-P') + 1]!, /^v1:\d+:0x[0-9a-f]{130}$/)
    }
    return split
  }

  const target = () => ['-h', '127.0.0.1', '-p', String(e.proxy.address.port)]

  /** mosquitto_sub waiting for one message; resolves once its SUBACK arrived (so a publish now is not missed). */
  async function startSub(creds: string[], topic: string) {
    const sub = spawnClient('mosquitto_sub', [...target(), ...creds, '-t', topic, '-q', '1', '-C', '1', '-W', '10', '-d'])
    await waitFor(() => /received SUBACK/.test(sub.out.stdout) || sub.child.exitCode !== null, 10_000, 'mosquitto_sub SUBACK')
    assert.equal(sub.child.exitCode, null, `mosquitto_sub exited early:\n${sub.out.stdout}\n${sub.out.stderr}`)
    return sub
  }

  before(async () => {
    e = await e2eFixture({
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 }, limits: { ...DEFAULTS.limits, connectTimeoutMs: 15_000 } },
      setup: async (chain) => {
        const owner = chain.as(0)
        for (const name of ['mc/t', 'mc/secret']) {
          await owner.addTopic(topicArgs(name))
        }
        await owner.allow('mc/t', chain.wallet(1).address, 1, 0, 'publisher')
        await owner.allow('mc/t', chain.wallet(2).address, 2, 0, 'subscriber')
        // #2 may receive on mc/secret; #1 may not publish there.
        await owner.allow('mc/secret', chain.wallet(2).address, 2, 0, 'subscriber')
      },
    })
    e.proxy.on('decision', (d: DecisionEvent) => decisions.push(d))
    cwd = tempCwd('flytrap-mosq-')
  })
  after(() => e?.close())

  for (const [pubVersion, subVersion] of [
    ['5', '5'],
    ['3.1.1', '3.1.1'],
    ['5', '3.1.1'],
    ['3.1.1', '5'],
  ] as const) {
    test(`mosquitto_pub (MQTT ${pubVersion}) → mosquitto_sub (MQTT ${subVersion})`, async () => {
      const subId = uid('msub')
      const pubId = uid('mpub')
      const sub = await startSub(await signArgs(2, subId, subVersion), 'mc/t')
      const payload = `hello ${pubVersion}->${subVersion} ${uid('m')}`
      const pub = await spawnClient('mosquitto_pub', [...target(), ...(await signArgs(1, pubId, pubVersion)), '-t', 'mc/t', '-m', payload, '-q', '1']).exit
      assert.equal(pub.code, 0, `mosquitto_pub failed:\n${pub.stdout}\n${pub.stderr}`)
      assert.equal(pub.stderr, '')
      const s = await sub.exit
      assert.equal(s.code, 0, `mosquitto_sub failed:\n${s.stdout}\n${s.stderr}`)
      assert.ok(s.stdout.split('\n').includes(payload), `payload not received:\n${s.stdout}`)
      // Authenticated by the carrier the CLI chose for each version, as the signing addresses.
      const transport = (v: MqttVersion) => (v === '5' ? 'user-properties' : 'username-password')
      const connectOf = (id: string) => decisions.find((d) => d.kind === 'connect' && d.clientId === id)
      assert.equal(connectOf(subId)?.reason, transport(subVersion))
      assert.equal(connectOf(subId)?.address, e.address(2))
      assert.equal(connectOf(pubId)?.reason, transport(pubVersion))
      assert.equal(connectOf(pubId)?.address, e.address(1))
    })
  }

  describe('refused publish (no grant)', () => {
    for (const version of ['5', '3.1.1'] as const) {
      test(`MQTT ${version}: mosquitto_pub -q 1 to a topic without a grant does not arrive${version === '5' ? ' and reports 0x87' : ''}`, async () => {
        const watcher = await connect({ key: 2, version: version === '5' ? 5 : 4 })
        const box = inbox(watcher)
        assert.deepEqual(await subscribe(watcher, ['mc/secret', 'mc/t']), [1, 1])
        const pubId = uid('refused')
        const creds = await signArgs(1, pubId, version)
        const secret = uid('secret')
        const r = await spawnClient('mosquitto_pub', [...target(), ...creds, '-t', 'mc/secret', '-m', secret, '-q', '1', '-d']).exit
        // What mosquitto_pub 2.0 does: the publish "completes" (exit 0); MQTT 5 shows the PUBACK reason code and warns.
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
        if (version === '5') {
          assert.match(r.stdout, /received PUBACK \(Mid: 1, RC:135\)/)
          assert.match(r.stderr, /Publish 1 failed: Not authorized/)
        } else {
          assert.match(r.stdout, /received PUBACK \(Mid: 1/) // 3.1.1 PUBACK carries no code: the refusal is silent
        }
        const refused = decisions.find((d) => d.kind === 'publish' && d.clientId === pubId)
        assert.equal(refused?.allowed, false)
        assert.equal(refused?.topic, 'mc/secret')
        // A later allowed publish from the same key arrives; the refused one never does.
        const control = uid('control')
        const ok = await spawnClient('mosquitto_pub', [...target(), ...(await signArgs(1, uid('ctl'), version)), '-t', 'mc/t', '-m', control, '-q', '1']).exit
        assert.equal(ok.code, 0)
        await waitFor(() => box.has('mc/t', control), 5_000, 'the control message')
        await sleep(300)
        assert.ok(!box.messages.some((m) => m.payload === secret), 'the refused message reached a subscriber')
        watcher.end()
      })
    }
  })

  describe('refused connections', () => {
    test("MQTT 5: a CLI credential signed for another client id: mosquitto_pub fails with 'Bad User Name or Password'", async () => {
      const creds = await signArgs(1, 'signed-for-a', '5')
      creds[creds.indexOf('-i') + 1] = 'used-as-b'
      const r = await spawnClient('mosquitto_pub', [...target(), ...creds, '-t', 'mc/t', '-m', 'x', '-q', '1']).exit
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /Bad User Name or Password/i)
    })

    test('MQTT 3.1.1: a CLI credential signed for another client id: mosquitto_pub fails with "bad user name or password" (proxy in its own process)', async () => {
      // Its own process: with the bug, the refusal kills the proxy it hits.
      const p = await startCliProxy(e, ['--ban-threshold', '1000000'])
      try {
        await waitFor(async () => (await connect({ key: 1, url: p.url }).then((c) => (c.end(), true)).catch(() => false)), 15_000, 'the CLI proxy to sync')
        const creds = await signArgs(1, 'signed-for-a4', '3.1.1')
        creds[creds.indexOf('-i') + 1] = 'used-as-b4'
        const r = await spawnClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(p.port), ...creds, '-t', 'mc/t', '-m', 'x', '-q', '1']).exit
        await sleep(100)
        assert.ok(p.alive(), `the proxy process died:\n${p.stderr().slice(-600)}`)
        assert.notEqual(r.code, 0)
        assert.match(r.stderr, /Connection Refused: bad user name or password/i)
      } finally {
        await p.stop()
      }
    })

    test('no credential at all: MQTT 5 mosquitto_sub is refused with Not authorized', async () => {
      const r = await spawnClient('mosquitto_sub', [...target(), '-V', 'mqttv5', '-i', uid('anon'), '-t', 'mc/t', '-C', '1', '-W', '5']).exit
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /Not authori[sz]ed/i)
    })
  })
})
