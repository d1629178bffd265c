/**
 * The independent Python checker (scripts/check-evidence.py, written from docs/evidence.md alone) against a live
 * chain (issue 11, item 2): real anvil, mosquitto and `flytrap proxy start` (test/helpers/evidence.ts), bundles
 * written by `flytrap audit export`, then `python3 scripts/check-evidence.py <bundle> --rpc <anvil>`: exit 0 for
 * the whole journal, a topic and a client; exit 7 for tampered anchor references (ref.time too), policy events, a summary's count and time, a
 * member record's count and a grant pointing at another client's event,
 * naming the same record as `flytrap audit check` where both run; and after `audit forget`, a bundle with redactions and its anchored
 * erasure record. On CI a missing python3/Cryptodome fails; elsewhere the test is skipped. Needs dist/.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hexlify, randomBytes } from 'ethers'
import type { CheckResult } from '../../src/lib/audit/evidence/check.js'
import type { EvidenceBundle } from '../../src/lib/audit/evidence/format.js'
import { tempCwd } from '../helpers/cli.js'
import { evidenceRun, NURSE, ROGUE, type EvidenceRun } from '../helpers/evidence.js'
import { ON_CI, pythonMissing, runPython, type PyCheck } from '../helpers/python.js'

const missing = pythonMissing()
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

if (missing) {
  test('evidence bundles with the independent Python checker against a live chain', { skip: ON_CI ? false : missing }, () => assert.fail(missing))
} else {
  describe('evidence bundles with the independent Python checker against a live chain (anvil, mosquitto, proxy)', () => {
    let run: EvidenceRun
    const bundles: Record<string, EvidenceBundle> = {}

    /** The Python checker (and, with `withTs`, `flytrap audit check` too) in a fresh directory holding only the bundle, with only --rpc. */
    async function check(bundle: EvidenceBundle, withTs = false): Promise<{ py: PyCheck; ts: CheckResult | null; tsCode: number | null }> {
      const dir = tempCwd('flytrap-pyregulator-')
      try {
        writeFileSync(join(dir, 'bundle.json'), JSON.stringify(bundle))
        const [py, ts] = await Promise.all([runPython(join(dir, 'bundle.json'), ['--rpc', run.chain.rpcUrl]), withTs ? run.flytrap(['audit', 'check', 'bundle.json', '--json', '--rpc', run.chain.rpcUrl], dir) : null])
        return { py, ts: ts ? ts.json<CheckResult>() : null, tsCode: ts ? ts.code : null }
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }

    before(async () => {
      run = await evidenceRun()
      for (const [name, extra] of [['whole', []], ['topic', ['--topic', 'ward/vitals']], ['client', ['--client', NURSE]]] as const) bundles[name] = (await run.exportBundle(`${name}.json`, [...extra])).bundle
    })

    after(async () => {
      await run?.close()
    })

    test('python3 check-evidence.py --rpc: exit 0 for the whole journal, a topic and a client, every chain step checked', async () => {
      const runs = await Promise.all(Object.entries(bundles).map(async ([name, b]) => ({ name, ...(await check(b, name === 'topic')) })))
      for (const { name, py, ts } of runs) {
        assert.equal(py.code, 0, `${name}: ${py.stderr}`)
        assert.equal(py.result!.ok, true)
        assert.equal(py.result!.offline, false)
        for (const [k, st] of Object.entries(py.result!.steps)) assert.equal(st.status, 'ok', `${name}: step ${k}`)
        for (const k of ['anchors', 'policy', 'summaries']) assert.ok(py.result!.steps[k]!.checked > 0, `${name}: ${k} were checked`)
        if (name === 'whole') for (const k of ['members', 'grants']) assert.ok(py.result!.steps[k]!.checked > 0, `${name}: ${k} were checked`)
        if (ts) assert.deepEqual(py.result!.inScope, ts.inScope, `${name}: both checkers find the same entries in scope`)
      }
    })

    test('tampered anchor references and policy events: exit 7 from Python, naming the record audit check names', async () => {
      const { whole, topic, client } = bundles as Record<'whole' | 'topic' | 'client', EvidenceBundle>
      const granted = (b: EvidenceBundle) => b.policy.find((e) => e.event === 'Granted')!
      /** A cited Granted no grant points at (a grant replaced by a later one) left out, the grants' indexes moved to match: only the chain shows it is missing. */
      const leaveOut = (bundle: EvidenceBundle) => {
        const b = clone(bundle)
        const used = new Set(b.grants.map((g) => g.policy))
        const gone = b.policy.findIndex((e, i) => e.event === 'Granted' && !used.has(i))
        if (gone < 0) throw new Error('the run has no Granted that no access relies on')
        b.policy.splice(gone, 1)
        for (const g of b.grants) if (g.policy !== null && g.policy > gone) g.policy -= 1
        return b
      }
      /** The first access whose grant is a Granted, made to point at a Granted of another client (the bundle is not re-signed: the grant fails first). */
      const otherClientsGrant = (bundle: EvidenceBundle) => {
        const b = clone(bundle)
        const entries = new Map(b.periods.flatMap((p) => p.entries).flatMap((d) => ('entry' in d ? [[d.seq, d.entry as { address?: string }] as const] : [])))
        for (const g of b.grants) {
          const ev = g.policy === null ? undefined : b.policy[g.policy]
          const who = entries.get(g.seq)?.address?.toLowerCase()
          if (ev?.event !== 'Granted' || !who) continue
          const other = b.policy.findIndex((e) => e.event === 'Granted' && e.args.client !== who)
          if (other < 0) continue
          g.policy = other
          return b
        }
        throw new Error('the run has no access granted by a Granted next to a Granted of another client')
      }
      // `ts`: also run `flytrap audit check` and require the same record (the vectors compare the offline records).
      const cases: { name: string; bundle: EvidenceBundle; record: RegExp; ts?: true }[] = [
        { ts: true, name: "a grant pointing at the client's superseded Granted (a later grant replaced it)", bundle: (() => { const b = clone(client); const g = b.grants.find((x) => x.policy !== null)!; g.policy = b.policy.findIndex((e) => e.event === 'Granted' && e.args.reason === 'nurse station'); return b })(), record: /^grant of entry seq \d+$/ },
        { ts: true, name: "an anchor's tx hash", bundle: (() => { const b = clone(whole); b.periods[0]!.anchor.ref.txHash = hexlify(randomBytes(32)); return b })(), record: /^anchor of .* \(tx 0x[0-9a-f]{64}, log \d+\)$/ },
        { name: "an anchor's block hash", bundle: (() => { const b = clone(topic); b.periods[1]!.anchor.ref.blockHash = hexlify(randomBytes(32)); return b })(), record: /^anchor of / },
        { name: "an anchor's log index", bundle: (() => { const b = clone(client); b.periods[0]!.anchor.ref.logIndex += 3; return b })(), record: /^anchor of / },
        { ts: true, name: "an anchor's block time (ref.time)", bundle: (() => { const b = clone(topic); b.periods[0]!.anchor.ref.time -= 1; return b })(), record: /^anchor of .* \(tx 0x[0-9a-f]{64}, log \d+\)$/ },
        { ts: true, name: "a summary's block time (ref.time)", bundle: (() => { const b = clone(whole); b.summaries[0]!.ref.time += 1; return b })(), record: /^summary \w+ \(tx / },
        { name: "an anchor's block number", bundle: (() => { const b = clone(whole); b.periods[1]!.anchor.ref.blockNumber -= 1; return b })(), record: /^anchor of / },
        { ts: true, name: "a policy event's reason", bundle: (() => { const b = clone(topic); granted(b).args.reason = 'emergency override'; return b })(), record: /^policy event Granted \(tx / },
        { name: 'a forged policy event (not on chain)', bundle: (() => { const b = clone(topic); const g = clone(granted(b)); g.ref.txHash = hexlify(randomBytes(32)); g.args.client = ROGUE.toLowerCase(); b.policy.push(g); return b })(), record: /^policy event Granted \(tx / },
        { ts: true, name: 'a policy event left out', bundle: leaveOut(client), record: /^policy event Granted \(tx / },
        { ts: true, name: "a summary's counts", bundle: (() => { const b = clone(whole); const s = b.summaries.find((e) => e.event === 'SensitiveReport')!; s.args.received = String(Number(s.args.received) + 1); return b })(), record: /^summary SensitiveReport \(tx / },
        { ts: true, name: "a member record's count", bundle: (() => { const b = clone(whole); b.members[0]!.record.count += 1; return b })(), record: /^member record (publisher|receiver) 0x[0-9a-f]{40} of summary \d+$/ },
        { ts: true, name: "a grant pointing at another client's event", bundle: otherClientsGrant(whole), record: /^grant of entry seq \d+$/ },
      ]
      for (let i = 0; i < cases.length; i += 4) {
        await Promise.all(
          cases.slice(i, i + 4).map(async (c) => {
            const { py, ts, tsCode } = await check(c.bundle, c.ts)
            assert.equal(py.code, 7, `${c.name}: python exit ${py.code}\n${py.stderr}`)
            assert.match(py.result!.firstFailure!.record, c.record, `${c.name}: ${py.result!.firstFailure!.message}`)
            assert.ok(py.stderr.includes(py.result!.firstFailure!.record), `${c.name}: stderr names the record`)
            if (c.ts) {
              assert.equal(tsCode, 7, `${c.name}: audit check`)
              assert.equal(py.result!.firstFailure!.record, ts?.firstFailure?.record, `${c.name}: both checkers name the same record`)
            }
          }),
        )
      }
    })

    test('after audit forget: redactions and their anchored erasure record check with --rpc; a forged erasure anchor is exit 7', async () => {
      await run.forget(ROGUE)
      const { bundle } = await run.exportBundle('redacted.json', [])
      assert.ok(bundle.erasures.length > 0 && bundle.erasures[0]!.anchor !== null, 'the erasure record is anchored')
      const { py } = await check(bundle)
      assert.equal(py.code, 0, py.stderr)
      assert.ok(py.result!.redacted.length > 0, 'redactions are reported')
      const bad = clone(bundle)
      bad.erasures[0]!.anchor!.ref.txHash = hexlify(randomBytes(32))
      const t = await check(bad)
      assert.equal(t.py.code, 7, t.py.stderr)
      assert.match(t.py.result!.firstFailure!.record, /^anchor of /)
    })
  })
}
