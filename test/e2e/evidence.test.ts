/**
 * Evidence bundles end to end (issue 11, items 1–2): real anvil, real mosquitto and `flytrap proxy start` with a
 * journal, a 2 s anchoring period and a registered reporter. MQTT.js clients drive grants, publishes, subscribes,
 * a refused access and traffic on a sensitive topic; once the periods are anchored, `flytrap audit export` writes
 * bundles (whole journal, one topic, one client) and `flytrap audit check` verifies them as a regulator would:
 * as a child process in a fresh directory holding only the bundle, with only --rpc. Then every part of a bundle
 * is tampered with in turn and the check must fail with exit 7 naming that record — the privacy parts too: member
 * records of the committed sensitive report, the private reason's opening, the grant of each access, and an
 * operator who files a sensitive report on chain that the journal does not bear out.
 * Needs dist/ (npm run build). The tests in this file depend on each other and run in order.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { concat, getBytes, hexlify, JsonRpcProvider, keccak256, randomBytes, toUtf8Bytes, Wallet } from 'ethers'
import { canonicalJson } from '../../src/lib/audit/entry.js'
import { checkBundle, type CheckResult } from '../../src/lib/audit/evidence/check.js'
import { contractEvents } from '../../src/lib/audit/evidence/export.js'
import type { DisclosedEntry, EvidenceBundle } from '../../src/lib/audit/evidence/format.js'
import { refKey } from '../../src/lib/audit/evidence/select.js'
import { bundleDigest } from '../../src/lib/audit/evidence/signature.js'
import { commitRecords, memberLeaf, type MemberRecord } from '../../src/lib/audit/sensitive-members.js'
import { merkleProof } from '../../src/lib/audit/merkle.js'
import { tempCwd, type CliRun } from '../helpers/cli.js'
import { evidenceRun, K, NURSE, PERIOD_MS, PRIVATE_REASON, REPORTER, VALVE, type EvidenceRun } from '../helpers/evidence.js'

const oneLine = (s: string) => s.replace(/\s*\n\s*›\s*/g, ' ')
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

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
    // The privacy parts: the committed report's member records (the client bundle only the client's), the
    // private reason opened from the run's .flytrap/reasons.jsonl, and the grant of every allowed access.
    assert.ok(whole.members.some((m) => m.record.address === VALVE.toLowerCase() && m.record.role === 'publisher'))
    assert.ok(byClient.members.length > 0 && byClient.members.every((m) => m.record.address === NURSE.toLowerCase()))
    for (const b of [whole, byTopic, byClient]) assert.ok(b.reasons.some((r) => r.text === PRIVATE_REASON), 'the private reason is disclosed')
    const delivery = all.find((e) => e.entry.kind === 'deliver' && e.entry.address?.toLowerCase() === NURSE.toLowerCase())!
    const g = byClient.grants.find((x) => x.seq === delivery.seq)!
    assert.equal(byClient.policy[g.policy!]!.args.reason, byClient.reasons[0]!.commitment, 'the delivery was allowed by the re-grant with the private reason')
    assert.ok(whole.periods[0]!.anchor.ref.time > 0 && whole.policy.every((e) => Number.isInteger(e.ref.time)))
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
      { cli: true, name: 'a policy event that is not on chain', bundle: () => { const b = clone(byTopic); const g = clone(b.policy.find((e) => e.event === 'Granted')!); g.ref.txHash = hexlify(randomBytes(32)); g.args.client = stranger.address.toLowerCase(); b.policy.push(g); return b }, record: /^policy event Granted .*not on this chain/ },
      {
        name: 'a policy event left out (the grants renumbered to match)',
        bundle: () => {
          const b = clone(byTopic)
          const keys = b.policy.map(refKey)
          b.policy = b.policy.filter((e) => e.event !== 'Granted' || e.args.reason !== 'nurse station')
          const at = new Map(b.policy.map((e, i) => [refKey(e), i]))
          for (const g of b.grants) if (g.policy !== null) g.policy = at.get(keys[g.policy]!)!
          return b
        },
        record: /^policy event Granted .*leaves it out/,
      },
      { name: "a summary's counts", bundle: () => { const b = clone(whole); const s = b.summaries.find((e) => e.event === 'SensitiveReport')!; s.args.received = String(Number(s.args.received) + 1); return b }, record: /^summary SensitiveReport .*arguments differ/ },
      { name: "a summary's block time", bundle: () => { const b = clone(whole); b.summaries[0]!.ref.time -= 1; return b }, record: /^summary \w+ .*not the timestamp/ },
      { cli: true, name: "a member record's count", bundle: () => { const b = clone(whole); b.members[0]!.record.count += 1; return b }, record: /^member record (publisher|receiver) 0x[0-9a-f]{40} of summary \d+: its leaf/ },
      { name: 'a member record withheld (client)', bundle: () => { const b = clone(byClient); b.members = b.members.filter((m) => m.record.role !== 'receiver'); return b }, record: /^member record receiver 0x[0-9a-f]{40} of summary \d+: is not disclosed/ },
      { name: "a made-up member record of another address (client)", bundle: () => { const b = clone(byClient); const m = clone(b.members[0]!); m.record = { address: VALVE.toLowerCase(), role: 'publisher', count: 5 }; m.salt = hexlify(randomBytes(32)); b.members.push(m); return b }, record: /^member record publisher 0x[0-9a-f]{40} of summary \d+: its leaf/ },
      { name: 'a member record with a checksummed address', bundle: () => { const b = clone(whole); b.members[0]!.record.address = VALVE; return b }, record: /^member record publisher 0x[0-9a-fA-F]{40} of summary \d+: is not a member record/ },
      { name: 'a member record moved to another summary', bundle: () => { const b = clone(whole); b.members[0]!.summary = b.summaries.findIndex((e) => e.event === 'DeniedSummary'); return b }, record: /^member record .* not a committed SensitiveReport/ },
      { cli: true, name: "the private reason's text", bundle: () => { const b = clone(byTopic); b.reasons[0]!.text = 'routine'; return b }, record: /^reason commit:0x[0-9a-f]{64}: its text and salt do not open/ },
      { name: 'a reason opening no cited event carries', bundle: () => { const b = clone(byTopic); const salt = hexlify(randomBytes(32)); b.reasons.push({ commitment: `commit:${keccak256(concat(['0x07', salt, toUtf8Bytes('made up')]))}`, salt, text: 'made up' }); return b }, record: /^reason commit:.*no cited policy event/ },
      {
        name: "a grant pointing at another client's Granted",
        bundle: () => {
          const b = clone(whole)
          const g = b.grants.find((x) => x.policy !== null && b.policy[x.policy]!.args.client === NURSE.toLowerCase())!
          g.policy = b.policy.findIndex((e) => e.event === 'Granted' && e.args.client !== NURSE.toLowerCase())
          return b
        },
        record: /^grant of entry seq \d+: names Granted .*for client/,
      },
      { name: 'a grant said to be null (nothing allowed it): the replay of the cited policy disagrees', bundle: () => { const b = clone(byClient); b.grants[0]!.policy = null; return b }, record: /^grant of entry seq \d+: says nothing on chain allowed it, but the cited policy replayed/ },
      { name: "a grant pointing at the client's superseded Granted (rule (a): a later grant replaced it)", bundle: () => { const b = clone(byClient); const g = b.grants.find((x) => x.policy !== null)!; g.policy = b.policy.findIndex((e) => e.event === 'Granted' && e.args.reason === 'nurse station'); return b }, record: /^grant of entry seq \d+: names Granted .* superseded before the entry by Granted/ },
      { name: 'a grant left out', bundle: () => { const b = clone(byClient); b.grants.pop(); return b }, record: /^grant of entry seq \d+: is missing/ },
      { name: "a grant's policy event dated after the entry", bundle: () => { const b = clone(byClient); const g = b.grants.find((x) => x.policy !== null)!; b.policy[g.policy!]!.ref.time += 3600; return b }, record: /^grant of entry seq \d+: .*later than the entry/ },
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

  test('the operator files a sensitive report the journal does not bear out: export refuses, a hand-made bundle fails at the member record', async () => {
    // Last in this file: the chain then holds a report no journal matches.
    const report = whole.summaries.find((e) => e.event === 'SensitiveReport')!
    const i0 = whole.summaries.indexOf(report)
    const honest = whole.members.filter((m) => m.summary === i0)
    // The reporter key re-commits the same records with one count raised and one salt replaced: a valid tree.
    const fake: MemberRecord[] = honest.map((m, j) => ({ ...m.record, salt: j === 1 ? hexlify(randomBytes(32)) : m.salt, count: m.record.count + (j === 0 ? 1 : 0) }))
    const c = commitRecords(fake)
    const reporter = chain.as(5)
    await reporter.recordSensitive(String(report.args.topic), Number(report.args.fromTime), Number(report.args.toTime), c)
    const refused = await run.flytrap(['audit', 'export', '--from', String(Math.floor(run.t0 / 1000)), '--to', 'now', '--data-dir', run.dataDir, '--key', K[5]!, '--out', join(run.cwd, 'refused.json'), '--json', '--rpc', chain.rpcUrl, '--contract', chain.address, '--from-block', String(chain.deployBlock)])
    assert.equal(refused.code, 7, refused.stderr)
    assert.match(`${refused.stdout}${refused.stderr}`.replace(/\s+/g, ' '), /do not give the membersRoot on chain/)

    const events = await contractEvents(chain.as(0), chain.deployBlock, await chain.provider.getBlockNumber())
    const lie = events.filter((e) => e.event === 'SensitiveReport').at(-1)!
    assert.equal(lie.args.membersRoot, c.membersRoot.toLowerCase())
    const b = clone(whole)
    const head = (await chain.provider.getBlock('latest'))!
    b.deployment.asOf = { blockNumber: head.number, blockHash: head.hash!.toLowerCase() }
    b.summaries.push(lie)
    const leaves = c.records.map(memberLeaf)
    c.records.forEach((r, j) => {
      const p = merkleProof(leaves, j)
      b.members.push({ summary: b.summaries.length - 1, record: { address: r.address, role: r.role, count: r.count }, salt: r.salt, proof: { index: p.index, count: p.count, siblings: p.siblings } })
    })
    const w = new Wallet(K[5]!)
    const signed = { ...b, signature: await w.signMessage(getBytes(bundleDigest(b))) }
    const provider = new JsonRpcProvider(chain.rpcUrl, chain.chainId, { staticNetwork: true })
    try {
      const r = await checkBundle(signed, { provider })
      assert.equal(r.ok, false)
      const mine = r.failures.filter((f) => f.record.endsWith(`of summary ${b.summaries.length - 1}`))
      assert.ok(mine.some((f) => /counts \d+, but the bundle discloses \d+/.test(f.message)), JSON.stringify(r.failures))
      assert.ok(mine.some((f) => /salt does not derive/.test(f.message)), JSON.stringify(r.failures))
      assert.equal(r.steps.summaries.status, 'ok', 'the report itself is on chain, filed by the registered reporter')
    } finally {
      provider.destroy()
    }
  })
})
