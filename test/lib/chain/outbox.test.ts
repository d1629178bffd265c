/**
 * The outbox against a real anvil: nonces, receipts, reverts and retries, same-nonce fee bumps, and a
 * process killed with SIGKILL in the middle of its work whose intents still reach the chain exactly once.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256, toUtf8Bytes, zeroPadValue, type JsonRpcProvider } from 'ethers'
import { openOutbox, type ConfirmedWrite, type Outbox, type OutboxOptions } from '../../../src/lib/chain/outbox.js'
import { ANVIL_DEV_KEYS } from '../../../src/lib/dev/anvil.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'
import { PROTOTYPE_2020 } from '../../../scripts/gas-table.js'
import { recordingLogger } from '../../helpers/logger.js'
import { waitFor } from '../../helpers/wait.js'

const root = (label: string) => keccak256(toUtf8Bytes(label))
const tmp = () => mkdtempSync(join(tmpdir(), 'flytrap-outbox-'))
const fake = (i: number) => `0x${(0x1000 + i).toString(16).padStart(40, '0')}`

let fx: ChainFixture
let rpc: JsonRpcProvider

before(async () => {
  fx = await chainFixture()
  rpc = fx.rpc
  await fx.as(0).addReporter(fx.wallet(1).address, 'proxy 1')
  await fx.as(0).addReporter(fx.wallet(3).address, 'proxy 3 (crash test)')
  await fx.as(0).addReporter(fx.wallet(4).address, 'proxy 4 (gas)')
})
after(async () => {
  await fx?.close()
})

const open = (signer: number, o: Partial<OutboxOptions> = {}) => openOutbox({ dir: tmp(), client: fx.as(signer), pollMs: 25, retryBaseMs: 50, ...o })

/**
 * The tests' generic chain write: a denied summary whose one topic id is a label's hash (`root`). Anchors are
 * not used here: they must form one gap-free sequence per reporter (test/contract/anchors.test.ts).
 */
const write = (label: string, n: number, from: number, to: number) => ({ kind: 'denied' as const, method: 'recordDenied', args: [from, to, [label], [n]] })

async function writtenEvents(fromBlock = 0) {
  const c = fx.as(0)
  if (fromBlock > (await fx.provider.getBlockNumber())) return []
  const logs = await fx.provider.getLogs({ address: c.address, topics: [c.contract.interface.getEvent('DeniedSummary')!.topicHash], fromBlock, toBlock: 'latest' })
  return c.parseLogs(logs).map((e) => ({ reporter: String(e.args[0]), root: String((e.args[3] as string[])[0]), tx: e.log.transactionHash }))
}

