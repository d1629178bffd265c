/**
 * `audit forget` leaves no trace of the subject anywhere in the data directory: against a real anvil, bans
 * naming an address and an IP go through the real outbox (intents with ABI arguments, signed raw
 * transactions); the reporting state, a log file and a cluster worker's journal name them too. A write not
 * mined yet is left as it is and reported; once mined, a second forget removes it. Afterwards `grep -ri`
 * over the whole directory finds neither the address (any case, bare or padded) nor the IP.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { zeroPadValue, type JsonRpcProvider } from 'ethers'
import type { EntryInput } from '../../../src/lib/audit/entry.js'
import { forgetSubject } from '../../../src/lib/audit/forget.js'
import { openJournal } from '../../../src/lib/audit/journal.js'
import { verifyJournal } from '../../../src/lib/audit/verify.js'
import { openOutbox } from '../../../src/lib/chain/outbox.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'
import { waitFor } from '../../helpers/wait.js'

const ALICE = '0x90F79bf6EB2c4f870365E785982E1f101E93b906'
const ALICE_IP = '203.0.113.7'
const BOB = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65'
const padded = (a: string) => zeroPadValue(a.toLowerCase(), 32)

/** `grep -rilaF needle dir`: the files that contain it, in any case. */
function grep(needle: string, dir: string): string[] {
  const r = spawnSync('grep', ['-rilaF', needle, dir], { encoding: 'utf8' })
  assert.ok(r.status === 0 || r.status === 1, r.stderr)
  return r.stdout.split('\n').filter(Boolean)
}

