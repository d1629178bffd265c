/**
 * Every authentication path and refusal, end to end: real anvil + contract, real mosquitto, the proxy, and
 * clients that speak MQTT 5 and 3.1.1. Refusals are driven through raw sockets so the exact CONNACK code and
 * the closing of the connection are observed; after each one the proxy must still serve everybody else.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import { AUTH_METHOD, connectAuthData, signChallenge, signCredential, toUserProperties, toUsernamePassword, type Credential } from '../../src/lib/auth/index.js'
import { deployFlyTrap } from '../../src/lib/chain/client.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import type { DecisionEvent } from '../../src/lib/policy/types.js'
import type { AuthPacket, ConnackPacket, ConnectPacket, Packet } from '../../src/lib/mqtt/packets.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { inbox, publish, subscribe, type ConnectOptions } from '../helpers/mqtt.js'
import { decodeMqttStream, rawMqttClient, type RawMqttClient } from '../helpers/mqtt-raw.js'
import { recordingTcpTap } from '../helpers/taps.js'
import { startCliProxy, type CliProxy } from '../helpers/cli.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { topicArgs } from '../helpers/topics.js'

type Version = 4 | 5

const now = () => Math.floor(Date.now() / 1000)
let seq = 0
const uid = (p: string) => `${p}-${++seq}-${Math.random().toString(36).slice(2, 6)}`

describe('authentication through the proxy', () => {
  let e: E2E
  /** e.connect with a CONNACK timeout that tolerates a loaded machine (the suites run in parallel). */
  const connect = (o: ConnectOptions) => e.connect({ ...o, extra: { connectTimeout: 15_000, ...o.extra } })
  let otherContract: string
  const decisions: DecisionEvent[] = []
  const opened: { address?: string; clientId?: string }[] = []
  const clients: MqttClient[] = []
  let watcher: MqttClient
  let watcherBox: ReturnType<typeof inbox>

  const deployment = () => ({ chainId: BigInt(e.chain.chainId), contract: e.chain.address })
  const cred = (key: number, clientId: string, over: Partial<{ chainId: bigint; contract: string; expiresAt: number }> = {}): Credential =>
    signCredential({ signer: e.key(key), ...deployment(), clientId, expiresAt: now() + 3600, ...over })

  function connectPacket(
    version: Version,
    clientId: string,
    f: { username?: string; password?: string | Buffer; userProperties?: Record<string, string | string[]>; authenticationMethod?: string; authenticationData?: Buffer } = {},
  ): ConnectPacket {
    const p: ConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, clientId, keepalive: 30 }
    if (f.username !== undefined) p.username = f.username
    if (f.password !== undefined) p.password = Buffer.from(f.password)
    if (version === 5) {
      const properties: NonNullable<ConnectPacket['properties']> = {}
      if (f.userProperties) properties.userProperties = f.userProperties
      if (f.authenticationMethod !== undefined) properties.authenticationMethod = f.authenticationMethod
      if (f.authenticationData !== undefined) properties.authenticationData = f.authenticationData
      if (Object.keys(properties).length > 0) p.properties = properties
    }
    return p
  }

  const connackCodeOf = (p: Packet, version: Version) => {
    assert.equal(p.cmd, 'connack', `expected CONNACK, got ${p.cmd}`)
    const c = p as ConnackPacket
    return version === 5 ? c.reasonCode : c.returnCode
  }

  /** A publish from a fresh connection reaches the long-lived watcher: new connections and open sessions both work. */
  async function stillServes(tag: string, proxyUrl = e.proxyUrl): Promise<void> {
    const pub = await connect({ key: 1, version: 4, url: proxyUrl })
    const payload = `alive ${tag} ${uid('p')}`
    await publish(pub, 'auth/t', payload)
    await waitFor(() => watcherBox.has('auth/t', payload), 5_000, `delivery after ${tag}`)
    pub.end()
  }

  /** Sends CONNECT on a raw socket; asserts the exact refusal, that the proxy closes the connection, and that it still serves. */
  async function expectRefused(c: { version: Version; connect: ConnectPacket; code: number; reason?: string; port?: number; proxyUrl?: string }): Promise<void> {
    const client = await rawMqttClient(c.port ?? e.proxy.address.port, { version: c.version })
    try {
      client.send(c.connect)
      const p = await client.next()
      assert.equal(connackCodeOf(p, c.version), c.code)
      assert.equal((p as ConnackPacket).sessionPresent, false)
      await waitFor(() => client.isClosed(), 3_000, 'the proxy to close the refused connection')
      assert.equal(client.received.length, 1, 'nothing but the CONNACK was sent')
      if (c.reason) {
        const d = decisions.filter((x) => x.kind === 'connect' && x.clientId === c.connect.clientId).at(-1)
        assert.ok(d, 'a connect decision was emitted')
        assert.equal(d.allowed, false)
        assert.equal(d.reason, c.reason)
      }
    } finally {
      client.destroy()
    }
    await stillServes(`refusal ${c.connect.clientId}`, c.proxyUrl)
  }

  /** Raw enhanced-auth CONNECT up to the proxy's AUTH challenge. */
  async function challenge(key: number, clientId: string, port = e.proxy.address.port): Promise<{ client: RawMqttClient; nonce: Buffer }> {
    const client = await rawMqttClient(port, { version: 5 })
    client.send(connectPacket(5, clientId, { authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(e.address(key)) }))
    const auth = (await client.next()) as AuthPacket
    assert.equal(auth.cmd, 'auth')
    assert.equal(auth.reasonCode, 0x18)
    assert.equal(auth.properties?.authenticationMethod, AUTH_METHOD)
    const nonce = auth.properties?.authenticationData as Buffer
    assert.equal(nonce.length, 32)
    return { client, nonce }
  }

  const answer = (client: RawMqttClient, data: Buffer, method = AUTH_METHOD) =>
    client.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: method, authenticationData: data } } as AuthPacket)

  before(async () => {
    e = await e2eFixture({
      // Hundreds of deliberate refusals from 127.0.0.1: bans are tested in bans.test.ts, not here.
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 }, limits: { ...DEFAULTS.limits, connectTimeoutMs: 15_000 } },
      setup: async (chain) => {
        const owner = chain.as(0)
        for (const name of ['auth/t', 'auth/q']) {
          await owner.addTopic(topicArgs(name))
        }
        await owner.allow('auth/t', chain.wallet(1).address, 3, 0, 'pub+sub')
        await owner.allow('auth/q', chain.wallet(1).address, 3, 0, 'pub+sub')
        // Device B may receive on auth/q too: only the client-id binding keeps it out of A's session.
        await owner.allow('auth/q', chain.wallet(2).address, 2, 0, 'sub')
      },
    })
    otherContract = (await deployFlyTrap(e.chain.wallet(0))).address
    e.proxy.on('decision', (d: DecisionEvent) => decisions.push(d))
    e.proxy.on('session-open', (s: { address?: string; clientId?: string }) => opened.push(s))
    watcher = await connect({ key: 1, clientId: 'watcher' })
    watcherBox = inbox(watcher)
    assert.deepEqual(await subscribe(watcher, 'auth/t'), [1])
  })
  after(async () => {
    for (const c of clients) c.end(true)
    await e?.close()
  })

  describe('accepted credentials', () => {
    for (const [version, transport] of [
      [5, 'user-properties'],
      [5, 'username-password'],
      [4, 'username-password'],
      [5, 'enhanced-auth'],
    ] as const) {
      test(`v${version} ${transport}: connects as the signing address and can publish`, async () => {
        const clientId = uid(`ok-${transport}`)
        const c = await connect({ key: 1, clientId, version, transport })
        const s = opened.find((o) => o.clientId === clientId)
        assert.equal(s?.address, e.address(1))
        const d = decisions.filter((x) => x.kind === 'connect' && x.clientId === clientId).at(-1)
        assert.equal(d?.allowed, true)
        assert.equal(d?.reason, transport)
        const payload = uid(`via-${transport}`)
        await publish(c, 'auth/t', payload)
        await waitFor(() => watcherBox.has('auth/t', payload), 5_000, 'delivery')
        c.end()
      })
    }

    test('enhanced auth on the wire: AUTH 0x18 with a 32-byte nonce, the answer, then CONNACK 0 naming the method', async () => {
      const clientId = uid('ea-raw')
      const { client, nonce } = await challenge(1, clientId)
      const second = await challenge(1, uid('ea-raw2'))
      assert.notDeepEqual(nonce, second.nonce, 'every challenge is fresh')
      second.client.destroy()
      answer(client, signChallenge({ signer: e.key(1), ...deployment(), clientId, nonce }))
      const connack = (await client.next()) as ConnackPacket
      assert.equal(connackCodeOf(connack, 5), 0)
      assert.equal(connack.properties?.authenticationMethod, AUTH_METHOD)
      assert.equal(client.isClosed(), false)
      client.send({ cmd: 'pingreq' })
      assert.equal((await client.next()).cmd, 'pingresp')
      client.send({ cmd: 'disconnect' })
      client.destroy()
    })
  })

  describe('refusals', () => {
    type Fields = Parameters<typeof connectPacket>[2] & { clientId?: string }
    let legacyProxy: ProxyHandle
    before(async () => {
      legacyProxy = await e.startProxy({ allowLegacyCredentials: true })
      legacyProxy.on('decision', (d: DecisionEvent) => decisions.push(d))
    })

    /** The credential in the carrier that suits the version: user properties for v5, username/password for 3.1.1. */
    const carrier = (c: Credential, version: Version): Fields => (version === 5 ? { userProperties: toUserProperties(c) } : toUsernamePassword(c))
    const hex = (n: number) => `0x${n.toString(16).toUpperCase()}`

    /**
     * 3.1.1 refusals run against `flytrap proxy start` in its own process: with the bug above, each one kills the
     * proxy it hits, and a crash inside this test process would take the runner with it. A dead proxy is restarted
     * for the next test, so every case is judged on its own.
     */
    const cliProxies = new Map<string, CliProxy>()
    after(async () => {
      for (const p of cliProxies.values()) await p.stop()
    })
    async function cliProxy(legacy: boolean): Promise<CliProxy> {
      const name = legacy ? 'legacy' : 'plain'
      const existing = cliProxies.get(name)
      if (existing?.alive()) return existing
      const p = await startCliProxy(e, ['--ban-threshold', '1000000', ...(legacy ? ['--allow-legacy-credentials'] : [])])
      cliProxies.set(name, p)
      await waitFor(async () => (await connect({ key: 1, version: 5, url: p.url }).then((c) => (c.end(), true)).catch(() => false)), 15_000, 'the CLI proxy to sync')
      return p
    }

    function refusal(name: string, codes: { 5?: number; 4?: number }, reason: string | undefined, fields: (id: string, version: Version) => Fields, opts: { legacy?: boolean } = {}): void {
      for (const version of [5, 4] as const) {
        const code = codes[version]
        if (code === undefined) continue
        test(`v${version} ${name}: ${version === 5 ? hex(code) : `rc ${code}`}, connection closed, proxy still serves`, async () => {
          const f = fields(uid(name.split(' ')[0]!), version)
          const id = f.clientId ?? uid('x')
          if (version === 5) {
            await expectRefused({ version, connect: connectPacket(version, id, f), code, reason, port: opts.legacy ? legacyProxy.address.port : undefined })
            return
          }
          const p = await cliProxy(Boolean(opts.legacy))
          let failure: unknown
          await expectRefused({ version, connect: connectPacket(version, id, f), code, port: p.port, proxyUrl: p.url }).catch((err: unknown) => (failure = err))
          await sleep(100) // a crash takes a moment to show
          assert.ok(p.alive(), `the proxy process died:\n${p.stderr().slice(-600)}`)
          if (failure) throw failure
        })
      }
    }

    const expired = (id: string) => cred(1, id, { expiresAt: now() - 5 })
    refusal('expired credential', { 5: 0x86, 4: 4 }, 'expired', (id, v) => ({ clientId: id, ...carrier(expired(id), v) }))
    refusal('expired credential (username/password)', { 5: 0x86 }, 'expired', (id) => ({ clientId: id, ...toUsernamePassword(expired(id)) }))
    refusal('expiry beyond the maximum lifetime', { 5: 0x86, 4: 4 }, 'too-long', (id, v) => ({
      clientId: id,
      ...carrier(cred(1, id, { expiresAt: now() + DEFAULTS.maxCredentialLifetimeSec + 86_400 }), v),
    }))
    refusal("credential signed for client id 'a' used as 'b'", { 5: 0x86, 4: 4 }, 'bad-signature', (_id, v) => ({ clientId: 'b', ...carrier(cred(1, 'a'), v) }))
    refusal("credential signed for client id 'a' used as 'b' (username/password)", { 5: 0x86 }, 'bad-signature', () => ({ clientId: 'b', ...toUsernamePassword(cred(1, 'a')) }))
    refusal('credential for another contract (second deployment, same chain)', { 5: 0x86, 4: 4 }, 'bad-signature', (id, v) => ({ clientId: id, ...carrier(cred(1, id, { contract: otherContract }), v) }))
    refusal('credential for another chain id', { 5: 0x86, 4: 4 }, 'bad-signature', (id, v) => ({ clientId: id, ...carrier(cred(1, id, { chainId: 1n }), v) }))
    refusal("another device's address with my signature", { 5: 0x86, 4: 4 }, 'bad-signature', (id, v) => {
      const mine = cred(2, id)
      return v === 5
        ? { clientId: id, userProperties: { ...toUserProperties(mine), 'flytrap-address': e.address(1) } }
        : { clientId: id, username: e.address(1), password: toUsernamePassword(mine).password }
    })
    refusal('garbage password', { 5: 0x86, 4: 4 }, 'malformed', (id) => ({ clientId: id, username: e.address(1), password: 'garbage' }))
    refusal('bad hex in the password signature', { 5: 0x86, 4: 4 }, 'malformed', (id) => ({ clientId: id, username: e.address(1), password: `v1:${now() + 600}:0x${'zz'.repeat(65)}` }))
    refusal('binary (non-ASCII) password', { 5: 0x86, 4: 4 }, 'malformed', (id) => ({ clientId: id, username: e.address(1), password: Buffer.from([0x00, 0xff, 0x0a, 0x80]) }))
    refusal('unsupported credential version v9:', { 5: 0x86, 4: 4 }, 'malformed', (id) => {
      const c = cred(1, id)
      return { clientId: id, username: e.address(1), password: `v9:${c.expiresAt}:${c.signature}` }
    })
    refusal('username that is not an address', { 5: 0x86, 4: 4 }, 'malformed', (id) => ({ clientId: id, username: 'alice', password: toUsernamePassword(cred(1, id)).password }))
    refusal('bad hex in flytrap-sig', { 5: 0x86 }, 'malformed', (id) => ({ clientId: id, userProperties: { ...toUserProperties(cred(1, id)), 'flytrap-sig': `0x${'zz'.repeat(65)}` } }))
    refusal('missing flytrap-sig', { 5: 0x86 }, 'malformed', (id) => {
      const { 'flytrap-sig': _sig, ...rest } = toUserProperties(cred(1, id))
      return { clientId: id, userProperties: rest }
    })
    refusal('repeated flytrap-sig', { 5: 0x86 }, 'malformed', (id) => {
      const p = toUserProperties(cred(1, id))
      return { clientId: id, userProperties: { ...p, 'flytrap-sig': [p['flytrap-sig']!, p['flytrap-sig']!] } }
    })
    refusal('credential in user properties and username/password at once', { 5: 0x86 }, 'malformed', (id) => {
      const c = cred(1, id)
      return { clientId: id, userProperties: toUserProperties(c), ...toUsernamePassword(c) }
    })
    refusal('empty username and password', { 5: 0x86, 4: 4 }, 'malformed', (id) => ({ clientId: id, username: '', password: '' }))
    refusal('address with an empty password', { 5: 0x86, 4: 4 }, 'malformed', (id) => ({ clientId: id, username: e.address(1), password: '' }))
    refusal('no credential at all', { 5: 0x87, 4: 5 }, 'missing', (id) => ({ clientId: id }))
    refusal('empty client id (cannot be bound)', { 5: 0x85, 4: 2 }, 'wrong-client-id', (_id, v) => ({ clientId: '', ...carrier(cred(1, 'x'), v) }))
    const legacy = () => toUsernamePassword(signCredential({ signer: e.key(1), legacy: true }))
    refusal('legacy static credential (not enabled)', { 5: 0x86, 4: 4 }, 'malformed', (id) => ({ clientId: id, ...legacy() }))
    refusal(
      "legacy signature of another key under key #1's name, on the legacy-enabled proxy",
      { 5: 0x86, 4: 4 },
      'bad-signature',
      (id) => ({ clientId: id, username: e.address(1), password: toUsernamePassword(signCredential({ signer: e.key(2), legacy: true })).password }),
      { legacy: true },
    )

    test("the credential refused as 'b' is accepted under 'a' (the refusal is the client-id binding, not the key)", async () => {
      const ok = await rawMqttClient(e.proxy.address.port, { version: 5 })
      ok.send(connectPacket(5, 'a', { userProperties: toUserProperties(cred(1, 'a')) }))
      assert.equal(connackCodeOf(await ok.next(), 5), 0)
      ok.destroy()
    })

    test('unsupported authentication method: 0x8C; FLYTRAP-ETH-V1 with data that is not 20 bytes: 0x87', async () => {
      const id = uid('scram')
      await expectRefused({ version: 5, connect: connectPacket(5, id, { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('n,,n=user,r=abc') }), code: 0x8c, reason: 'malformed' })
      const idS = uid('short')
      await expectRefused({ version: 5, connect: connectPacket(5, idS, { authenticationMethod: AUTH_METHOD, authenticationData: Buffer.alloc(19, 1) }), code: 0x87, reason: 'malformed' })
    })

    test('wrong answers to the AUTH challenge are refused with 0x87 and the connection closed', async () => {
      const cases: { name: string; reason: string; code: number; make(id: string, nonce: Buffer): { data: Buffer; method?: string } }[] = [
        { name: 'signed by another key', reason: 'bad-signature', code: 0x87, make: (id, nonce) => ({ data: signChallenge({ signer: e.key(2), ...deployment(), clientId: id, nonce }) }) },
        { name: 'signed for another nonce', reason: 'bad-signature', code: 0x87, make: (id) => ({ data: signChallenge({ signer: e.key(1), ...deployment(), clientId: id, nonce: Buffer.alloc(32, 7) }) }) },
        { name: 'signed for another client id', reason: 'bad-signature', code: 0x87, make: (_id, nonce) => ({ data: signChallenge({ signer: e.key(1), ...deployment(), clientId: 'someone-else', nonce }) }) },
        { name: 'signed for another contract', reason: 'bad-signature', code: 0x87, make: (id, nonce) => ({ data: signChallenge({ signer: e.key(1), chainId: BigInt(e.chain.chainId), contract: otherContract, clientId: id, nonce }) }) },
        { name: 'not 65 bytes', reason: 'malformed', code: 0x87, make: () => ({ data: Buffer.alloc(64, 1) }) },
        { name: 'answered under another method', reason: 'bad-auth-method', code: 0x8c, make: (id, nonce) => ({ data: signChallenge({ signer: e.key(1), ...deployment(), clientId: id, nonce }), method: 'OTHER' }) },
      ]
      for (const c of cases) {
        const id = uid('ea-wrong')
        const { client, nonce } = await challenge(1, id)
        const { data, method } = c.make(id, nonce)
        answer(client, data, method)
        const p = await client.next()
        assert.equal(connackCodeOf(p, 5), c.code, c.name)
        await waitFor(() => client.isClosed(), 3_000, `close after ${c.name}`)
        const d = decisions.filter((x) => x.kind === 'connect' && x.clientId === id).at(-1)
        assert.equal(d?.reason, c.reason, c.name)
        client.destroy()
        await stillServes(`challenge ${c.name}`)
      }
    })

    test('a correct answer replayed to a new challenge is refused (nonce is single use and per connection)', async () => {
      const id = uid('replay')
      const first = await challenge(1, id)
      const sig = signChallenge({ signer: e.key(1), ...deployment(), clientId: id, nonce: first.nonce })
      answer(first.client, sig)
      assert.equal(connackCodeOf(await first.client.next(), 5), 0)
      first.client.destroy()
      const second = await challenge(1, id)
      answer(second.client, sig)
      assert.equal(connackCodeOf(await second.client.next(), 5), 0x87)
      await waitFor(() => second.client.isClosed(), 3_000, 'close')
      second.client.destroy()
    })

    test('legacy static credential is accepted (v5 and v4) when the proxy is started with allowLegacyCredentials', async () => {
      const url = `mqtt://127.0.0.1:${legacyProxy.address.port}`
      for (const version of [5, 4] as const) {
        const clientId = uid(`legacy-ok${version}`)
        const c = await connect({ key: 1, clientId, version, transport: 'none', url, extra: legacy() })
        const d = decisions.find((x) => x.kind === 'connect' && x.clientId === clientId)
        assert.equal(d?.allowed, true)
        assert.equal(d?.reason, 'legacy-credential')
        const payload = uid('legacy-pub')
        await publish(c, 'auth/t', payload)
        await waitFor(() => watcherBox.has('auth/t', payload), 5_000, 'legacy delivery')
        c.end()
      }
      // v1 credentials keep working on the legacy-enabled proxy
      ;(await connect({ key: 1, url })).end()
      await stillServes('legacy proxy', url)
    })
  })

  describe('the credential never reaches the broker', () => {
    let tap: Awaited<ReturnType<typeof recordingTcpTap>>
    let plain: ProxyHandle
    let named: ProxyHandle
    before(async () => {
      tap = await recordingTcpTap(e.mosquitto.url)
      plain = await e.startProxy({ upstream: { url: tap.url } })
      named = await e.startProxy({ upstream: { url: tap.url }, usernameFromAddress: true })
    })
    after(() => tap?.close())

    /** The packets the tap saw on the upstream connection of `clientId`. */
    async function upstreamOf(clientId: string, version: Version): Promise<{ connect: ConnectPacket; packets: Packet[]; bytes: Buffer }> {
      const upstreamId = `${e.address(1).toLowerCase()}/${clientId}`
      let found: { connect: ConnectPacket; packets: Packet[]; bytes: Buffer } | undefined
      await waitFor(
        () => {
          for (const conn of tap.connections) {
            const bytes = conn.bytes()
            const packets = decodeMqttStream(bytes, version)
            const first = packets[0]
            if (first?.cmd === 'connect' && first.clientId === upstreamId) found = { connect: first, packets, bytes }
          }
          return found !== undefined
        },
        5_000,
        `upstream CONNECT of ${clientId}`,
      )
      return found!
    }

    function assertClean(up: { connect: ConnectPacket; packets: Packet[]; bytes: Buffer }, secrets: string[], username: string | undefined): void {
      const { connect, packets, bytes } = up
      assert.equal(connect.username, username)
      assert.equal(connect.password, undefined)
      assert.equal(connect.properties?.authenticationMethod, undefined)
      assert.equal(connect.properties?.authenticationData, undefined)
      for (const key of Object.keys(connect.properties?.userProperties ?? {})) assert.ok(!key.startsWith('flytrap-'), `user property ${key} reached the broker`)
      assert.ok(!packets.some((p) => p.cmd === 'auth'), 'an AUTH packet reached the broker')
      const text = bytes.toString('latin1')
      for (const s of ['flytrap-', 'FLYTRAP-ETH-V1', 'v1:', ...secrets]) assert.ok(!text.toLowerCase().includes(s.toLowerCase()), `"${s.slice(0, 24)}…" reached the broker`)
    }

    for (const [version, transport] of [
      [5, 'user-properties'],
      [5, 'username-password'],
      [4, 'username-password'],
    ] as const) {
      for (const viaAddress of [false, true]) {
        test(`v${version} ${transport}${viaAddress ? ', usernameFromAddress' : ''}: stripped upstream`, async () => {
          const clientId = uid(`tap-${transport}`)
          const c = cred(1, clientId)
          const extra =
            transport === 'user-properties'
              ? { properties: { userProperties: { ...toUserProperties(c), 'app-tag': 'kept' } } }
              : version === 5
                ? { ...toUsernamePassword(c), properties: { userProperties: { 'app-tag': 'kept' } } }
                : toUsernamePassword(c)
          const proxy = viaAddress ? named : plain
          const client = await connect({ key: 1, clientId, version, transport: 'none', url: `mqtt://127.0.0.1:${proxy.address.port}`, extra })
          const payload = uid('tapped')
          await publish(client, 'auth/t', payload)
          await waitFor(() => watcherBox.has('auth/t', payload), 5_000, 'delivery through the tap')
          const up = await upstreamOf(clientId, version)
          assertClean(up, [c.signature.slice(2), toUsernamePassword(c).password], viaAddress ? e.address(1) : undefined)
          if (version === 5) assert.equal((up.connect.properties?.userProperties as Record<string, string> | undefined)?.['app-tag'], 'kept', 'other user properties are left alone')
          client.end()
        })
      }
    }

    for (const viaAddress of [false, true]) {
      test(`v5 enhanced auth${viaAddress ? ', usernameFromAddress' : ''}: no method, data or AUTH upstream`, async () => {
        const clientId = uid('tap-ea')
        const proxy = viaAddress ? named : plain
        const raw = await rawMqttClient(proxy.address.port, { version: 5 })
        raw.send(connectPacket(5, clientId, { authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(e.address(1)) }))
        const auth = (await raw.next()) as AuthPacket
        const nonce = auth.properties?.authenticationData as Buffer
        const sig = signChallenge({ signer: e.key(1), ...deployment(), clientId, nonce })
        answer(raw, sig)
        assert.equal(connackCodeOf(await raw.next(), 5), 0)
        raw.send({ cmd: 'pingreq' })
        assert.equal((await raw.next()).cmd, 'pingresp')
        const up = await upstreamOf(clientId, 5)
        assertClean(up, [sig.toString('hex'), nonce.toString('hex')], viaAddress ? e.address(1) : undefined)
        assert.ok(!up.bytes.includes(connectAuthData(e.address(1))), 'the raw address bytes (authentication data) reached the broker')
        assert.ok(!up.bytes.includes(sig), 'the raw signature reached the broker')
        raw.send({ cmd: 'disconnect' })
        raw.destroy()
      })
    }
  })

  describe('client-id binding: no session takeover', () => {
    /** MQTT.js with a persistent session; the inbox is attached before CONNACK so queued messages are not missed. */
    function persistent(key: number, clientId: string, version: Version) {
      const c = cred(key, clientId)
      const client = mqtt.connect(e.proxyUrl, {
        protocolVersion: version,
        clientId,
        clean: false,
        reconnectPeriod: 0,
        connectTimeout: 5_000,
        ...(version === 5 ? { properties: { sessionExpiryInterval: 300, userProperties: toUserProperties(c) } } : toUsernamePassword(c)),
      })
      clients.push(client)
      const box = inbox(client)
      const events = { closed: false, disconnect: undefined as number | undefined }
      client.on('close', () => (events.closed = true))
      client.on('disconnect', (p) => (events.disconnect = p.reasonCode ?? -1))
      const connack = new Promise<ConnackPacket>((resolve, reject) => {
        client.once('connect', resolve)
        client.once('error', reject)
      })
      return { client, box, events, connack }
    }

    for (const version of [5, 4] as const) {
      test(`v${version}: device B signing for A's client id neither kicks A nor gets A's queued messages`, async () => {
        const shared = `shared-v${version}`
        const pub = await connect({ key: 1, clientId: uid('qpub') })
        const a = persistent(1, shared, version)
        assert.equal((await a.connack).sessionPresent, false)
        assert.deepEqual(await subscribe(a.client, 'auth/q'), [1])

        const b = persistent(2, shared, version)
        assert.equal((await b.connack).sessionPresent, false, "B must not be handed A's session")
        // A is still connected and still subscribed; B inherited nothing.
        await publish(pub, 'auth/q', 'live-1')
        await waitFor(() => a.box.has('auth/q', 'live-1'), 5_000, 'A still receives')
        await sleep(300)
        assert.equal(a.events.closed, false, 'A was kicked')
        assert.equal(a.events.disconnect, undefined, 'A got a DISCONNECT')
        assert.equal(a.client.connected, true)
        assert.deepEqual(b.box.messages, [], 'B received a message for A')

        // A goes away, messages queue in A's persistent session; B reconnects with the same client id.
        await a.client.endAsync()
        await b.client.endAsync()
        await publish(pub, 'auth/q', 'queued-1')
        await publish(pub, 'auth/q', 'queued-2')
        const b2 = persistent(2, shared, version)
        await b2.connack
        await sleep(400)
        assert.deepEqual(b2.box.messages, [], "B received A's queued messages")

        // The messages really were queued: A gets them when it comes back.
        const a2 = persistent(1, shared, version)
        assert.equal((await a2.connack).sessionPresent, true, "A's session survived B's connections")
        await waitFor(() => a2.box.has('auth/q', 'queued-1') && a2.box.has('auth/q', 'queued-2'), 5_000, 'A gets its queued messages')
        assert.equal(b2.events.closed, false, 'B was kicked by A')
        assert.deepEqual(b2.box.messages, [])
        for (const c of [a2, b2]) await c.client.endAsync()
        pub.end()
      })
    }
  })
})