describe('outbox: sending', () => {
  test('several intents: local nonces, consecutive, each mined once; status counts them', async () => {
    const box = await open(1, { maxInFlight: 3 })
    try {
      const from = (await fx.provider.getBlockNumber()) + 1
      const startNonce = await fx.provider.getTransactionCount(fx.wallet(1).address, 'pending')
      const roots = Array.from({ length: 8 }, (_, i) => root(`nonces ${i}`))
      const results = await Promise.all(roots.map((r, i) => box.enqueue(write(r, i + 1, 1_700_000_000 + i, 1_700_000_060 + i))))
      assert.ok(results.every((r) => r.durable && !r.deduped && r.id !== ''))
      assert.equal(await box.drain(20_000), true)
      const events = await writtenEvents(from)
      assert.deepEqual(events.map((e) => e.root).sort(), [...roots].sort())
      const nonces = await Promise.all(events.map(async (e) => (await fx.provider.getTransaction(e.tx))!.nonce))
      assert.deepEqual(nonces.sort((a, b) => a - b), Array.from({ length: 8 }, (_, i) => startNonce + i))
      const st = box.status()
      assert.deepEqual([st.pending, st.inFlight, st.confirmed, st.sent, st.failedAttempts, st.nextNonce], [0, 0, 8, 8, 0, startNonce + 8])
      assert.equal(st.address, fx.wallet(1).address)
    } finally {
      await box.close()
    }
  })

  test('dedupeKey: enqueued once, also after it was mined and the outbox reopened', async () => {
    const dir = tmp()
    const from = (await fx.provider.getBlockNumber()) + 1
    let box = await openOutbox({ dir, client: fx.as(1), pollMs: 25 })
    const intent = { ...write(root('dedupe'), 1, 10, 20), dedupeKey: 'denied:42' }
    const a = await box.enqueue(intent)
    const b = await box.enqueue(intent)
    assert.equal(b.deduped, true)
    assert.equal(b.id, a.id)
    assert.equal(await box.drain(10_000), true)
    assert.equal((await box.enqueue(intent)).deduped, true)
    await box.close()
    box = await openOutbox({ dir, client: fx.as(1), pollMs: 25 })
    try {
      assert.equal((await box.enqueue(intent)).deduped, true, 'finished keys survive compaction')
      assert.equal(await box.drain(5_000), true)
      assert.equal((await writtenEvents(from)).length, 1)
    } finally {
      await box.close()
    }
  })

  test('invalid intents are refused without throwing; a second outbox on the same directory is refused', async () => {
    const dir = tmp()
    const box = await openOutbox({ dir, client: fx.as(1), pollMs: 25 })
    try {
      const r = await box.enqueue(write('not a root', 1, 2, 3))
      assert.equal(r.id, '')
      assert.match(r.error!, /cannot encode recordDenied/)
      const r2 = await box.enqueue({ kind: 'anchor', method: 'noSuchMethod', args: [] })
      assert.match(r2.error!, /noSuchMethod/)
      await assert.rejects(openOutbox({ dir, client: fx.as(1) }), /in use by process/)
      await assert.rejects(openOutbox({ dir: tmp(), client: fx.as(1), feeBumpPercent: 5 }), RangeError)
    } finally {
      await box.close()
    }
  })
})

