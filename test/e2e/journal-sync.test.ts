/**
 * Nothing acknowledged before it is durable (issue 10, item 4): the proxy with the journal's `durable`
 * hook, real anvil and mosquitto, and the journal's durable write held on purpose (its segments are
 * O_DSYNC, so FileHandle.write is write + fdatasync in one call; it is wrapped behind a gate). Strict: no
 * CONNACK, SUBACK, PUBACK or sensitive delivery reaches the client while the durable write of its decision
 * has not returned; all of them, in order, once it has. Relaxed: acknowledged at
 * once while the journal keeps up, held once it is more than 50 ms behind.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openJournal, type Journal } from '../../src/lib/audit/journal.js'
import { readRecords } from '../../src/lib/audit/journal-files.js'
import { createRecorder, type JournalSync } from '../../src/lib/audit/recorder.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { rawMqttConnect, type RawMqtt } from '../helpers/mqtt-raw.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { topicArgs } from '../helpers/topics.js'

const SENSITIVE = 'ward/vitals'
const PLAIN = 'plant/valve'

/** Holds every FileHandle.write of this process (the journal is its only writer) until released; counts the ones that returned. */
async function syncGate() {
  const probe = join(mkdtempSync(join(tmpdir(), 'flytrap-gate-')), 'probe')
  const fh = await open(probe, 'w')
  const proto = Object.getPrototypeOf(fh) as { write: (this: FileHandle, ...args: unknown[]) => Promise<unknown> }
  await fh.close()
  const original = proto.write
  let closed = false
  let waiting: (() => void)[] = []
  const g = {
    returned: 0,
    started: 0,
    hold: () => void (closed = true),
    release: () => {
      closed = false
      const w = waiting
      waiting = []
      for (const f of w) f()
    },
    restore: () => {
      proto.write = original
      g.release()
    },
  }
  proto.write = async function (this: FileHandle, ...args: unknown[]) {
    g.started++
    if (closed) await new Promise<void>((r) => waiting.push(r))
    const r = await original.apply(this, args)
    g.returned++
    return r
  }
  return g
}

