/**
 * The proxy's side of the broker: its own identity (password, client certificate) towards a broker locked to
 * it, refusals of that identity made visible (the device hears Server unavailable, the log and metrics say
 * which broker refused with what), the start-up check, and two brokers where one dies under load.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import type { MqttClient } from 'mqtt'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { connectClient, decodeMqttStream, inbox, proxyOptions, publish, recordingTcpTap, subscribe, waitFor } from '../helpers/e2e.js'
import { runCli } from '../helpers/cli.js'
import { startMosquitto, type MosquittoHandle } from '../../src/lib/dev/mosquitto.js'
import { makeTestCA, type TestCA } from '../../src/lib/dev/certs.js'
import { startProxy, type ProxyHandle } from '../../src/lib/proxy/server.js'
import { DEFAULTS, type ProxyOptions } from '../../src/lib/proxy/options.js'
import { checkBrokers, probeBroker } from '../../src/lib/proxy/upstreams.js'
import { FlytrapError } from '../../src/lib/errors.js'
import type { Logger } from '../../src/lib/log.js'

const TOPIC = 'up/data'
const IDENTITY = { username: 'flytrap-proxy', password: 'proxy-secret-1' }

function recordingLogger(): Logger & { lines: { level: string; msg: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = []
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields })
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), enabled: () => true }
}

function scrape(address: { host: string; port: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: address.host, port: address.port, path: '/metrics' }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve(body))
    })
      .on('error', reject)
      .end()
  })
}

describe('upstream identity, refusals, several brokers', () => {
  let chain: ChainFixture
  let locked: MosquittoHandle
  let dir: string
  let ca: TestCA
  const proxies: ProxyHandle[] = []
  const clients: MqttClient[] = []

  const start = async (overrides: Partial<ProxyOptions>) => {
    const p = await startProxy(proxyOptions(chain, locked.url, { bans: { ...DEFAULTS.bans, threshold: 10_000 }, ...overrides }))
    proxies.push(p)
    await waitFor(() => p.policyStatus().synced, 15_000, 'policy sync')
    return p
  }
  const connect = async (p: ProxyHandle, key: number, version: 4 | 5 = 5, extra = {}) => {
    const c = await connectClient({ key: chain.wallet(key).privateKey, url: `mqtt://127.0.0.1:${p.address.port}`, version, extra }, chain)
    clients.push(c)
    return c
  }
  const roundTrip = async (p: ProxyHandle, version: 4 | 5) => {
    const sub = await connect(p, 2, version)
    const box = inbox(sub)
    await subscribe(sub, TOPIC, 1)
    const pub = await connect(p, 1, version)
    const payload = `rt-${Math.random()}`
    await publish(pub, TOPIC, payload)
    await waitFor(() => box.has(TOPIC, payload), 5_000, 'delivery')
    pub.end(true)
    sub.end(true)
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flytrap-upstreams-'))
    ;[chain, locked, ca] = await Promise.all([chainFixture(), startMosquitto({ locked: IDENTITY }), makeTestCA(join(dir, 'ca'), { clientName: 'flytrap-proxy' })])
    const owner = chain.as(0)
    await owner.addTopic({ name: TOPIC, pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'test' })
    await owner.allow(TOPIC, chain.wallet(1).address, 3, 0, 'device')
    await owner.allow(TOPIC, chain.wallet(2).address, 3, 0, 'device')
  })
  after(async () => {
    for (const c of clients) c.end(true)
    for (const p of proxies) await p.close({ graceMs: 500 })
    await locked?.stop()
    await chain?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  describe('a mosquitto locked with a password file', () => {
    test('a device connecting straight to the broker is refused, with its FlyTrap credential or anonymously; through FlyTrap it works (v5 and 3.1.1)', async () => {
      const p = await start({ upstream: { url: locked.url, ...IDENTITY } })
      for (const version of [5, 4] as const) {
        await assert.rejects(connectClient({ key: chain.wallet(1).privateKey, url: locked.url, version, transport: 'username-password' }, chain), (err: NodeJS.ErrnoException) => {
          assert.ok([0x86, 0x87, 4, 5].includes(Number(err.code)), `v${version}: expected bad credentials / not authorised, got ${err.code}`)
          return true
        })
        await assert.rejects(connectClient({ key: chain.wallet(1).privateKey, url: locked.url, version, transport: 'none' }, chain), (err: NodeJS.ErrnoException) => {
          assert.ok([0x86, 0x87, 4, 5].includes(Number(err.code)), `v${version} anonymous: expected a refusal, got ${err.code}`)
          return true
        })
        await roundTrip(p, version)
      }
    })

    test('without the proxy identity the broker refuses the proxy: the device hears Server unavailable (0x88; 3.1.1: 3), the log says which broker refused with what, metrics count it', async () => {
      const logger = recordingLogger()
      const p = await start({ upstream: { url: locked.url, username: IDENTITY.username, password: 'wrong' }, logger, metrics: '127.0.0.1:0' })
      await assert.rejects(connect(p, 1, 5), (err: NodeJS.ErrnoException) => (assert.equal(err.code, 0x88), true))
      await assert.rejects(connect(p, 1, 4), (err: NodeJS.ErrnoException) => (assert.equal(err.code, 3), true))
      const refusals = logger.lines.filter((l) => l.level === 'info' && l.msg === 'broker refused the proxy')
      assert.equal(refusals.length, 2, JSON.stringify(logger.lines.map((l) => l.msg)))
      assert.equal(refusals[0]!.fields!.broker, locked.url)
      // mosquitto 2.0 answers a wrong password with Not authorised (0x87; 3.1.1: 5, counted as its v5 code).
      assert.equal(refusals[0]!.fields!.reasonCode, '0x87')
      const text = await scrape(p.metricsAddress!)
      assert.match(text, new RegExp(`^flytrap_upstream_refusals_total\\{broker="${locked.url}",code="0x87"\\} 2$`, 'm'))
      // A broker that refuses the proxy's own identity refuses everyone: it is marked down.
      assert.match(text, new RegExp(`^flytrap_upstream_up\\{broker="${locked.url}"\\} 0$`, 'm'))
    })

    test('the start-up check: accepted with the identity; refused or unreachable is exit code 4 with the reason', async () => {
      assert.deepEqual(await probeBroker({ url: locked.url, ...IDENTITY }), { ok: true, url: locked.url })
      assert.deepEqual(await checkBrokers([{ url: locked.url, ...IDENTITY }]), [])
      await assert.rejects(checkBrokers([{ url: locked.url }]), (err: FlytrapError) => {
        assert.equal(err.exit, 4)
        assert.match(err.message, /refused the proxy's CONNECT with 0x8[67]/)
        return true
      })
      await assert.rejects(checkBrokers([{ url: 'mqtt://127.0.0.1:1' }]), (err: FlytrapError) => {
        assert.equal(err.exit, 4)
        assert.match(err.message, /mqtt:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/)
        return true
      })
      // One of two reachable: a warning for the other, not a failure.
      const failed = await checkBrokers([{ url: 'mqtt://127.0.0.1:1' }, { url: locked.url, ...IDENTITY }])
      assert.deepEqual(failed.map((f) => f.url), ['mqtt://127.0.0.1:1'])
    })

    test('`proxy start` against a broker that refuses the proxy exits with code 4 and says why, before listening', async () => {
      const pass = join(dir, 'wrong.pass')
      writeFileSync(pass, 'wrong\n')
      const r = await runCli(['proxy', 'start', '--broker', locked.url, '--broker-username', IDENTITY.username, '--broker-password-file', pass, '--listen', '127.0.0.1:0', '--rpc', chain.rpcUrl, '--contract', chain.address, '--no-journal'], { timeoutMs: 30_000 })
      assert.equal(r.code, 4, r.stderr)
      assert.match(r.stderr, /refused the proxy's CONNECT with 0x87[\s›]*\(not authorised\)/)
      const unreachable = await runCli(['proxy', 'start', '--broker', 'mqtt://127.0.0.1:1', '--listen', '127.0.0.1:0', '--rpc', chain.rpcUrl, '--contract', chain.address, '--no-journal'], { timeoutMs: 30_000 })
      assert.equal(unreachable.code, 4, unreachable.stderr)
      assert.match(unreachable.stderr, /ECONNREFUSED/)
    })

    test('--username-from-address with a proxy password: the broker sees the device address as username and the proxy password', async () => {
      const tap = await recordingTcpTap(locked.url)
      try {
        const p = await start({ upstream: { url: tap.url, password: IDENTITY.password }, usernameFromAddress: true })
        // The locked broker knows no user named after the device: a refusal, heard as Server unavailable.
        await assert.rejects(connect(p, 1, 4), (err: NodeJS.ErrnoException) => (assert.equal(err.code, 3), true))
        await waitFor(() => tap.connections.length > 0 && tap.connections[0]!.bytes().length > 0, 5_000, 'upstream CONNECT')
        const [connectPacket] = decodeMqttStream(tap.connections[0]!.bytes(), 4) as { cmd: string; username?: string; password?: Buffer }[]
        assert.equal(connectPacket!.cmd, 'connect')
        assert.equal(connectPacket!.username?.toLowerCase(), chain.wallet(1).address.toLowerCase())
        assert.equal(connectPacket!.password?.toString(), IDENTITY.password)
      } finally {
        await tap.close()
      }
    })
  })

  describe('a mosquitto locked to client certificates (mTLS)', () => {
    let tlsBroker: MosquittoHandle
    before(async () => {
      tlsBroker = await startMosquitto({ tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert }, locked: { certificate: true } })
    })
    after(() => tlsBroker?.stop())

    test('the proxy with its client certificate gets in; a device without one, or on the plain listener, does not', async () => {
      const p = await start({ upstream: { url: tlsBroker.tlsUrl!, ca: ca.caCert, cert: ca.clientCert, key: ca.clientKey } })
      await roundTrip(p, 5)
      await roundTrip(p, 4)
      await assert.rejects(connectClient({ key: chain.wallet(1).privateKey, url: tlsBroker.url, version: 5 }, chain), (err: NodeJS.ErrnoException) => {
        assert.ok([0x86, 0x87].includes(Number(err.code)), `plain listener: expected a refusal, got ${err.code}`)
        return true
      })
      await assert.rejects(connectClient({ key: chain.wallet(1).privateKey, url: tlsBroker.tlsUrl!, version: 5, extra: { ca: ca.pem.ca } }, chain))
      // The same proxy without its certificate: the handshake fails, the device hears Server unavailable.
      const bare = await start({ upstream: { url: tlsBroker.tlsUrl!, ca: ca.caCert } })
      await assert.rejects(connect(bare, 1, 5), (err: NodeJS.ErrnoException) => (assert.equal(err.code, 0x88), true))
    })
  })

  describe('two brokers, one dies under load', () => {
    let a: MosquittoHandle
    let b: MosquittoHandle
    before(async () => {
      ;[a, b] = await Promise.all([startMosquitto({ locked: IDENTITY }), startMosquitto({ locked: IDENTITY })])
    })
    after(async () => {
      await a?.stop()
      await b?.stop()
    })

    test('its sessions are ended (v5: DISCONNECT 0x89, 3.1.1: closed), none hangs; new sessions go to the other; /metrics shows each state', async () => {
      const p = await start({ upstream: [{ url: a.url, ...IDENTITY }, { url: b.url, ...IDENTITY }], upstreamBackoff: { minMs: 200, maxMs: 1_000 }, metrics: '127.0.0.1:0' })
      const subs: { client: MqttClient; version: 4 | 5; disconnect?: number; closed: boolean; got: number }[] = []
      for (const version of [5, 5, 5, 4, 4, 4] as const) {
        const client = await connect(p, 2, version)
        const entry = { client, version, disconnect: undefined as number | undefined, closed: false, got: 0 }
        client.on('disconnect', (packet) => (entry.disconnect = packet.reasonCode))
        client.on('close', () => (entry.closed = true))
        client.on('message', () => entry.got++)
        await subscribe(client, TOPIC, 1)
        subs.push(entry)
      }
      const pub = await connect(p, 1, 5)
      let pubClosed = false
      pub.on('close', () => (pubClosed = true))
      let sent = 0
      // Load: a QoS 1 publish every 5 ms, not waiting for acks (those in flight when the broker dies never come).
      const load = setInterval(() => pub.publish(TOPIC, `load-${sent++}`, { qos: 1 }, () => {}), 5)
      await waitFor(() => subs.every((s) => s.got > 5), 10_000, 'load flowing')
      assert.match(await scrape(p.metricsAddress!), new RegExp(`^flytrap_upstream_sessions\\{broker="${a.url}"\\} 7$`, 'm'))

      a.process.kill('SIGKILL')
      await waitFor(() => subs.every((s) => s.closed), 5_000, 'every session of the dead broker ended')
      clearInterval(load)
      await waitFor(() => pubClosed, 5_000, 'the publisher session ended too')
      for (const s of subs) if (s.version === 5) assert.equal(s.disconnect, 0x89, 'v5 sessions hear Server busy (0x89)')
      await waitFor(() => p.sessionCount() === 0, 5_000, 'no session left on the proxy')

      // New sessions go to the healthy broker.
      await roundTrip(p, 5)
      await roundTrip(p, 4)
      const text = await scrape(p.metricsAddress!)
      assert.match(text, new RegExp(`^flytrap_upstream_up\\{broker="${a.url}"\\} 0$`, 'm'))
      assert.match(text, new RegExp(`^flytrap_upstream_up\\{broker="${b.url}"\\} 1$`, 'm'))
      assert.match(text, new RegExp(`^flytrap_upstream_failures_total\\{broker="${a.url}",reason="lost"\\} [1-9]`, 'm'))
    })
  })
})