describe('outbox: failures', () => {
  test('a reverted write (reporter not registered) is retried with backoff and goes through once registered', async () => {
    const log = recordingLogger()
    const from = (await fx.provider.getBlockNumber()) + 1
    const box = await open(2, { logger: log, retryBaseMs: 100, retryMaxMs: 200, maxAttempts: 1_000 })
    try {
      await box.enqueue(write(root('late registration'), 1, 10, 20))
      await waitFor(() => box.status().failedAttempts >= 2, 10_000, 'two failed attempts')
      assert.equal((await writtenEvents(from)).length, 0)
      const warn = log.lines.find((l) => l.level === 'warn' && /will retry/.test(l.msg))
      assert.ok(warn, 'a warning per failed attempt')
      assert.match(String(warn.fields?.error), /NotReporter/)
      await fx.as(0).addReporter(fx.wallet(2).address, 'registered later')
      assert.equal(await box.drain(10_000), true)
      const events = await writtenEvents(from)
      assert.deepEqual(
        events.map((e) => [e.reporter, e.root]),
        [[fx.wallet(2).address, root('late registration')]],
      )
    } finally {
      await box.close()
      await fx.as(0).removeReporter(fx.wallet(2).address, 'test done')
    }
  })

  test('a write that always reverts does not block the others: capped attempts, parked with a clear log line, retried after a restart', async () => {
    const log = recordingLogger()
    const parked: string[] = []
    const from = (await fx.provider.getBlockNumber()) + 1
    const box = await open(1, { logger: log, retryBaseMs: 20, maxAttempts: 3, maxInFlight: 1 })
    box.on('parked', (p) => parked.push(p.error))
    try {
      // Array lengths differ: the contract refuses it every time (LengthMismatch).
      await box.enqueue({ kind: 'denied', method: 'recordDenied', args: [10, 20, [root('a'), root('b')], [1]] })
      await box.enqueue(write(root('behind a bad one'), 1, 10, 20))
      assert.equal(await box.drain(10_000), true)
      assert.equal((await writtenEvents(from)).length, 1)
      const st = box.status()
      assert.deepEqual([st.parked, st.failedAttempts, st.confirmed], [1, 3, 1])
      assert.equal(parked.length, 1)
      assert.match(parked[0]!, /LengthMismatch/)
      assert.ok(log.lines.some((l) => l.level === 'error' && /gave up on a denied write after 3 failed attempts; parked/.test(l.msg)))
      // retryParked() requeues it (it fails again here, and is parked again).
      assert.equal(await box.retryParked(), 1)
      await waitFor(() => box.status().parked === 1 && box.status().failedAttempts === 6, 10_000, 'parked again')
      await box.close()
      // Parked writes stay on disk; a restart tries them again (unless told not to).
      const kept = await openOutbox({ dir: box.dir, client: fx.as(1), autoStart: false, retryParkedOnStart: false })
      assert.deepEqual([kept.status().parked, kept.status().pending], [1, 0])
      await kept.close()
      const retried = await openOutbox({ dir: box.dir, client: fx.as(1), autoStart: false })
      assert.deepEqual([retried.status().parked, retried.status().pending], [0, 1])
      await retried.close()
    } finally {
      await box.close()
    }
  })

  test('a torn last record (a crash mid-write) is skipped on reopening', async () => {
    const dir = tmp()
    const box = await openOutbox({ dir, client: fx.as(1), autoStart: false })
    await box.enqueue(write(root('torn'), 1, 10, 20))
    await box.close()
    appendFileSync(join(dir, 'outbox.jsonl'), '{"t":"intent","id":"9","kind":"anch')
    const log = recordingLogger()
    const from = (await fx.provider.getBlockNumber()) + 1
    const again = await openOutbox({ dir, client: fx.as(1), pollMs: 25, logger: log })
    try {
      assert.ok(log.lines.some((l) => /skipped unreadable records/.test(l.msg)))
      assert.equal(await again.drain(10_000), true)
      assert.deepEqual(
        (await writtenEvents(from)).map((e) => e.root),
        [root('torn')],
      )
    } finally {
      await again.close()
    }
  })
})

