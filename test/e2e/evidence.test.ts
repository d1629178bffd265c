/**
 * Evidence bundles end to end (issue 11, items 1–2): real anvil, real mosquitto and `flytrap proxy start` with a
 * journal, a 2 s anchoring period and a registered reporter. MQTT.js clients drive grants, publishes, subscribes,
 * a refused access and traffic on a sensitive topic; once the periods are anchored, `flytrap audit export` writes
 * bundles (whole journal, one topic, one client) and `flytrap audit check` verifies them as a regulator would:
 * as a child process in a fresh directory holding only the bundle, with only --rpc. Then every part of a bundle
 * is tampered with in turn and the check must fail with exit 7 naming that record.
 * Needs dist/ (npm run build). The tests in this file depend on each other and run in order.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getBytes, hexlify, JsonRpcProvider, randomBytes, Wallet } from 'ethers'
import { canonicalJson } from '../../src/lib/audit/entry.js'
import { checkBundle, type CheckResult } from '../../src/lib/audit/evidence/check.js'
import type { DisclosedEntry, EvidenceBundle } from '../../src/lib/audit/evidence/format.js'
import { bundleDigest } from '../../src/lib/audit/evidence/signature.js'
import { tempCwd, type CliRun } from '../helpers/cli.js'
import { evidenceRun, K, NURSE, PERIOD_MS, REPORTER, type EvidenceRun } from '../helpers/evidence.js'

const oneLine = (s: string) => s.replace(/\s*\n\s*›\s*/g, ' ')