describe('audit forget: the whole data directory, outbox included (anvil)', () => {
  let fx: ChainFixture
  let rpc: JsonRpcProvider
  let dataDir: string
  before(async () => {
    fx = await chainFixture()
    rpc = fx.rpc
    await fx.as(0).addReporter(fx.wallet(1).address, 'proxy 1')
    dataDir = mkdtempSync(join(tmpdir(), 'flytrap-forget-dir-'))
  })
  after(async () => {
    await rpc?.send('evm_setAutomine', [true]).catch(() => undefined)
    await fx?.close()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  test('journals, outbox (mined and unmined writes), reporting state, logs, worker journals', async () => {
    const traffic = (i: number): EntryInput =>
      i % 2 === 0
        ? { kind: 'ban', outcome: 'deny', reason: 'threshold', address: ALICE, ip: ALICE_IP, clientId: 'alice-1', subject: padded(ALICE), until: 1 }
        : { kind: 'connect', outcome: 'allow', reason: 'signature', address: BOB, ip: '198.51.100.1', clientId: 'bob' }
    for (const root of [dataDir, join(dataDir, 'worker-1')]) {
      const j = await openJournal({ dataDir: root, periodMs: 2_000, flushIntervalMs: 1 })
      for (let i = 0; i < 4; i++) await j.append(traffic(i))
      await j.close()
    }
    // The outbox, as the proxy's ban reporter uses it: one ban mined, one signed and broadcast but not mined.
    const until_ = Math.floor(Date.now() / 1000) + 3600
    let box = await openOutbox({ dir: join(dataDir, 'outbox'), client: fx.as(1), pollMs: 25 })
    const mined = await box.enqueue({ kind: 'bans', method: 'recordBans', args: [[padded(ALICE)], [until_], `flood from ${ALICE_IP}`] })
    assert.equal(mined.durable, true)
    assert.equal(await box.drain(20_000), true)
    await rpc.send('evm_setAutomine', [false])
    const pending = await box.enqueue({ kind: 'bans', method: 'recordBans', args: [[padded(ALICE)], [until_], 'threshold'] })
    const outboxText = () => readFileSync(join(dataDir, 'outbox', 'outbox.jsonl'), 'utf8')
    await waitFor(() => outboxText().split('\n').some((l) => l.includes('"attempt"') && l.includes(`"id":"${pending.id}"`)), 20_000, 'the second ban signed and broadcast')
    await box.close()
    assert.match(outboxText(), /"raw":"0x/, 'signed raw transactions are in the outbox')
    assert.ok(grep(ALICE.slice(2), join(dataDir, 'outbox')).length > 0)
    // The open period's reporting state and a log file next to it.
    mkdirSync(join(dataDir, 'reporting'))
    writeFileSync(join(dataDir, 'reporting', 'reporting.json'), JSON.stringify({ version: 1, periodMs: 2000, period: 1, decisions: 3, sensitive: { '0xabc': { pub: { [ALICE]: 2, [BOB]: 1 }, recv: {}, omitted: 0 } }, droppedTopics: [], denied: {}, deniedTotal: 0, deniedWindowMs: 0, deniedFlushes: 0 }) + '\n')
    writeFileSync(join(dataDir, 'proxy.log'), `{"level":"warn","msg":"banned","ip":"${ALICE_IP}","address":"${ALICE.toLowerCase()}"}\n{"level":"info","msg":"connected","address":"${BOB}"}\n`)

    const receipt = async (hash: string) => {
      const r = await fx.provider.getTransactionReceipt(hash)
      return r ? { status: r.status } : null
    }
    const opts = { dataDir, signer: fx.wallet(1), basis: 'GDPR art. 17', requestedBy: 'data subject', receipt }
    const first = await forgetSubject({ ...opts, subject: ALICE })
    assert.deepEqual(first.journals.map((j) => [j.dir, j.redacted]), [['.', 2], ['worker-1', 2]])
    assert.deepEqual(first.outboxes.map((o) => [o.dir, o.removed, o.unsent.map((u) => [u.id, u.state])]), [['outbox', [mined.id], [[pending.id, 'signed, not mined yet']]]])
    assert.ok(first.notScrubbed.some((n) => n.includes(`chain write ${pending.id} (recordBans) names the subject and is signed, not mined yet`)))
    assert.ok(first.notScrubbed.some((n) => /the chain: 1 transaction/.test(n)))
    assert.deepEqual(first.files.sort(), ['proxy.log', join('reporting', 'reporting.json')])
    assert.deepEqual(grep(ALICE.slice(2), dataDir), [join(dataDir, 'outbox', 'outbox.jsonl')], 'only the write still to be sent names her')

    // Mined now: the next forget removes it too.
    await rpc.send('evm_setAutomine', [true])
    await rpc.send('evm_mine', [])
    const second = await forgetSubject({ ...opts, subject: ALICE })
    assert.deepEqual(second.outboxes[0]!.removed, [pending.id])
    assert.deepEqual(second.outboxes[0]!.unsent, [])
    const third = await forgetSubject({ ...opts, subject: ALICE_IP })
    assert.deepEqual(third.journals.map((j) => j.redacted), [0, 0], 'her entries were already redacted')

    for (const needle of [ALICE, ALICE.toLowerCase(), ALICE.slice(2), ALICE_IP]) assert.deepEqual(grep(needle, dataDir), [], `grep -ri ${needle}`)
    assert.ok(grep(BOB, dataDir).length > 0, 'Bob is still there')
    const state = JSON.parse(readFileSync(join(dataDir, 'reporting', 'reporting.json'), 'utf8')) as { sensitive: Record<string, { pub: Record<string, number> }> }
    assert.deepEqual(state.sensitive['0xabc']!.pub, { [BOB]: 1 }, 'her counts left the open period; the file still loads')

    for (const root of [dataDir, join(dataDir, 'worker-1')]) {
      const rep = await verifyJournal({ dataDir: root })
      assert.equal(rep.ok, true, rep.firstProblem ?? '')
    }
    // The scrubbed outbox opens and has nothing left to send.
    box = await openOutbox({ dir: join(dataDir, 'outbox'), client: fx.as(1), pollMs: 25 })
    assert.deepEqual([box.status().pending, box.status().inFlight, box.status().parked], [0, 0, 0])
    const again = await box.enqueue({ kind: 'bans', method: 'recordBans', args: [[padded(BOB)], [until_], 'threshold'] })
    assert.equal(Number(again.id) > Number(pending.id), true, 'intent ids do not go back')
    assert.equal(await box.drain(20_000), true)
    await box.close()
  })
})