describe('outbox: stuck transactions', () => {
  test('a transaction left pending is replaced with the same nonce and a higher fee; the replacement is mined, once', async () => {
    const from = (await fx.provider.getBlockNumber()) + 1
    const sent: { hash: string; nonce: number; replacement: boolean }[] = []
    const confirmed: ConfirmedWrite[] = []
    await rpc.send('evm_setAutomine', [false])
    const box = await open(1, { bumpAfterMs: 300, feeBumpPercent: 20 })
    box.on('sent', (s) => sent.push(s))
    box.on('confirmed', (c) => confirmed.push(c))
    try {
      await box.enqueue(write(root('stuck'), 1, 10, 20))
      await waitFor(() => sent.filter((s) => s.replacement).length >= 2, 10_000, 'two replacements')
      await rpc.send('evm_mine', [])
      assert.equal(await box.drain(10_000), true)
      const events = await writtenEvents(from)
      assert.equal(events.length, 1, 'only one of the same-nonce transactions can be mined')
      const mined = events[0]!.tx
      assert.equal(new Set(sent.map((s) => s.nonce)).size, 1, 'every attempt used one nonce')
      assert.notEqual(mined, sent[0]!.hash, 'the original was replaced')
      assert.ok(sent.slice(1).some((s) => s.hash === mined), 'a replacement was mined')
      const [orig, repl] = await Promise.all([sent[0]!.hash, mined].map((h) => fx.provider.getTransaction(h)))
      assert.equal(orig, null, 'the replaced transaction is gone')
      const first = readFileSync(join(box.dir, 'outbox.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { t: string; hash?: string; maxFeePerGas?: string; maxPriorityFeePerGas?: string })
        .find((r) => r.t === 'attempt' && r.hash === sent[0]!.hash)
      // The attempt records are compacted away once done; the mined one carries the bumped fees anyway.
      if (first) assert.ok(repl!.maxPriorityFeePerGas! * 100n >= BigInt(first.maxPriorityFeePerGas!) * 110n)
      assert.ok(repl!.maxPriorityFeePerGas! >= 1_200_000_000n, `priority fee was bumped (≥ 1 gwei × 1.2): ${repl!.maxPriorityFeePerGas}`)
      assert.equal(confirmed.length, 1)
      assert.equal(confirmed[0]!.hash, mined)
      assert.ok(confirmed[0]!.attempts >= 3)
      assert.ok(box.status().replaced >= 2)
    } finally {
      await rpc.send('evm_setAutomine', [true])
      await box.close()
    }
  })
})

describe('outbox: crash and restart', () => {
  /** Runs a child process that opens the outbox in `dir`, enqueues `n` writes and reports progress on stdout. */
  function child(dir: string, labels: string[]): { lines: string[]; done: Promise<number | null>; kill(): void } {
    const outbox = new URL('../../../src/lib/chain/outbox.ts', import.meta.url).pathname
    const client = new URL('../../../src/lib/chain/client.ts', import.meta.url).pathname
    const code = `
      import { Wallet, keccak256, toUtf8Bytes } from 'ethers'
      import { openOutbox } from ${JSON.stringify(outbox)}
      import { connect, FlyTrapClient } from ${JSON.stringify(client)}
      const { provider } = await connect(${JSON.stringify(fx.rpcUrl)})
      const c = new FlyTrapClient(${JSON.stringify(fx.address)}, new Wallet(${JSON.stringify(ANVIL_DEV_KEYS[3])}, provider))
      const box = await openOutbox({ dir: ${JSON.stringify(dir)}, client: c, pollMs: 20, maxInFlight: 3 })
      box.on('sent', (s) => process.stdout.write('sent ' + s.nonce + '\\n'))
      const labels = ${JSON.stringify(labels)}
      await Promise.all(labels.map((l, i) => box.enqueue({ kind: 'denied', method: 'recordDenied', args: [100, 200, [keccak256(toUtf8Bytes(l))], [i + 1]] })))
      process.stdout.write('durable\\n')
      setInterval(() => {}, 1000)
    `
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: new URL('../../..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'pipe'] })
    const lines: string[] = []
    let buf = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      const parts = buf.split('\n')
      buf = parts.pop()!
      lines.push(...parts)
    })
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const done = new Promise<number | null>((res) => p.on('close', (code) => {
      if (code !== null && code !== 0) console.error(err)
      res(code)
    }))
    return { lines, done, kill: () => p.kill('SIGKILL') }
  }

  async function reopenAndCount(dir: string, labels: string[], from: number): Promise<Map<string, number>> {
    const box: Outbox = await openOutbox({ dir, client: fx.as(3), pollMs: 25 })
    try {
      assert.equal(await box.drain(30_000), true, JSON.stringify(box.status()))
    } finally {
      await box.close()
    }
    const counts = new Map<string, number>(labels.map((l) => [root(l), 0]))
    for (const e of await writtenEvents(from)) if (counts.has(e.root)) counts.set(e.root, counts.get(e.root)! + 1)
    return counts
  }

  test('kill -9 while transactions are in flight: after a restart every intent is on chain exactly once', async () => {
    const dir = tmp()
    const labels = Array.from({ length: 12 }, (_, i) => `crash in flight ${i}`)
    const from = (await fx.provider.getBlockNumber()) + 1
    await rpc.send('evm_setAutomine', [false]) // the first transactions stay pending in the pool
    try {
      const c = child(dir, labels)
      await waitFor(() => c.lines.includes('durable') && c.lines.filter((l) => l.startsWith('sent')).length >= 3, 30_000, 'the child to send three transactions')
      c.kill()
      await c.done
    } finally {
      await rpc.send('evm_setAutomine', [true])
    }
    await rpc.send('evm_mine', []) // the killed process's transactions are mined now
    const counts = await reopenAndCount(dir, labels, from)
    assert.deepEqual([...counts.values()], labels.map(() => 1), 'each intent exactly once')
  })

  test('kill -9 right after the intents were acknowledged: none is lost, none doubled', async () => {
    const dir = tmp()
    const labels = Array.from({ length: 20 }, (_, i) => `crash after enqueue ${i}`)
    const from = (await fx.provider.getBlockNumber()) + 1
    const c = child(dir, labels)
    await waitFor(() => c.lines.includes('durable'), 30_000, 'the child to enqueue')
    c.kill()
    await c.done
    const counts = await reopenAndCount(dir, labels, from)
    assert.deepEqual([...counts.values()], labels.map(() => 1), 'each intent exactly once')
  })
})

describe('outbox: gas of the reporter writes', () => {
  test('measured per write and printed; no worse than the 2020 prototype', async () => {
    const confirmed: ConfirmedWrite[] = []
    const box = await open(4, { maxInFlight: 1 })
    box.on('confirmed', (c) => confirmed.push(c))
    const subjects = (n: number) => Array.from({ length: n }, (_, i) => zeroPadValue(fake(i), 32))
    const writes: [string, Parameters<Outbox['enqueue']>[0]][] = [
      ['anchor', { kind: 'anchor', method: 'anchor', args: [1_700_000_000, 1_700_001_800, 1, 1234, root('gas'), root('index'), '0x' + '00'.repeat(32), root('chain')] }],
      ['recordSensitive (commitment, 10 + 10 addresses)', { kind: 'sensitive', method: 'recordSensitive', args: [root('sensitive'), 1_700_000_000, 1_700_001_800, 10, 70, 10, 90, root('members')] }],
      ['recordSensitive (commitment, 1 + 1 addresses)', { kind: 'sensitive', method: 'recordSensitive', args: [root('sensitive'), 1_700_000_000, 1_700_001_800, 1, 3, 1, 4, root('members')] }],
      ['recordDenied (10 topics)', { kind: 'denied', method: 'recordDenied', args: [1_700_000_000, 1_700_001_800, Array.from({ length: 10 }, (_, i) => root(`t${i}`)), Array(10).fill(5)] }],
      ['recordBans (1 subject)', { kind: 'bans', method: 'recordBans', args: [subjects(1), [2e9], 'threshold'] }],
      ['recordBans (10 subjects)', { kind: 'bans', method: 'recordBans', args: [subjects(10), Array(10).fill(2e9), 'threshold'] }],
    ]
    try {
      for (const [, w] of writes) await box.enqueue(w)
      assert.equal(await box.drain(20_000), true)
    } finally {
      await box.close()
    }
    const gas = new Map(writes.map(([label], i) => [label, Number(confirmed[i]!.gasUsed)]))
    gas.set('recordBans, per subject (10 per tx)', Math.round(gas.get('recordBans (10 subjects)')! / 10))
    const proto: Record<string, number> = { 'recordSensitive (commitment, 10 + 10 addresses)': PROTOTYPE_2020.sensitive, 'recordBans, per subject (10 per tx)': PROTOTYPE_2020.ban, 'recordBans (1 subject)': PROTOTYPE_2020.ban }
    const lines = ['| reporter write (through the outbox) | gas | 2020 prototype |', '|---|---:|---:|']
    for (const [label, g] of gas) lines.push(`| ${label} | ${g.toLocaleString('en')} | ${proto[label]?.toLocaleString('en') ?? ''} |`)
    console.log(`\n${lines.join('\n')}\n`)
    assert.ok(gas.get('recordSensitive (commitment, 10 + 10 addresses)')! < PROTOTYPE_2020.sensitive)
    assert.ok(gas.get('recordBans, per subject (10 per tx)')! < PROTOTYPE_2020.ban)
    assert.ok(gas.get('recordBans (1 subject)')! < PROTOTYPE_2020.ban)
    assert.ok(gas.get('anchor')! > 21_000 && gas.get('anchor')! < 60_000)
  })
})
