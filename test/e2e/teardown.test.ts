/**
 * Every refused or failed connection gives its socket back. The proxy runs as its own process
 * (`flytrap proxy start`) and its open file descriptors (/proc/<pid>/fd) must return to their baseline after a
 * flood of each refusal kind — while the flooding clients keep their own side open, as an attacker would — and
 * SIGTERM during a flood must end the process within --shutdown-grace.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import tls from 'node:tls'
import http from 'node:http'
import { readdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AUTH_METHOD, connectAuthData, signCredential, toUserProperties, toUsernamePassword } from '../../src/lib/auth/index.js'
import { makeTestCA, type TestCA } from '../../src/lib/dev/certs.js'
import { FrameReader, readFixedHeader } from '../../src/lib/mqtt/framing.js'
import { decodePacket, encodePacket, type ConnectPacket, type Packet, type ProtocolVersion } from '../../src/lib/mqtt/packets.js'
import { encodeProxyV1 } from '../../src/lib/proxy/proxy-protocol.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { spawnCli, type LongCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'
import { topicArgs } from '../helpers/topics.js'

const GRANTED = 'td/data'
const FORBIDDEN = 'td/forbidden'
const FLOOD = 40
/** Descriptors the process may open or close by itself meanwhile (RPC keep-alive sockets to anvil). */
const SLACK = 4

/** A hostile peer: never closes its side (half-open allowed), records what it receives. */
class Peer {
  readonly packets: Packet[] = []
  ended = false
  closed = false
  private readonly reader = new FrameReader({ maxPacketSize: 1 << 20 })

  constructor(
    readonly socket: net.Socket,
    readonly version: ProtocolVersion,
  ) {
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of this.reader.push(chunk)) this.packets.push(decodePacket(f.bytes, this.version))
      } catch {
        /* not MQTT: kept as nothing */
      }
    })
    socket.on('end', () => (this.ended = true))
    socket.on('error', () => {})
    socket.on('close', () => (this.closed = true))
  }

  static open(port: number, opts: { localAddress?: string; version?: ProtocolVersion; tls?: boolean } = {}): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tls.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress, rejectUnauthorized: false, allowHalfOpen: true } as tls.ConnectionOptions)
        : net.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress, allowHalfOpen: true })
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => resolve(new Peer(socket, opts.version ?? 5)))
      socket.once('error', reject)
    })
  }

  send(bytes: Buffer | Packet): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : encodePacket(bytes, this.version))
  }

  async next<C extends Packet['cmd']>(cmd: C, timeoutMs = 10_000): Promise<Extract<Packet, { cmd: C }>> {
    // A refusal by reset (the proxy destroys a socket whose CONNECT is already unread in the kernel) ends the
    // connection without an 'end' event: 'close' counts as the end too.
    await waitFor(() => this.packets.some((p) => p.cmd === cmd) || this.ended || this.closed, timeoutMs, `a ${cmd} packet`)
    const i = this.packets.findIndex((p) => p.cmd === cmd)
    if (i < 0) throw new Error(`connection ended before a ${cmd} (got ${this.packets.map((p) => p.cmd).join(', ') || 'nothing'})`)
    return this.packets.splice(i, 1)[0] as Extract<Packet, { cmd: C }>
  }

  destroy(): void {
    this.socket.destroy()
  }
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length

interface CliProxyProcess {
  cli: LongCli
  pid: number
  port: number
  tlsPort?: number
}