describe('evidence bundles end to end (proxy CLI, anvil, mosquitto)', () => {
  let run: EvidenceRun
  let chain: EvidenceRun['chain']

  /** `audit check` in a fresh directory that holds only the bundle: no .flytrap/, no data directory, only --rpc. */
  async function check(bundle: unknown, extra: string[] = ['--rpc', chain.rpcUrl]): Promise<{ run: CliRun; result: CheckResult }> {
    const dir = tempCwd('flytrap-regulator-')
    try {
      writeFileSync(join(dir, 'bundle.json'), typeof bundle === 'string' ? bundle : JSON.stringify(bundle))
      const r = await run.flytrap(['audit', 'check', 'bundle.json', '--json', ...extra], dir)
      return { run: r, result: r.json<CheckResult>() }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  before(async () => {
    run = await evidenceRun()
    chain = run.chain
  })

  after(async () => {
    await run?.close()
  })

  let whole: EvidenceBundle
  let wholeText: string
  let byTopic: EvidenceBundle
  let byClient: EvidenceBundle

  test('traffic through the proxy is anchored; audit export writes signed bundles for the whole journal, a topic and a client', async () => {
    const exp = async (name: string, extra: string[]) => {
      const { bundle, text, result } = await run.exportBundle(name, extra)
      assert.equal(result.version, 1)
      assert.ok(result.notes.some((n) => n.includes('rounded out to whole anchored periods')))
      assert.equal(Date.parse(result.scope.from) % PERIOD_MS, 0, 'the scope starts on a period boundary')
      return { bundle, text }
    }
    ;({ bundle: whole, text: wholeText } = await exp('whole.json', []))
    byTopic = (await exp('topic.json', ['--topic', 'ward/vitals'])).bundle
    byClient = (await exp('client.json', ['--client', NURSE])).bundle
    assert.equal(whole.signer, REPORTER)
    const all = whole.periods.flatMap((p) => p.entries) as DisclosedEntry[]
    assert.ok(all.some((e) => e.entry.kind === 'subscribe' && e.entry.outcome === 'deny' && e.entry.clientId === 'rogue-7'), 'the refused subscribe is in the bundle')
    assert.ok(all.some((e) => e.entry.kind === 'deliver' && e.entry.sensitive), 'a sensitive delivery is in the bundle')
    assert.ok(whole.policy.some((e) => e.event === 'Granted' && e.args.reason === 'nurse station'))
    assert.ok(whole.summaries.some((e) => e.event === 'SensitiveReport'))
    // The topic bundle cites that topic's policy and none of the other's; the client bundle only its grants.
    assert.ok(byTopic.policy.some((e) => e.event === 'Granted' && e.args.reason === 'bedside monitor 7'))
    assert.ok(!byTopic.policy.some((e) => e.args.reason === 'valve controller'))
    assert.ok(byClient.policy.some((e) => e.event === 'Granted'))
    assert.ok(byClient.policy.every((e) => e.event !== 'Granted' || e.args.client === NURSE.toLowerCase()))
  })

  test('audit check passes each bundle in a fresh directory with only the bundle and --rpc; --offline says what it did not check', async () => {
    for (const [name, b] of [['whole', whole], ['topic', byTopic], ['client', byClient]] as const) {
      const { run, result } = await check(b, ['--rpc', chain.rpcUrl, '--contract', chain.address])
      assert.equal(run.code, 0, `${name}: ${run.stderr}`)
      assert.equal(result.ok, true)
      assert.equal(result.offline, false)
      for (const [k, st] of Object.entries(result.steps)) assert.equal(st.status, 'ok', `${name}: step ${k}`)
      assert.ok(result.inScope.length > 0, `${name}: entries in scope`)
    }
    const topicSeqs = (byTopic.periods.flatMap((p) => p.entries) as DisclosedEntry[]).filter((e) => e.entry.topic === 'plant/valve')
    assert.equal(topicSeqs.length, 0, 'the topic bundle discloses no entry of the other topic')
    const { run, result } = await check(whole, ['--offline'])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(result.offline, true)
    assert.equal(result.steps.anchors.status, 'not-checked')
    assert.ok(result.warnings.some((w) => w.includes('NOT checked against the chain')))
  })

  test('every part of a bundle tampered with in turn: exit 7 naming that record', async () => {
    const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T
    const firstWith = (b: EvidenceBundle, pred: (e: DisclosedEntry) => boolean) => {
      for (const p of b.periods) for (const e of p.entries) if (!('redacted' in e) && pred(e)) return e
      throw new Error('no such entry')
    }
    const stranger = Wallet.createRandom()
    const resign = async (b: EvidenceBundle, w: Wallet) => ({ ...b, signer: w.address, signature: await w.signMessage(getBytes(bundleDigest({ ...b, signer: w.address }))) })
    const cases: { name: string; bundle: () => Promise<EvidenceBundle> | EvidenceBundle; record: RegExp; cli?: true }[] = [
      { cli: true, name: 'an entry field', bundle: () => { const b = clone(byTopic); const e = firstWith(b, (x) => x.entry.kind === 'publish'); e.entry.clientId = 'someone-else'; return b }, record: /^entry seq \d+ .*altered/ },
      { name: 'an entry field, re-signed by the reporter key (the operator)', bundle: () => { const b = clone(whole); firstWith(b, (x) => x.entry.outcome === 'deny').entry.outcome = 'allow'; return resign(b, new Wallet(K[5]!)) }, record: /^entry seq \d+ .*altered/ },
      { cli: true, name: 'a salt', bundle: () => { const b = clone(whole); firstWith(b, () => true).salt = hexlify(randomBytes(32)); return b }, record: /^entry seq \d+ / },
      { cli: true, name: 'a proof sibling', bundle: () => { const b = clone(byClient); const e = firstWith(b, (x) => x.siblings.length > 0); e.siblings[0] = hexlify(randomBytes(32)); return b }, record: /^entry seq \d+ / },
      { cli: true, name: "an anchor's tx hash", bundle: () => { const b = clone(whole); b.periods[0]!.anchor.ref.txHash = hexlify(randomBytes(32)); return b }, record: /^anchor of .*not on this chain/ },
      { cli: true, name: "an anchor's block hash", bundle: () => { const b = clone(whole); b.periods[0]!.anchor.ref.blockHash = hexlify(randomBytes(32)); return b }, record: /^anchor of .*hash/ },
      { cli: true, name: "an anchor's log index", bundle: () => { const b = clone(whole); b.periods[0]!.anchor.ref.logIndex += 7; return b }, record: /^anchor of .*no log at index/ },
      { name: "an anchor's root", bundle: () => { const b = clone(whole); const p = b.periods.find((x) => x.entries.length > 0)!; p.anchor.root = hexlify(randomBytes(32)); return b }, record: /^entry seq \d+ / },
      { cli: true, name: 'an in-scope entry dropped (topic)', bundle: () => { const b = clone(byTopic); const p = b.periods.find((x) => x.entries.length > 1)!; p.entries.splice(1, 1); return b }, record: /^entry seq \d+ .*left out/ },
      { name: 'an in-scope entry dropped (client)', bundle: () => { const b = clone(byClient); const p = b.periods.find((x) => x.entries.length > 0)!; p.entries.splice(0, 1); return b }, record: /^entry seq \d+ .*left out/ },
      { name: 'an entry dropped (whole journal)', bundle: () => { const b = clone(whole); const p = b.periods.find((x) => x.entries.length > 1)!; p.entries.pop(); return b }, record: /^entry seq \d+ .*left out/ },
      { cli: true, name: "a policy event's args", bundle: () => { const b = clone(byTopic); b.policy.find((e) => e.event === 'Granted')!.args.reason = 'emergency override'; return b }, record: /^policy event Granted .*arguments differ/ },
      { cli: true, name: 'a policy event that is not on chain', bundle: () => { const b = clone(byTopic); const g = clone(b.policy.find((e) => e.event === 'Granted')!); g.ref.txHash = hexlify(randomBytes(32)); b.policy.push(g); return b }, record: /^policy event Granted .*not on this chain/ },
      { name: 'a policy event left out', bundle: () => { const b = clone(byTopic); b.policy = b.policy.filter((e) => e.event !== 'Granted' || e.args.reason !== 'nurse station'); return b }, record: /^policy event Granted .*leaves it out/ },
      { name: "a summary's counts", bundle: () => { const b = clone(whole); const s = b.summaries.find((e) => e.event === 'SensitiveReport')!; s.args.received = (s.args.received as string[]).map(() => '0'); return b }, record: /^summary SensitiveReport .*arguments differ/ },
      { cli: true, name: 'the signature', bundle: () => { const b = clone(whole); b.signature = b.signature.slice(0, 10) + (b.signature[10] === 'a' ? 'b' : 'a') + b.signature.slice(11); return b }, record: /^signature/ },
      { name: 're-signed by a key that is not the reporter', bundle: () => resign(clone(whole), new Wallet(stranger.privateKey)), record: /^signature: is by/ },
    ]
    // The list through the CLI as a regulator runs it (exit 7); the further variants through the same
    // checker in-process, against the same chain node.
    const viaCli = cases.filter((c) => c.cli)
    for (let i = 0; i < viaCli.length; i += 4) {
      await Promise.all(
        viaCli.slice(i, i + 4).map(async (c) => {
          const { run: r, result } = await check(await c.bundle())
          assert.equal(r.code, 7, `${c.name}: exit ${r.code}\n${r.stderr}`)
          assert.equal(result.ok, false)
          assert.match(result.firstFailure?.message ?? '', c.record, `${c.name}: ${result.firstFailure?.message}`)
          assert.ok(oneLine(r.stderr).includes(result.firstFailure!.record), `${c.name}: stderr names the record`)
        }),
      )
    }
    const provider = new JsonRpcProvider(chain.rpcUrl, chain.chainId, { staticNetwork: true })
    try {
      for (const c of cases.filter((x) => !x.cli)) {
        const result = await checkBundle(await c.bundle(), { provider })
        assert.equal(result.ok, false, c.name)
        assert.match(result.firstFailure?.message ?? '', c.record, `${c.name}: ${result.firstFailure?.message}`)
      }
      assert.equal((await checkBundle(whole, { provider })).ok, true, 'the untouched bundle, in-process')
      // A regulator who pins the contract they trust: a bundle for any other contract fails, whatever it proves there.
      const pinned = await checkBundle(whole, { provider, contract: Wallet.createRandom().address })
      assert.equal(pinned.ok, false)
      assert.equal(pinned.firstFailure?.record, 'deployment')
    } finally {
      provider.destroy()
    }
    // The bundle is one canonical JSON document: re-encoding it changes nothing.
    assert.equal(canonicalJson(whole), wholeText.trimEnd())
  })
})
