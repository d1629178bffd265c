/**
 * Bans end to end: failures (refused logins, refused publishes and subscriptions) from one IP ban it for
 * durationMs, a ban ends on time, bans are shared between proxies through the contract as a keyed hash of
 * the IP, and chain writes are batched (one transaction per report interval, whatever the number of bans).
 * Every proxy here is started with its own small ban settings; each has its own ban list.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { hexlify, keccak256, toUtf8Bytes, Wallet, zeroPadValue, type Log } from 'ethers'
import { FlyTrapClient } from '../../src/lib/chain/client.js'
import type { IConnackPacket, IConnectPacket, IDisconnectPacket, ISubackPacket } from 'mqtt-packet'
import type { MqttClient } from 'mqtt'
import { signCredential, toUserProperties, toUsernamePassword } from '../../src/lib/auth/index.js'
import { DEFAULTS, type BanOptions } from '../../src/lib/proxy/options.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import type { ProxyEventName, ProxyEvents } from '../../src/lib/policy/types.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { publish, type ConnectOptions } from '../helpers/mqtt.js'
import { rawMqttClient } from '../helpers/mqtt-raw.js'
import { startCliProxy } from '../helpers/cli.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { topicArgs } from '../helpers/topics.js'

type Version = 4 | 5

/** 0x8A (Banned) is CONNACK-only; a DISCONNECT must use one of these (an earlier proxy sent 0x8A and MQTT.js dropped it as malformed). */
const VALID_DISCONNECT_CODES = [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2]

/**
 * Anvil's dev account #5 (the well-known "test test … junk" mnemonic). chain.wallet(5) cannot be used: the fixture
 * only knows keys #0–#4 and silently hands out a fresh random, unfunded wallet for any other index.
 */
const ANVIL_KEY_5 = '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba'

let seq = 0
const uid = (p: string) => `${p}-${++seq}-${Math.random().toString(36).slice(2, 6)}`
const now = () => Math.floor(Date.now() / 1000)