describe('refused connections release their sockets (fd count of the proxy process)', () => {
  let e: E2E
  let ca: TestCA
  const peers = new Set<Peer>()
  const procs: CliProxyProcess[] = []
  let lenient: CliProxyProcess // ban threshold out of reach, TLS listener, short CONNECT timeout
  let strict: CliProxyProcess // ban threshold 2

  const open = async (port: number, opts: Parameters<typeof Peer.open>[1] = {}) => {
    const p = await Peer.open(port, opts)
    peers.add(p)
    return p
  }
  const connectFor = (key: number, version: ProtocolVersion, o: { clientId?: string; signedFor?: string; will?: ConnectPacket['will'] } = {}): ConnectPacket => {
    const clientId = o.clientId ?? `td-${Math.random().toString(36).slice(2, 10)}`
    const cred = signCredential({ signer: e.key(key), chainId: BigInt(e.chain.chainId), contract: e.chain.address, clientId: o.signedFor ?? clientId, expiresAt: Math.floor(Date.now() / 1000) + 600 })
    const base: ConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 60, clientId, will: o.will }
    if (version === 5) return { ...base, properties: { userProperties: toUserProperties(cred) } }
    const { username, password } = toUsernamePassword(cred)
    return { ...base, username, password: Buffer.from(password) }
  }

  const startCli = async (extra: string[], opts: { rpc?: string; broker?: string } = {}): Promise<CliProxyProcess> => {
    const cwd = mkdtempSync(join(tmpdir(), 'flytrap-td-'))
    const args = ['proxy', 'start', '--json', '--no-journal', '--listen', '127.0.0.1:0', '--broker', opts.broker ?? e.mosquitto.url, '--rpc', opts.rpc ?? e.chain.rpcUrl, '--contract', e.chain.address, '--from-block', String(e.chain.deployBlock), '--poll-interval', '200ms', '--log-level', 'error', '--auth-workers', '0', ...extra]
    const cli = spawnCli(args, { cwd })
    const first = await cli.firstJsonLine<{ listening?: { port: number; tls: boolean }[] }>()
    if (!first.listening) {
      await cli.stop('SIGKILL', 5_000)
      throw new Error(`flytrap proxy start did not start: ${JSON.stringify(first)} ${cli.stderr()}`)
    }
    const proc: CliProxyProcess = { cli, pid: cli.child.pid!, port: first.listening.find((l) => !l.tls)!.port, tlsPort: first.listening.find((l) => l.tls)?.port }
    procs.push(proc)
    return proc
  }
  /** An accepted v5 session through `port`: the proxy has synced. */
  const canConnect = async (port: number): Promise<boolean> => {
    const p = await open(port)
    p.send(connectFor(1, 5))
    const ok = await p
      .next('connack', 5_000)
      .then((c) => c.reasonCode === 0)
      .catch(() => false)
    p.destroy()
    return ok
  }

  /** The descriptor count once it has settled (two equal reads in a row). */
  const settled = async (pid: number): Promise<number> => {
    let last = -1
    for (let i = 0; i < 40; i++) {
      const n = fdCount(pid)
      if (n === last) return n
      last = n
      await new Promise((r) => setTimeout(r, 250))
    }
    return last
  }

  /**
   * Floods `proc` with FLOOD connections made by `attack` (which leaves each peer open), then checks that the
   * proxy's descriptors come back to the baseline while the peers still hold their side.
   */
  const flood = async (proc: CliProxyProcess, attack: () => Promise<Peer>, count = FLOOD) => {
    const baseline = await settled(proc.pid)
    const batch: Peer[] = []
    for (let i = 0; i < count; i++) batch.push(await attack())
    let now = fdCount(proc.pid)
    try {
      await waitFor(() => (now = fdCount(proc.pid)) <= baseline + SLACK, 20_000, 'the descriptors to return to the baseline')
    } catch {
      assert.fail(`the proxy kept ${now - baseline} descriptors after ${count} refused connections (baseline ${baseline}, now ${now}), their peers still open`)
    } finally {
      for (const p of batch) p.destroy()
    }
    assert.ok(proc.cli.child.exitCode === null, 'the proxy is still running')
  }

  before(async () => {
    ca = await makeTestCA(mkdtempSync(join(tmpdir(), 'flytrap-td-ca-')))
    e = await e2eFixture({
      setup: async (chain) => {
        const owner = chain.as(0)
        for (const name of [GRANTED, FORBIDDEN]) await owner.addTopic(topicArgs(name))
        for (const k of [1, 2]) await owner.allow(GRANTED, chain.wallet(k).address, 3, 0, 'device')
      },
    })
    lenient = await startCli(['--ban-threshold', '1000000', '--connect-timeout', '1s', '--tls-listen', '127.0.0.1:0', '--tls-cert', ca.serverCert, '--tls-key', ca.serverKey])
    strict = await startCli(['--ban-threshold', '2', '--ban-window', '10m', '--connect-timeout', '1s'])
    for (const p of [lenient, strict]) await waitFor(() => canConnect(p.port), 30_000, 'the CLI proxy to sync')
  })
  after(async () => {
    for (const p of peers) p.destroy()
    for (const p of procs) await p.cli.stop('SIGKILL', 5_000)
    await e?.close()
  })

  for (const version of [5, 4] as const) {
    test(`bad credential (v${version}: ${version === 5 ? '0x86' : 'rc 4'})`, async () => {
      await flood(lenient, async () => {
        const p = await open(lenient.port, { version })
        p.send(connectFor(1, version, { signedFor: 'someone-else' }))
        const connack = await p.next('connack')
        assert.equal(version === 5 ? connack.reasonCode : connack.returnCode, version === 5 ? 0x86 : 4)
        return p
      })
    })

    test(`refused will (v${version}: ${version === 5 ? '0x87' : 'rc 5'})`, async () => {
      await flood(lenient, async () => {
        const p = await open(lenient.port, { version })
        p.send(connectFor(1, version, { will: { topic: FORBIDDEN, payload: Buffer.from('x'), qos: 0, retain: false } }))
        const connack = await p.next('connack')
        assert.equal(version === 5 ? connack.reasonCode : connack.returnCode, version === 5 ? 0x87 : 5)
        return p
      })
    })
  }

  test('bad authentication method: in CONNECT, and in the answer to the challenge (0x8C)', async () => {
    await flood(lenient, async () => {
      const p = await open(lenient.port)
      p.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: `td-am-${Math.random()}`, properties: { authenticationMethod: 'SCRAM-SHA-1' } })
      assert.equal((await p.next('connack')).reasonCode, 0x8c)
      return p
    })
    await flood(lenient, async () => {
      const p = await open(lenient.port)
      p.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: `td-am-${Math.random()}`, properties: { authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(e.address(1)) } })
      await p.next('auth')
      p.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.alloc(65) } })
      assert.equal((await p.next('connack')).reasonCode, 0x8c)
      return p
    })
  })

  test('unsupported protocol version (CONNACK rc 1)', async () => {
    await flood(lenient, async () => {
      const p = await open(lenient.port, { version: 4 })
      const bytes = Buffer.from(encodePacket(connectFor(1, 4), 4))
      bytes[readFixedHeader(bytes)!.headerLength + 6] = 6 // protocol level: after the fixed header and the "MQTT" name (2 + 4 bytes)
      p.send(bytes)
      assert.equal((await p.next('connack')).returnCode, 1)
      return p
    })
  })

  test('CONNECT timeout: silent sockets, and CONNECTs that stop half way', async () => {
    await flood(lenient, () => open(lenient.port))
    await flood(lenient, async () => {
      const p = await open(lenient.port)
      p.send(encodePacket(connectFor(1, 5), 5).subarray(0, 20))
      return p
    })
  })

  test('malformed first packets: not CONNECT, a garbage CONNECT body, a 5-byte length, an oversize header', async () => {
    const shapes = [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from([0x10, 0x04, 0xde, 0xad, 0xbe, 0xef]), Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])]
    let i = 0
    await flood(lenient, async () => {
      const p = await open(lenient.port)
      p.send(shapes[i++ % shapes.length]!)
      return p
    })
  })

  test('TLS: failed handshakes, silent TLS sockets, and a refused CONNECT over TLS', async () => {
    const port = lenient.tlsPort!
    await flood(lenient, async () => {
      const p = await open(port)
      p.send(Buffer.from('\x16\x03\x01\x00\x05hello-not-tls'))
      return p
    })
    await flood(lenient, () => open(port)) // TCP only, never a ClientHello
    await flood(lenient, async () => {
      const p = await open(port, { tls: true })
      p.send(connectFor(1, 5, { signedFor: 'someone-else' }))
      assert.equal((await p.next('connack')).reasonCode, 0x86)
      return p
    })
  })

  test('banned IP (0x8A at CONNECT) and banned identity (0x8A after verification); a session ended by its ban', async () => {
    // 127.0.0.2 fails twice → banned.
    for (let i = 0; i < 2; i++) {
      const p = await open(strict.port, { localAddress: '127.0.0.2' })
      p.send(connectFor(1, 5, { signedFor: 'someone-else' }))
      await p.next('connack')
      p.destroy()
    }
    await flood(strict, async () => {
      const p = await open(strict.port, { localAddress: '127.0.0.2' })
      p.send(connectFor(1, 5))
      assert.equal((await p.next('connack')).reasonCode, 0x8a)
      return p
    })
    // Key 2 is refused twice on its open session (from 127.0.0.3) → the identity is banned and the session ended.
    const s = await open(strict.port, { localAddress: '127.0.0.3' })
    s.send(connectFor(2, 5))
    assert.equal((await s.next('connack')).reasonCode, 0)
    for (let id = 1; id <= 2; id++) s.send({ cmd: 'publish', topic: FORBIDDEN, payload: Buffer.from('x'), qos: 1, messageId: id, dup: false, retain: false })
    assert.equal((await s.next('disconnect')).reasonCode, 0x98)
    await flood(strict, async () => {
      const p = await open(strict.port, { localAddress: '127.0.0.3' })
      p.send(connectFor(2, 5))
      assert.equal((await p.next('connack')).reasonCode, 0x8a)
      return p
    })
    // Open sessions banned by their own refusals, one after the other.
    await flood(strict, async () => {
      const key = 3 + Math.floor(Math.random() * 5)
      const p = await open(strict.port, { localAddress: `127.0.1.${Math.floor(Math.random() * 250) + 1}` })
      p.send(connectFor(key, 5))
      const c = await p.next('connack')
      if (c.reasonCode !== 0) return p // already banned from an earlier round: refused, which is fine too
      for (let id = 1; id <= 2; id++) p.send({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic: FORBIDDEN, qos: 0 }] })
      await p.next('disconnect')
      return p
    })
  })

  test('PROXY protocol: untrusted peers, bad headers, silent trusted peers, and a refusal behind a valid header', async () => {
    const pp = await startCli(['--ban-threshold', '1000000', '--connect-timeout', '1s', '--proxy-protocol', '--trusted-proxy', '127.0.0.2'])
    const header = (ip: string) => encodeProxyV1({ address: ip, port: 40_000 }, { address: '127.0.0.1', port: pp.port })
    await flood(pp, () => open(pp.port)) // 127.0.0.1 is not trusted
    await flood(pp, async () => {
      const p = await open(pp.port, { localAddress: '127.0.0.2' })
      p.send(Buffer.from('PROXY TCP4 nonsense\r\n'))
      return p
    })
    await flood(pp, () => open(pp.port, { localAddress: '127.0.0.2' })) // trusted, never sends its header
    await flood(pp, async () => {
      const p = await open(pp.port, { localAddress: '127.0.0.2' })
      p.send(Buffer.concat([header('10.1.2.3'), encodePacket(connectFor(1, 5, { signedFor: 'someone-else' }), 5)]))
      assert.equal((await p.next('connack')).reasonCode, 0x86)
      return p
    })
  })

  test('upstream failures: the broker refuses the CONNECT, closes before its CONNACK, or answers garbage', async () => {
    // A broker that, in turn, refuses (CONNACK 0x87), hangs up, or answers CONNECT with a PINGRESP: the proxy is
    // started without its start-up check (which this broker fails), and its clients hear 0x88 for the refusal.
    let n = 0
    const answers = [encodePacket({ cmd: 'connack', sessionPresent: false, reasonCode: 0x87 }, 5), null, Buffer.from([0xd0, 0x00])]
    const broker = net.createServer((s) => {
      s.on('error', () => {})
      s.once('data', () => {
        const a = answers[n++ % answers.length]
        if (a) s.write(a)
        else s.destroy()
      })
    })
    await new Promise<void>((r) => broker.listen(0, '127.0.0.1', () => r()))
    try {
      const up = await startCli(['--ban-threshold', '1000000', '--connect-timeout', '2s', '--no-broker-check'], { broker: `mqtt://127.0.0.1:${(broker.address() as net.AddressInfo).port}` })
      await waitFor(async () => {
        const p = await open(up.port)
        p.send(connectFor(1, 5))
        const c = await p.next('connack', 3_000).catch(() => undefined)
        p.destroy()
        return c?.reasonCode === 0x88
      }, 30_000, 'the CLI proxy to sync')
      await flood(up, async () => {
        const p = await open(up.port)
        p.send(connectFor(1, 5))
        await waitFor(() => p.ended || p.packets.length > 0, 10_000, 'an answer or the end')
        return p
      })
    } finally {
      broker.close()
    }
  })

  test('connection limits are released exactly once: after refusals from one IP, that IP gets exactly its --max-connections-per-ip', async () => {
    const limit = 8
    const lp = await startCli(['--ban-threshold', '1000000', '--max-connections-per-ip', String(limit)])
    await waitFor(() => canConnect(lp.port), 30_000, 'the CLI proxy to sync')
    const from = { localAddress: '127.0.0.7' }
    for (let round = 0; round < 3; round++) {
      await flood(
        lp,
        async () => {
          const p = await open(lp.port, from)
          p.send(connectFor(1, 5, { signedFor: 'someone-else' }))
          assert.equal((await p.next('connack')).reasonCode, 0x86)
          return p
        },
        limit,
      )
    }
    for (let round = 0; round < 2; round++) {
      const held: Peer[] = []
      for (let i = 0; i < limit; i++) {
        const p = await open(lp.port, from)
        p.send(connectFor(1, 5))
        assert.equal((await p.next('connack')).reasonCode, 0, `session ${i + 1} of ${limit} is accepted`)
        held.push(p)
      }
      const over = await open(lp.port, from)
      over.send(connectFor(1, 5))
      await assert.rejects(over.next('connack'), /ended before a connack/, 'one more than the limit is closed without an answer')
      for (const p of held) p.destroy()
      await settled(lp.pid)
    }
  })

  test('not synced (0x88): the chain fails every call the policy sync makes', async () => {
    // A JSON-RPC front for anvil that lets the CLI start (chain id, contract code) and fails every other call.
    const passes = new Set(['eth_chainId', 'net_version', 'eth_getCode'])
    const front = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        type Call = { id: number; method: string }
        const calls = JSON.parse(body) as Call | Call[]
        const answer = async (c: Call) =>
          passes.has(c.method) ? ((await (await fetch(e.chain.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(c) })).json()) as unknown) : { jsonrpc: '2.0', id: c.id, error: { code: -32000, message: 'down' } }
        void (Array.isArray(calls) ? Promise.all(calls.map(answer)) : answer(calls)).then((out) => {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify(out))
        })
      })
    })
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()))
    try {
      const unsynced = await startCli(['--ban-threshold', '1000000'], { rpc: `http://127.0.0.1:${(front.address() as net.AddressInfo).port}` })
      await flood(unsynced, async () => {
        const p = await open(unsynced.port)
        p.send(connectFor(1, 5))
        assert.equal((await p.next('connack')).reasonCode, 0x88)
        return p
      })
      // And it still stops on SIGTERM, with its sync failing.
      const stopped = await unsynced.cli.stop('SIGTERM', 15_000)
      assert.equal(stopped.hung, false, 'SIGTERM ends the proxy')
    } finally {
      front.closeAllConnections()
      front.close()
    }
  })

  test('SIGTERM during a flood of every kind: the process exits within --shutdown-grace', async () => {
    const p = await startCli(['--ban-threshold', '1000000', '--shutdown-grace', '2s', '--tls-listen', '127.0.0.1:0', '--tls-cert', ca.serverCert, '--tls-key', ca.serverKey])
    await waitFor(() => canConnect(p.port), 30_000, 'the CLI proxy to sync')
    const held: Promise<unknown>[] = []
    for (let i = 0; i < 20; i++) {
      held.push(
        open(p.port).then(async (peer) => {
          peer.send(connectFor(1, 5, { signedFor: 'someone-else' }))
          await peer.next('connack')
        }),
      )
      held.push(open(p.port)) // silent
      held.push(open(p.tlsPort!)) // silent TLS
      held.push(open(p.port).then((peer) => peer.send(encodePacket(connectFor(1, 4), 4).subarray(0, 12))))
    }
    for (let i = 0; i < 5; i++) {
      held.push(
        open(p.port).then(async (peer) => {
          peer.send(connectFor(1, 5))
          await peer.next('connack')
          peer.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: GRANTED, qos: 1 }] })
        }),
      )
    }
    await Promise.all(held)
    const stopped = await p.cli.stop('SIGTERM', 2_000 + 8_000)
    assert.equal(stopped.hung, false, `the proxy did not exit after SIGTERM (stderr: ${p.cli.stderr().slice(-500)})`)
    assert.equal(stopped.code, 0)
  })
})
