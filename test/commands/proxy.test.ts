/**
 * `flytrap proxy start` as a user runs it: the built binary in front of real mosquitto, policy on anvil. A
 * running proxy stays a child process (it waits for a signal, installs SIGINT/SIGTERM handlers and may call
 * process.exit); the usage errors, refused before anything starts, run in-process; the exits 3 and 4 (which
 * reach a chain) through the binary.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import type { IClientOptions, MqttClient } from 'mqtt'
import { makeTestCA } from '../../src/lib/dev/certs.js'
import { encodePacket } from '../../src/lib/mqtt/packets.js'
import { startMosquitto, type MosquittoHandle } from '../../src/lib/dev/mosquitto.js'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { runCli, runInProcess, tempCwd } from '../helpers/cli.js'
import { connectClient, inbox, publish, spawnCli, subscribe, waitFor, type LongCli } from '../helpers/e2e.js'

const TOPIC = 'sensors/temp'

interface StartResult {
  listening: { url: string; host: string; port: number; tls: boolean }[]
  metrics: string | null
  contract: string
  chainId: number
  broker: string
  reporter: string | null
}

describe('flytrap proxy start', () => {
  let chain: ChainFixture
  let mosquitto: MosquittoHandle
  const running = new Set<LongCli>()
  const dirs: string[] = []
  /** A fresh working directory (no .flytrap/ config), removed at the end. */
  const cwd = () => {
    const d = tempCwd()
    dirs.push(d)
    return d
  }

  before(async () => {
    chain = await chainFixture()
    const owner = chain.as(0)
    await owner.addTopic({ name: TOPIC, pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'test' })
    await owner.allow(TOPIC, chain.wallet(1).address, 3, 0, 'device')
    mosquitto = await startMosquitto()
  })
  after(async () => {
    for (const p of running) await p.stop('SIGKILL', 2_000)
    await mosquitto?.stop()
    await chain?.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  const start = (extra: string[] = []) => {
    const p = spawnCli(['proxy', 'start', '--listen', '127.0.0.1:0', '--broker', mosquitto.url, '--rpc', chain.rpcUrl, '--contract', chain.address, '--poll-interval', '200ms', '--json', ...extra], { cwd: cwd() })
    running.add(p)
    return p
  }

  /** Connects once the proxy has synced (before that it refuses with 0x88, fail closed). */
  const connectWhenSynced = async (url: string, clientId: string, extra: IClientOptions = {}): Promise<MqttClient> => {
    const deadline = Date.now() + 20_000
    for (;;) {
      try {
        return await connectClient({ key: chain.wallet(1).privateKey, url, clientId, extra }, chain)
      } catch (err) {
        if ((err as { code?: number }).code !== 0x88 || Date.now() > deadline) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  test('--json prints one line with the listening address; MQTT flows through it; SIGTERM → exit 0', async () => {
    const p = start()
    const ready = await p.firstJsonLine<StartResult>()
    assert.equal(ready.listening.length, 1)
    const l = ready.listening[0]!
    assert.equal(l.host, '127.0.0.1')
    assert.ok(l.port > 0)
    assert.equal(l.tls, false)
    assert.equal(l.url, `mqtt://127.0.0.1:${l.port}`)
    assert.equal(ready.contract.toLowerCase(), chain.address.toLowerCase())
    assert.equal(ready.chainId, chain.chainId)
    assert.equal(ready.broker, mosquitto.url)
    assert.equal(ready.metrics, null)
    assert.equal(ready.reporter, null, 'no key anywhere: bans stay local')

    const sub = await connectWhenSynced(l.url, 'cli-sub')
    const pub = await connectWhenSynced(l.url, 'cli-pub')
    const box = inbox(sub)
    assert.deepEqual(await subscribe(sub, TOPIC), [1])
    await publish(pub, TOPIC, 'through the CLI')
    await waitFor(() => box.has(TOPIC, 'through the CLI'), 5_000, 'delivery')
    await new Promise<void>((r) => pub.end(false, {}, () => r()))
    await new Promise<void>((r) => sub.end(false, {}, () => r()))

    const stopped = await p.stop('SIGTERM', 15_000)
    running.delete(p)
    assert.equal(stopped.hung, false, `did not exit on SIGTERM\n${p.stderr()}`)
    assert.equal(stopped.code, 0, p.stderr())
    assert.equal(p.stdout().trim().split('\n').length, 1, `stdout holds exactly the ready line:\n${p.stdout()}`)
    // Logs are JSON lines on stderr.
    for (const line of p.stderr().trim().split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`)
  })

  test(
    'SIGTERM with a client still connected: the v5 client gets DISCONNECT 0x8B and the process exits 0 within --shutdown-grace',
    async () => {
      const p = start(['--shutdown-grace', '1s'])
      const ready = await p.firstJsonLine<StartResult>()
      const c = await connectWhenSynced(ready.listening[0]!.url, 'cli-live')
      const reasons: (number | undefined)[] = []
      c.on('disconnect', (packet) => reasons.push(packet.reasonCode))
      try {
        const stopped = await p.stop('SIGTERM', 8_000)
        running.delete(p)
        assert.equal(stopped.hung, false, 'exits on SIGTERM with a client connected')
        assert.equal(stopped.code, 0)
        assert.deepEqual(reasons, [0x8b])
      } finally {
        c.end(true)
      }
    },
  )

  test(
    'a 3.1.1 CONNECT without a valid credential gets CONNACK rc 5/4 and the process keeps serving',
    async () => {
      const p = start()
      const ready = await p.firstJsonLine<StartResult>()
      const url = ready.listening[0]!.url
      const probe = await connectWhenSynced(url, 'cli-probe')
      await new Promise<void>((r) => probe.end(false, {}, () => r()))

      const bytes: Buffer[] = []
      let closed = false
      const sock = net.connect(ready.listening[0]!.port, '127.0.0.1')
      sock.on('data', (c: Buffer) => bytes.push(c))
      sock.on('error', () => {})
      sock.on('close', () => (closed = true))
      sock.write(encodePacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'no-cred' }, 4))
      await waitFor(() => closed, 10_000, 'the refused connection to close')
      // CONNACK, session present 0, return code 5 (not authorised: no credential at all).
      assert.deepEqual([...Buffer.concat(bytes)], [0x20, 0x02, 0x00, 0x05], `answer: ${Buffer.concat(bytes).toString('hex')}; stderr: ${p.stderr().slice(-500)}`)
      const after = await connectWhenSynced(url, 'cli-after')
      await new Promise<void>((r) => after.end(false, {}, () => r()))
      assert.equal(p.child.exitCode, null, 'still running')
      const stopped = await p.stop('SIGTERM')
      running.delete(p)
      assert.equal(stopped.code, 0)
    },
  )

  test('--metrics and --tls-listen show up in the ready line, and both serve', async () => {
    const ca = await makeTestCA(join(cwd(), 'ca'))
    const p = start(['--metrics', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0', '--tls-cert', ca.serverCert, '--tls-key', ca.serverKey, '--max-packet-size', '64KB', '--ban-window', '60s'])
    const ready = await p.firstJsonLine<StartResult>()
    assert.equal(ready.listening.length, 2)
    const t = ready.listening[1]!
    assert.equal(t.tls, true)
    assert.equal(t.url, `mqtts://127.0.0.1:${t.port}`)
    assert.match(ready.metrics ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    const c = await connectWhenSynced(t.url, 'cli-tls', { ca: ca.pem.ca, rejectUnauthorized: true })
    const text = await (await fetch(ready.metrics!)).text()
    assert.match(text, /^flytrap_connections_open 1$/m)
    await new Promise<void>((r) => c.end(false, {}, () => r()))
    const stopped = await p.stop('SIGTERM')
    running.delete(p)
    assert.equal(stopped.code, 0, p.stderr())
  })

  const usage: [string, string[], RegExp][] = [
    ['--max-packet-size huge', ['--max-packet-size', 'huge'], /--max-packet-size "huge" is not a size/],
    ['--ban-window 60 (a bare number is milliseconds)', ['--ban-window', '60'], /--ban-window 60 is 60 milliseconds.*\n?.*did you mean --ban-window 60s/s],
    ['--listen nohost', ['--listen', 'nohost'], /--listen "nohost" is not host:port/],
    ['--listen with a port above 65535', ['--listen', '127.0.0.1:70000'], /port 70000 is above 65535/],
    ['--broker with an http URL', ['--broker', 'http://127.0.0.1:1883'], /http:\/\/ is not supported/],
    ['--tls-listen without a certificate', ['--tls-listen', '127.0.0.1:0'], /--tls-listen needs --tls-cert and --tls-key/],
  ]
  for (const [what, flags, message] of usage) {
    test(`bad flag: ${what} → exit 2 with a usage message (before touching the chain)`, async () => {
      // A dead RPC: a usage error must be reported without (and before) any chain access.
      const base = flags.includes('--broker') ? [] : ['--broker', 'mqtt://127.0.0.1:1']
      const args = ['proxy', 'start', '--listen', '127.0.0.1:0', ...base, '--rpc', 'http://127.0.0.1:9', '--contract', chain.address, ...flags]
      const r = await runInProcess(args, { cwd: cwd(), env: { FLYTRAP_KEY: undefined, FLYTRAP_RPC: undefined, FLYTRAP_CONTRACT: undefined } })
      assert.equal(r.code, 2, `exit ${r.code}\n${r.stdout}\n${r.stderr}`)
      assert.match(r.stderr, message)
    })
  }

  test('missing --broker → exit 2', async () => {
    const r = await runInProcess(['proxy', 'start', '--rpc', 'http://127.0.0.1:9'], { cwd: cwd(), env: { FLYTRAP_BROKER: undefined } })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /broker/)
  })

  test('unreachable RPC → exit 4', async () => {
    const r = await runCli(['proxy', 'start', '--listen', '127.0.0.1:0', '--broker', mosquitto.url, '--rpc', 'http://127.0.0.1:9', '--contract', chain.address, '--json'], {
      cwd: cwd(),
      env: { FLYTRAP_KEY: undefined },
      timeoutMs: 30_000,
    })
    assert.equal(r.code, 4, `exit ${r.code}\n${r.stderr}`)
    assert.match(r.stderr + r.stdout, /cannot reach the chain at http:\/\/127\.0\.0\.1:9/)
  })

  test('no contract at --contract → exit 3', async () => {
    const r = await runCli(['proxy', 'start', '--listen', '127.0.0.1:0', '--broker', mosquitto.url, '--rpc', chain.rpcUrl, '--contract', '0x000000000000000000000000000000000000dEaD'], { cwd: cwd(), env: { FLYTRAP_KEY: undefined } })
    assert.equal(r.code, 3, `exit ${r.code}\n${r.stderr}`)
    assert.match(r.stderr, /no contract at/)
  })
})