describe('journal sync: acknowledgements wait for the durable write of their decision', () => {
  let e: E2E
  let gate: Awaited<ReturnType<typeof syncGate>>
  const dirs: string[] = []
  const running: { proxy: ProxyHandle; journal: Journal; clients: RawMqtt[] }[] = []

  before(async () => {
    e = await e2eFixture({
      proxy: { bans: { ...DEFAULTS.bans, threshold: 1_000_000 } },
      setup: async (chain) => {
        const o = chain.as(0)
        await o.addTopic(topicArgs(SENSITIVE, { sensitive: true, reason: 'patient data' }))
        await o.allow(SENSITIVE, chain.wallet(1).address, 3, 0, 'monitor and station')
        await o.addTopic(topicArgs(PLAIN, { reason: 'valve telemetry' }))
        await o.allow(PLAIN, chain.wallet(1).address, 3, 0, 'valve and watcher')
      },
    })
    gate = await syncGate()
  })
  after(async () => {
    gate?.restore()
    for (const r of running) {
      for (const c of r.clients) c.end()
      await r.proxy.close({ graceMs: 200 })
      await r.journal.close()
    }
    await e?.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  async function journaledProxy(sync: JournalSync) {
    const dataDir = mkdtempSync(join(tmpdir(), 'flytrap-sync-'))
    dirs.push(dataDir)
    const journal = await openJournal({ dataDir })
    const recorder = createRecorder(journal, { sync })
    const proxy = await e.startProxy({ durable: (d) => recorder.decision(d) })
    const r = { proxy, journal, clients: [] as RawMqtt[], dataDir }
    running.push(r)
    return r
  }
  const connect = (port: number, clientId: string) => rawMqttConnect({ port, key: e.key(1), chain: e.chain, clientId })
  const cmds = (c: RawMqtt) => c.received.map((r) => r.packet.cmd)
  const journaled = async (dataDir: string) => {
    const out: string[] = []
    for await (const { record } of readRecords(dataDir)) if (!record.redacted) out.push(`${record.entry.kind}:${record.entry.outcome}`)
    return out
  }

  test('strict: CONNACK, SUBACK, PUBACK and the sensitive delivery are held while the durable write is, then sent in order', async () => {
    const r = await journaledProxy('strict')
    gate.hold()
    let connected: RawMqtt | undefined
    const pending = connect(r.proxy.address.port, 'held-1').then((c) => (connected = c))
    await waitFor(() => gate.started > gate.returned, 5_000, 'the durable write of the connect decision')
    await sleep(300)
    assert.equal(connected, undefined, 'no CONNACK while the connect decision is not durable')
    gate.release()
    const c = await pending
    r.clients.push(c)
    assert.equal(c.connack.reasonCode, 0)
    assert.deepEqual(await journaled(r.dataDir), ['connect:allow'], 'durable before the CONNACK')

    gate.hold()
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: SENSITIVE, qos: 1 }] })
    await sleep(300)
    assert.deepEqual(cmds(c), ['connack'], 'no SUBACK while the subscribe decision is not durable')
    gate.release()
    await c.expect((p) => p.cmd === 'suback', 5_000, 'SUBACK')

    gate.hold()
    const returnedBefore = gate.returned
    c.send({ cmd: 'publish', topic: SENSITIVE, payload: Buffer.from('72 bpm'), qos: 1, messageId: 2, retain: false, dup: false })
    await sleep(400) // the broker has long answered and delivered; the proxy holds both
    assert.deepEqual(cmds(c), ['connack', 'suback'], 'no PUBACK, no sensitive delivery while their decisions are not durable')
    assert.equal(gate.returned, returnedBefore)
    gate.release()
    await c.expect((p) => p.cmd === 'puback', 5_000, 'PUBACK')
    await c.expect((p) => p.cmd === 'publish', 5_000, 'the delivery')
    assert.deepEqual(
      (await journaled(r.dataDir)).slice(1),
      ['subscribe:allow', 'publish:allow', 'deliver:allow'],
      'every acknowledged decision was on disk first',
    )
    const puback = cmds(c).indexOf('puback')
    assert.ok(puback > 1, 'acks stay in order')
  })

  test('strict: a connection waiting for the journal holds up no other (per-connection holding, no blocking)', async () => {
    const r = await journaledProxy('strict')
    const watcher = await connect(r.proxy.address.port, 'watcher')
    const valve = await connect(r.proxy.address.port, 'valve')
    r.clients.push(watcher, valve)
    watcher.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: PLAIN, qos: 0 }] })
    await watcher.expect((p) => p.cmd === 'suback', 5_000, 'SUBACK')
    gate.hold()
    valve.send({ cmd: 'publish', topic: PLAIN, payload: Buffer.from('open'), qos: 1, messageId: 7, retain: false, dup: false })
    // The publish is forwarded at once; the watcher's delivery (not sensitive: no decision of its own) flows
    // while the valve's PUBACK waits for the journal.
    await watcher.expect((p) => p.cmd === 'publish', 5_000, 'the delivery to the watcher while the valve waits')
    assert.deepEqual(cmds(valve), ['connack'], 'the valve has no PUBACK yet')
    gate.release()
    await valve.expect((p) => p.cmd === 'puback', 5_000, 'PUBACK')
  })

  test('relaxed: acknowledged at once while the journal keeps up; held once it is more than 50 ms behind', async () => {
    const r = await journaledProxy('relaxed')
    gate.hold()
    const c = await connect(r.proxy.address.port, 'relaxed-1') // the durable write is held, yet the CONNACK comes
    r.clients.push(c)
    assert.equal(c.connack.reasonCode, 0)
    await sleep(120) // the connect entry has now waited over 50 ms for the disk
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: SENSITIVE, qos: 1 }] })
    await sleep(300)
    assert.deepEqual(cmds(c), ['connack'], 'the journal is behind: the SUBACK waits')
    gate.release()
    await c.expect((p) => p.cmd === 'suback', 5_000, 'SUBACK')
  })
})
