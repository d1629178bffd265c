// proxy/server.ts connection limits, without chain or broker: the proxy's contract client points at a closed
// port, so its policy never syncs and every CONNECT it accepts is answered CONNACK 0x88 (fail closed). That
// answer is how the test tells an accepted connection from one the limits refused (destroyed, no answer).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { valueOf } from '../../../src/lib/proxy/metrics.js'
import net, { type AddressInfo } from 'node:net'
import { JsonRpcProvider, Wallet } from 'ethers'
import { FlyTrapClient } from '../../../src/lib/chain/client.js'
import type { Logger } from '../../../src/lib/log.js'
import { DEFAULTS, type ProxyOptions } from '../../../src/lib/proxy/options.js'
import { startProxy, type ProxyHandle } from '../../../src/lib/proxy/server.js'
import { AUTH, connectPacket, Peer, settle } from '../../helpers/session-harness.js'

const SERVER_UNAVAILABLE = 0x88
const device = Wallet.createRandom()

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const { port } = s.address() as AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

function recordingLogger(): Logger & { lines: Array<{ msg: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ msg: string; fields?: Record<string, unknown> }> = []
  const rec = (msg: string, fields?: Record<string, unknown>) => void lines.push({ msg, fields })
  return { lines, debug: rec, info: rec, warn: rec, error: rec, enabled: () => true }
}

let proxy: ProxyHandle
let log: ReturnType<typeof recordingLogger>
const PER_IP = 2
const TOTAL = 3

before(async () => {
  const rpc = await closedPort()
  const provider = new JsonRpcProvider(`http://127.0.0.1:${rpc}`, 31337, { staticNetwork: true })
  log = recordingLogger()
  const options: ProxyOptions = {
    ...DEFAULTS,
    listeners: [{ listen: '127.0.0.1:0' }],
    upstream: { url: `mqtt://127.0.0.1:${await closedPort()}` },
    contract: new FlyTrapClient(AUTH.contract, provider),
    chainId: Number(AUTH.chainId),
    pollIntervalMs: 60_000,
    authWorkers: 0,
    bans: { ...DEFAULTS.bans, threshold: 1_000 },
    limits: { ...DEFAULTS.limits, maxConnections: TOTAL, maxConnectionsPerIp: PER_IP, connectTimeoutMs: 5_000 },
    logger: log,
  }
  proxy = await startProxy(options)
})
after(async () => {
  await proxy.close({ graceMs: 200 })
})

/** Connects from `localAddress` (any 127/8 address is this host) and resolves once the TCP handshake is done. */
async function connectFrom(localAddress = '127.0.0.1', opts: { allowHalfOpen?: boolean } = {}): Promise<Peer> {
  const socket = net.connect({ host: '127.0.0.1', port: proxy.address.port, localAddress, allowHalfOpen: opts.allowHalfOpen })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return new Peer(socket, 5)
}

/** True when the proxy serves this connection (a CONNECT is answered), false when it was dropped unanswered. */
async function served(peer: Peer): Promise<boolean> {
  peer.send(connectPacket(device, { version: 5 }))
  try {
    const connack = await peer.next('connack', 1_500)
    assert.equal(connack.reasonCode, SERVER_UNAVAILABLE)
    return true
  } catch (err) {
    if (peer.closed && peer.received.length === 0) return false
    throw err
  }
}

const limitRefusals = () => valueOf(proxy.metrics.connections, { outcome: 'limit' })

/** Waits until the proxy has released what was closed (its 'close' handlers run a moment after the peer's). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await settle(10)
  assert.ok(cond(), what)
}

describe('connection limits', () => {
  test('max connections per IP: the next one is destroyed unanswered; closing one frees its slot', async () => {
    const base = await limitRefusals()
    const a = await connectFrom()
    const b = await connectFrom()
    const c = await connectFrom()
    assert.equal(await served(c), false)
    await c.closes()
    assert.equal(await limitRefusals(), base + 1)
    assert.ok(log.lines.some((l) => l.msg === 'connection limit' && l.fields?.ip === '127.0.0.1'))
    // another IP is not affected by this one's limit
    const other = await connectFrom('127.0.0.2')
    assert.equal(await served(other), true)
    await other.closes() // refused (not synced), its socket goes: its slot is released too

    a.destroy()
    await until(() => proxy.sessionCount() === 1, 'a closed session leaves the count')
    const d = await connectFrom()
    assert.equal(await served(d), true)
    await d.closes()
    b.destroy()
    await until(() => proxy.sessionCount() === 0, 'every session closed')
    // both slots free again: two more are served
    const e = await connectFrom()
    const f = await connectFrom()
    assert.equal(await served(e), true)
    assert.equal(await served(f), true)
    await Promise.all([e.closes(), f.closes()])
    assert.equal(await limitRefusals(), base + 1)
  })

  test('max connections in total, across IPs', async () => {
    const base = await limitRefusals()
    const held = [await connectFrom('127.0.0.1'), await connectFrom('127.0.0.2'), await connectFrom('127.0.0.3')]
    const extra = await connectFrom('127.0.0.4')
    assert.equal(await served(extra), false)
    assert.equal(await limitRefusals(), base + 1)
    held[1]!.destroy()
    await held[1]!.closes()
    await settle(20)
    const next = await connectFrom('127.0.0.4')
    assert.equal(await served(next), true)
    await next.closes()
    for (const p of held) p.destroy()
    await until(() => proxy.sessionCount() === 0, 'every session closed')
  })

  test('a refused connection still counts until its socket has closed, not only until its session ended', async () => {
    // allowHalfOpen: this client never answers the proxy's FIN, so its socket lingers until the proxy destroys it
    const lingering = await connectFrom('127.0.0.5', { allowHalfOpen: true })
    const second = await connectFrom('127.0.0.5')
    assert.equal(await served(lingering), true) // CONNACK 0x88, session over, socket not yet closed
    const third = await connectFrom('127.0.0.5')
    assert.equal(await served(third), false) // lingering + second still hold both slots
    // The proxy destroys it after its linger (the half-open client does not see that until it writes): from
    // then on a new connection is served again.
    let fourth: Peer | undefined
    for (let i = 0; i < 30 && fourth === undefined; i++) {
      const p = await connectFrom('127.0.0.5')
      if (await served(p)) fourth = p
      else await settle(100)
    }
    assert.ok(fourth, 'the slot was never released')
    second.destroy()
    lingering.destroy()
    await fourth.closes()
  })
})