describe('bans', () => {
  let e: E2E
  /** e.connect with a CONNACK timeout that tolerates a loaded machine (the suites run in parallel). */
  const connect = (o: ConnectOptions) => e.connect({ ...o, extra: { connectTimeout: 15_000, ...o.extra } })
  const clients: MqttClient[] = []

  const banOpts = (over: Partial<BanOptions> = {}): BanOptions => ({ threshold: 3, windowMs: 10_000, durationMs: 3_000, reportIntervalMs: 60_000, reportBatchMax: 100, ...over })
  const deployment = () => ({ chainId: BigInt(e.chain.chainId), contract: e.chain.address })

  function connectPacket(version: Version, clientId: string, f: { username?: string; password?: string; userProperties?: Record<string, string> } = {}): IConnectPacket {
    const p: IConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, clientId, keepalive: 30 }
    if (f.username !== undefined) p.username = f.username
    if (f.password !== undefined) p.password = Buffer.from(f.password)
    if (version === 5 && f.userProperties) p.properties = { userProperties: f.userProperties }
    return p
  }
  /** A CONNECT with a valid credential of dev key #key. */
  const valid = (version: Version, key = 1) => {
    const clientId = uid('valid')
    const c = signCredential({ signer: e.key(key), ...deployment(), clientId, expiresAt: now() + 3600 })
    return connectPacket(version, clientId, version === 5 ? { userProperties: toUserProperties(c) } : toUsernamePassword(c))
  }
  /** A CONNECT whose credential is signed by key #2 but claims key #1's address: a failed authentication. */
  const forged = (version: Version) => {
    const clientId = uid('forged')
    const c = signCredential({ signer: e.key(2), ...deployment(), clientId, expiresAt: now() + 3600 })
    const { password } = toUsernamePassword(c)
    return connectPacket(version, clientId, { username: e.address(1), password })
  }

  /** CONNECT on a raw socket; the CONNACK code (reason code for v5, return code for 3.1.1), after checking the proxy closes a refusal. */
  async function connack(port: number, version: Version, connect: IConnectPacket, prefix?: string): Promise<number> {
    const c = await rawMqttClient(port, { version, prefix })
    try {
      c.send(connect)
      const p = (await c.next()) as IConnackPacket
      assert.equal(p.cmd, 'connack')
      const code = (version === 5 ? p.reasonCode : p.returnCode) ?? -1
      if (code !== 0) await waitFor(() => c.isClosed(), 3_000, 'the refused connection to be closed')
      return code
    } finally {
      c.destroy()
    }
  }

  const urlOf = (p: ProxyHandle) => `mqtt://127.0.0.1:${p.address.port}`
  function track<K extends ProxyEventName>(p: ProxyHandle, event: K): ProxyEvents[K][0][] {
    const out: ProxyEvents[K][0][] = []
    p.on(event, (...args: ProxyEvents[K]) => out.push(args[0]))
    return out
  }
  const bannedTopic = () => e.chain.as(0).contract.interface.getEvent('Banned')!.topicHash
  async function bannedLogs(fromBlock: number): Promise<{ subject: string; reporter: string; until: number; reason: string; tx: string }[]> {
    if ((await e.chain.provider.getBlockNumber()) < fromBlock) return []
    const logs: Log[] = await e.chain.provider.getLogs({ address: e.chain.address, topics: [bannedTopic()], fromBlock, toBlock: 'latest' })
    return e.chain.as(0).parseLogs(logs).map((l) => ({ subject: String(l.args[0]).toLowerCase(), reporter: String(l.args[1]), until: Number(l.args[2]), reason: String(l.args[3]), tx: l.log.transactionHash }))
  }
  const hmacSubject = (key: string, ip: string) => `0x${createHmac('sha256', key).update(`flytrap/ban/ip/v1:${ip}`).digest('hex')}`

  /** The reporter: anvil dev account #5, registered as reporter in setup. */
  const reporterClient = () => new FlyTrapClient(e.chain.address, new Wallet(ANVIL_KEY_5, e.chain.provider))
  const reporterAddress = new Wallet(ANVIL_KEY_5).address

  before(async () => {
    e = await e2eFixture({
      proxy: { limits: { ...DEFAULTS.limits, connectTimeoutMs: 15_000 } },
      setup: async (chain) => {
        const owner = chain.as(0)
        for (const name of ['ban/ok', 'ban/forbidden']) {
          await owner.addTopic(topicArgs(name))
        }
        await owner.allow('ban/ok', chain.wallet(1).address, 3, 0, 'pub+sub')
        await owner.addReporter(new Wallet(ANVIL_KEY_5).address, 'ban reporter for the e2e tests')
      },
    })
  })
  after(async () => {
    for (const c of clients) c.end(true)
    await e?.close()
  })

  test('failed authentications ban the IP: a valid credential then gets 0x8A / rc 5, and works again after durationMs', async () => {
    const p = await e.startProxy({ bans: banOpts({ durationMs: 3_000 }) })
    const bans = track(p, 'ban')
    const port = p.address.port
    assert.equal(await connack(port, 5, valid(5)), 0, 'not banned before any failure')
    assert.equal(await connack(port, 5, forged(5)), 0x86)
    assert.equal(await connack(port, 5, connectPacket(5, uid('none'))), 0x87)
    assert.equal(bans.length, 0, 'two failures are below the threshold')
    assert.equal(await connack(port, 5, valid(5)), 0, 'still served below the threshold')
    assert.equal(await connack(port, 5, forged(5)), 0x86, 'the threshold-th failure still gets its own refusal')
    const bannedAt = Date.now()
    await waitFor(() => bans.length > 0, 2_000, 'ban event')
    assert.equal(bans[0]!.ip, '127.0.0.1')
    assert.equal(bans[0]!.source, 'local')
    assert.ok(Math.abs(bans[0]!.until - (bannedAt + 3_000)) < 1_000)

    assert.equal(await connack(port, 5, valid(5)), 0x8a, 'v5 valid credential while banned')
    assert.equal(await connack(port, 4, valid(4)), 5, 'v4 valid credential while banned')
    await assert.rejects(connect({ key: 1, url: urlOf(p) }), (err: { code?: number }) => err.code === 0x8a)

    // Banned attempts are not failures: the ban is not extended by them; it ends after durationMs.
    await waitFor(async () => (await connack(port, 5, valid(5))) === 0, 8_000, 'the ban to end')
    const lasted = Date.now() - bannedAt
    assert.ok(lasted >= 2_800 && lasted < 5_000, `ban lasted ${lasted} ms, expected about 3000`)
    assert.equal(await connack(port, 4, valid(4)), 0)
    const c = await connect({ key: 1, url: urlOf(p), version: 4 })
    await publish(c, 'ban/ok', 'after the ban')
    c.end()
  })

  test('failures older than windowMs do not count', async () => {
    const p = await e.startProxy({ bans: banOpts({ threshold: 2, windowMs: 300 }) })
    const port = p.address.port
    assert.equal(await connack(port, 5, forged(5)), 0x86)
    await sleep(400) // let the first failure leave the window
    assert.equal(await connack(port, 5, forged(5)), 0x86)
    assert.equal(await connack(port, 5, valid(5)), 0, 'one failure in the window: not banned')
    assert.equal(await connack(port, 5, forged(5)), 0x86)
    assert.equal(await connack(port, 5, valid(5)), 0x8a, 'two failures in the window: banned')
  })

  test('3.1.1: failures below the threshold do not ban; at the threshold they do (proxy in its own process)', async () => {
    // Its own process: with the bug, the first refused 3.1.1 login kills the proxy it hits.
    const p = await startCliProxy(e, ['--ban-threshold', '3', '--ban-window', '10s', '--ban-duration', '30s'])
    try {
      await waitFor(async () => (await connack(p.port, 5, valid(5)).catch(() => -1)) === 0, 15_000, 'the CLI proxy to sync')
      let failure: unknown
      try {
        assert.equal(await connack(p.port, 4, forged(4)), 4)
        assert.equal(await connack(p.port, 4, forged(4)), 4)
        assert.equal(await connack(p.port, 4, valid(4)), 0, 'two failures with threshold 3 must not ban')
        assert.equal(await connack(p.port, 4, forged(4)), 4)
        assert.equal(await connack(p.port, 4, valid(4)), 5, 'three failures ban')
      } catch (err) {
        failure = err
      }
      await sleep(100)
      assert.ok(p.alive(), `the proxy process died:\n${p.stderr().slice(-600)}`)
      if (failure) throw failure
    } finally {
      await p.stop()
    }
  })

  for (const version of [5, 4] as const) {
    test(`v${version}: refused publishes count; the session is ended at the threshold and reconnects are refused`, async () => {
      const p = await e.startProxy({ bans: banOpts({ durationMs: 3_000 }) })
      const bans = track(p, 'ban')
      const closes = track(p, 'session-close')
      const clientId = uid('pub')
      const c = await connect({ key: 1, version, clientId, url: urlOf(p) })
      clients.push(c)
      let closed = false
      c.on('error', () => undefined)
      c.on('close', () => (closed = true))
      await publish(c, 'ban/ok', 'allowed')
      for (let i = 0; i < 2; i++) {
        const r = publish(c, 'ban/forbidden', `attempt ${i}`)
        if (version === 5) await assert.rejects(r, /not authori[sz]ed|135/i, 'v5 PUBACK carries 0x87')
        else await r // 3.1.1 PUBACK has no code
      }
      assert.equal(closed, false, 'below the threshold the session stays open')
      assert.equal(bans.length, 0)
      void publish(c, 'ban/forbidden', 'attempt 3').catch(() => undefined)
      await waitFor(() => closed, 3_000, 'the banned session to be ended')
      await waitFor(() => closes.some((x) => x.clientId === clientId), 2_000, 'session-close')
      assert.equal(closes.find((x) => x.clientId === clientId)?.reason, 'banned')
      assert.ok(bans.some((b) => b.address === e.address(1)), 'the authenticated identity is banned')
      assert.equal(await connack(p.address.port, version, valid(version)), version === 5 ? 0x8a : 5, 'its reconnect is refused')
      // Refusals of an authenticated client count against its identity, not the (possibly shared, NATed) IP.
      assert.ok(!bans.some((b) => b.ip === '127.0.0.1'), 'the IP is not banned for one identity\'s refusals')
      assert.equal(await connack(p.address.port, version, valid(version, 3)), 0, 'another device behind the same IP still connects')
      await waitFor(async () => (await connack(p.address.port, version, valid(version))) === 0, 8_000, 'the ban to end')
    })
  }

  test('v5: a session ended by a ban gets DISCONNECT 0x98 (Administrative action), a valid DISCONNECT code MQTT.js accepts', async () => {
    const p = await e.startProxy({ bans: banOpts() })
    const c = await connect({ key: 1, url: urlOf(p) })
    clients.push(c)
    let disconnect: IDisconnectPacket | undefined
    let error: Error | undefined
    c.on('disconnect', (d) => (disconnect = d))
    c.on('error', (err) => (error = err))
    for (let i = 0; i < 3; i++) void publish(c, 'ban/forbidden', `attempt ${i}`).catch(() => undefined)
    await waitFor(() => !c.connected, 3_000, 'the session to end')
    assert.equal(error, undefined, `MQTT.js rejected what the proxy sent: ${error?.message}`)
    assert.ok(disconnect, 'no DISCONNECT arrived')
    assert.ok(VALID_DISCONNECT_CODES.includes(disconnect.reasonCode ?? 0), `0x${(disconnect.reasonCode ?? 0).toString(16)} is not a DISCONNECT reason code`)
    assert.equal(disconnect.reasonCode, 0x98)
  })

  test('refused subscriptions count too', async () => {
    const p = await e.startProxy({ bans: banOpts() })
    const c = await rawMqttClient(p.address.port, { version: 5 })
    c.send(valid(5))
    assert.equal(((await c.next()) as IConnackPacket).reasonCode, 0)
    for (let id = 1; id <= 2; id++) {
      c.send({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic: 'ban/forbidden', qos: 1 }] })
      const suback = (await c.next()) as ISubackPacket
      assert.equal(suback.cmd, 'suback')
      assert.deepEqual(suback.granted, [0x87])
    }
    c.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'ban/forbidden', qos: 1 }] })
    await waitFor(() => c.isClosed(), 3_000, 'the banned session to be ended')
    c.destroy()
    assert.equal(await connack(p.address.port, 5, valid(5)), 0x8a)
  })

  test('shared bans: P1 bans and reports a keyed hash on chain in one transaction; P2 (same key) refuses the IP without any failure there', async () => {
    const key = 'k'
    const reporter = reporterAddress
    const provider = e.chain.provider
    assert.ok(await e.chain.as(0).isReporter(reporter), 'the reporter is registered')
    assert.ok((await provider.getBalance(reporter)) > 0n, 'the reporter can pay gas')
    const fromBlock = (await provider.getBlockNumber()) + 1
    const nonce0 = await provider.getTransactionCount(reporter)
    const p1 = await e.startProxy({ reporter: reporterClient(), bans: banOpts({ subjectKey: key, reportIntervalMs: 200, durationMs: 60_000 }) })
    const p2 = await e.startProxy({ bans: banOpts({ subjectKey: key, durationMs: 60_000 }) })
    const p2Decisions = track(p2, 'decision')
    const p2Bans = track(p2, 'ban')

    // A device already connected at P2 from the IP that is about to be banned elsewhere.
    const victim = await connect({ key: 1, url: urlOf(p2) })
    clients.push(victim)
    let victimClosed = false
    let victimDisconnect: IDisconnectPacket | undefined
    victim.on('error', () => undefined)
    victim.on('close', () => (victimClosed = true))
    victim.on('disconnect', (d) => (victimDisconnect = d))
    const p2Closes = track(p2, 'session-close')

    for (let i = 0; i < 3; i++) assert.equal(await connack(p1.address.port, 5, forged(5)), 0x86)
    // More attempts while banned: refused, but no new ban, no new report.
    for (let i = 0; i < 3; i++) assert.equal(await connack(p1.address.port, 5, forged(5)), 0x8a)
    assert.equal(await connack(p1.address.port, 5, valid(5)), 0x8a)

    await waitFor(async () => (await bannedLogs(fromBlock)).length > 0, 10_000, 'a Banned event on chain')
    const logs = await bannedLogs(fromBlock)
    assert.equal(logs.length, 1, 'one ban, one Banned event')
    const ban = logs[0]!
    assert.equal(ban.reporter, reporter)
    assert.equal(ban.subject, hmacSubject(key, '127.0.0.1'), 'the subject is HMAC-SHA256(key, "flytrap/ban/ip/v1:" + ip)')
    assert.ok(Math.abs(ban.until - (now() + 60)) <= 5, `until ${ban.until} is about now + durationMs`)
    // Not the clear IP, in any spelling, nor an unkeyed (reversible) hash of it.
    const clearForms = [
      zeroPadValue(toUtf8Bytes('127.0.0.1'), 32),
      hexlify(toUtf8Bytes('127.0.0.1')).padEnd(66, '0'),
      zeroPadValue('0x7f000001', 32),
      '0x7f000001'.padEnd(66, '0'),
      keccak256(toUtf8Bytes('127.0.0.1')),
      `0x${createHash('sha256').update('127.0.0.1').digest('hex')}`,
      `0x${createHash('sha256').update('flytrap/ban/ip/v1:127.0.0.1').digest('hex')}`,
      keccak256(toUtf8Bytes('flytrap/ban/ip/v1:127.0.0.1')),
    ].map((s) => s.toLowerCase())
    assert.ok(!clearForms.includes(ban.subject), 'the chain holds the IP in clear or unkeyed-hashed form')
    assert.ok(!ban.subject.includes('7f000001') && !ban.subject.includes(hexlify(toUtf8Bytes('127.0.0.1')).slice(2)), 'IP bytes visible in the subject')
    assert.ok(!ban.reason.includes('127.0.0.1'), 'the reason names the IP')

    // P2 learns it from the chain and refuses the IP, having seen no failure itself.
    await waitFor(() => p2Bans.some((b) => b.source === 'chain' && b.subject.toLowerCase() === ban.subject), 10_000, 'P2 to pick up the ban')
    assert.equal(await connack(p2.address.port, 5, valid(5)), 0x8a)
    assert.equal(await connack(p2.address.port, 4, valid(4)), 5)
    await assert.rejects(connect({ key: 3, url: urlOf(p2) }), (err: { code?: number }) => err.code === 0x8a)
    await waitFor(() => victimClosed, 5_000, 'the open session at P2 to be ended')
    assert.ok(p2Closes.some((x) => x.address === e.address(1) && x.reason === 'banned'), 'ended because of the ban')
    assert.equal(victimDisconnect?.reasonCode, 0x98, 'told why: DISCONNECT 0x98 Administrative action')
    assert.deepEqual(
      p2Decisions.filter((d) => !d.allowed && d.reason !== 'banned'),
      [],
      'P2 saw no failure of its own',
    )
    assert.ok(p2Bans.every((b) => b.source === 'chain'), 'P2 banned nothing locally')

    // Gas: the whole episode (3 failures, 4 banned attempts) cost the reporter exactly one transaction.
    await sleep(500)
    assert.equal((await provider.getTransactionCount(reporter)) - nonce0, 1)
    assert.equal((await bannedLogs(fromBlock)).length, 1)
  })

  test('many bans in one report interval: one batched transaction per interval (PROXY protocol sources)', async () => {
    const key = 'k-batch'
    // Long enough that 24 refusals fit in one interval on a slow 2-core CI machine (they take ~1.5 s there).
    const intervalMs = 5_000
    const reporter = reporterAddress
    const provider = e.chain.provider
    const p = await e.startProxy({
      listeners: [{ listen: '127.0.0.1:0', proxyProtocol: true, trustedProxies: ['127.0.0.1'] }],
      reporter: reporterClient(),
      bans: banOpts({ threshold: 2, subjectKey: key, reportIntervalMs: intervalMs, durationMs: 60_000 }),
    })
    const bans = track(p, 'ban')
    const port = p.address.port
    const header = (ip: string) => `PROXY TCP4 ${ip} 127.0.0.1 40000 1883\r\n`
    const failFrom = async (ip: string, times: number) => {
      for (let i = 0; i < times; i++) assert.equal(await connack(port, 5, connectPacket(5, uid('nocred')), header(ip)), 0x87)
    }
    const fromBlock = (await provider.getBlockNumber()) + 1
    const nonce0 = await provider.getTransactionCount(reporter)

    // First ban: its transaction marks the reporter's tick, so the next ones fall into one interval.
    await failFrom('10.77.0.1', 2)
    await waitFor(async () => (await bannedLogs(fromBlock)).length === 1, intervalMs + 3_000, 'the first batch')
    const t1 = Date.now()

    const ips = Array.from({ length: 8 }, (_, i) => `10.77.1.${i + 1}`)
    await Promise.all(ips.map((ip) => failFrom(ip, 2)))
    // banned sources keep failing: refused as banned, no further reports
    await Promise.all(ips.map(async (ip) => assert.equal(await connack(port, 5, connectPacket(5, uid('again')), header(ip)), 0x8a)))
    assert.ok(Date.now() - t1 < intervalMs - 1_000, 'failures were produced within one report interval')
    assert.equal(bans.filter((b) => b.source === 'local' && b.ip?.startsWith('10.77.')).length, 9)
    // 127.0.0.1 (the trusted load balancer) is not what gets banned
    assert.ok(!bans.some((b) => b.ip === '127.0.0.1'))

    await waitFor(async () => (await bannedLogs(fromBlock)).length === 9, intervalMs + 5_000, 'the second batch')
    const logs = await bannedLogs(fromBlock)
    const second = logs.slice(1)
    assert.deepEqual(new Set(second.map((l) => l.subject)), new Set(ips.map((ip) => hmacSubject(key, ip))))
    assert.equal(new Set(second.map((l) => l.tx)).size, 1, 'the 8 bans of one interval went in one transaction')
    assert.notEqual(second[0]!.tx, logs[0]!.tx)
    await sleep(500)
    assert.equal((await provider.getTransactionCount(reporter)) - nonce0, 2, 'two transactions for 9 bans and 26 refused attempts')
  })
})
