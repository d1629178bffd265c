/**
 * Regenerates the evidence-bundle test vectors in test/vectors/evidence/ from a real run: anvil, mosquitto and
 * `flytrap proxy start` (test/helpers/evidence.ts), then `flytrap audit export` for the whole journal, one
 * topic and one client; plus tampered copies, each with what an offline check must say
 * (expected.json). Needs dist/ (npm run build).
 *
 *   npx tsx scripts/evidence-vectors.ts [outDir]
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hexlify, getBytes, Wallet } from 'ethers'
import { canonicalJson } from '../src/lib/audit/entry.js'
import { checkBundle } from '../src/lib/audit/evidence/check.js'
import type { DisclosedEntry, EvidenceBundle } from '../src/lib/audit/evidence/format.js'
import { bundleDigest } from '../src/lib/audit/evidence/signature.js'
import { evidenceRun, K, NURSE, ROGUE } from '../test/helpers/evidence.js'

export interface VectorExpectation {
  file: string
  /** What the file is. */
  about: string
  /** The offline check's verdict, and the record its first failure names (null when ok). */
  ok: boolean
  firstFailureRecord: string | null
  /** Seqs of the disclosed entries in scope (ok vectors). */
  inScope: number[]
}

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T
const firstEntry = (b: EvidenceBundle, pred: (e: DisclosedEntry) => boolean = () => true): DisclosedEntry => {
  for (const p of b.periods) for (const e of p.entries) if (!('redacted' in e) && pred(e)) return e
  throw new Error('no such entry')
}
/** A fixed (not random) value, so tampered vectors are reproducible from their source. */
const fixed = (tag: number) => hexlify(new Uint8Array(32).fill(tag))

export async function generate(outDir: string): Promise<VectorExpectation[]> {
  const run = await evidenceRun()
  try {
    const whole = (await run.exportBundle(join(run.cwd, 'whole.json'), [])).bundle
    const topic = (await run.exportBundle(join(run.cwd, 'topic.json'), ['--topic', 'ward/vitals'])).bundle
    const client = (await run.exportBundle(join(run.cwd, 'client.json'), ['--client', NURSE])).bundle
    // A subject erased (audit forget): its entries become redactions covered by the signed erasure record.
    await run.forget(ROGUE)
    const redacted = (await run.exportBundle(join(run.cwd, 'redacted.json'), [])).bundle
    const redactedTopic = (await run.exportBundle(join(run.cwd, 'redacted-topic.json'), ['--topic', 'ward/vitals'])).bundle
    const resign = async (b: EvidenceBundle, key: string) => {
      const w = new Wallet(key)
      const unsigned = { ...b, signer: w.address }
      return { ...unsigned, signature: await w.signMessage(getBytes(bundleDigest(unsigned))) }
    }
    const files: [string, string, EvidenceBundle][] = [
      ['whole.json', 'every entry of the anchored periods (no filter)', whole],
      ['topic.json', 'topic ward/vitals: index openings prove completeness', topic],
      ['client.json', `client ${NURSE.toLowerCase()}: index openings prove completeness`, client],
    ]
    files.push(['redacted.json', `every entry after \`audit forget ${ROGUE}\`: redactions and their erasure record`, redacted])
    files.push(['redacted-topic.json', 'topic ward/vitals after the erasure: a seq its index lists is disclosed as a redaction', redactedTopic])
    const t = (name: string, about: string, b: EvidenceBundle) => files.push([name, about, b])
    { const b = clone(whole); firstEntry(b).entry.reason = 'edited'; t('tampered-entry-field.json', 'whole.json with one entry\'s reason changed', b) }
    { const b = clone(whole); firstEntry(b).salt = fixed(0x11); t('tampered-salt.json', 'whole.json with one salt changed', b) }
    { const b = clone(whole); const e = firstEntry(b, (x) => x.siblings.length > 0); e.siblings[0] = fixed(0x22); t('tampered-proof.json', 'whole.json with one Merkle sibling changed', b) }
    { const b = clone(whole); b.periods.find((p) => p.entries.length > 1)!.entries.pop(); t('tampered-dropped-entry.json', 'whole.json with the last entry of a period left out', b) }
    { const b = clone(whole); const s = b.signature; b.signature = s.slice(0, 20) + (s[20] === '0' ? '1' : '0') + s.slice(21); t('tampered-signature.json', 'whole.json with one signature digit changed', b) }
    t('tampered-wrong-signer.json', 'whole.json re-signed by a key that is not the anchoring reporter', await resign(clone(whole), K[9]!))
    t('tampered-resigned-entry.json', 'whole.json with an entry\'s outcome flipped, re-signed by the reporter key (the operator)', await (async () => { const b = clone(whole); const e = firstEntry(b); e.entry.outcome = e.entry.outcome === 'allow' ? 'deny' : 'allow'; return resign(b, K[5]!) })())
    const opened = topic.periods.find((p) => p.openings.some((o) => !('absent' in o)))
    if (opened) {
      { const b = clone(topic); const p = b.periods.find((x) => x.entries.length > 0)!; p.entries.splice(0, 1); t('tampered-topic-dropped-entry.json', 'topic.json with an in-scope entry left out', b) }
      { const b = clone(topic); const p = b.periods[topic.periods.indexOf(opened)]!; p.openings = p.openings.filter((o) => 'absent' in o); t('tampered-topic-no-opening.json', 'topic.json with the membership opening of a key removed', b) }
    }
    // The privacy parts: member records of the committed sensitive report, the private reason's opening, grants.
    const members = (b: EvidenceBundle) => { if (b.members.length === 0) throw new Error('no member records disclosed'); return b.members }
    { const b = clone(whole); members(b)[0]!.record.count += 1; t('tampered-member-count.json', 'whole.json with a member record\'s count changed', b) }
    { const b = clone(client); const i = members(b).findIndex((m) => m.record.role === 'receiver'); if (i < 0) throw new Error('no receiver record'); b.members.splice(i, 1); t('tampered-member-withheld.json', 'client.json with the client\'s receiver record withheld (its deliveries are disclosed)', b) }
    { const b = clone(whole); if (!b.reasons[0]) throw new Error('no reason opening'); b.reasons[0].text = 'routine'; t('tampered-reason-opening.json', 'whole.json with the private reason\'s disclosed text changed', b) }
    {
      const b = clone(whole)
      const g = b.grants.find((x) => x.policy !== null && b.policy[x.policy]!.event === 'Granted')!
      const mine = b.policy[g.policy!]!
      const other = b.policy.findIndex((e) => e.event === 'Granted' && e.args.client !== mine.args.client)
      if (other < 0) throw new Error('no other client\'s Granted')
      g.policy = other
      t('tampered-grant-other-client.json', 'whole.json with a grant pointing at another client\'s Granted', b)
    }
    { const b = clone(redacted); const p = b.periods.find((x) => x.entries.some((e) => 'redacted' in e))!; const e = p.entries.find((x) => 'redacted' in x)! as { redactedAt: number | null }; e.redactedAt = (e.redactedAt ?? 0) + 1; t('tampered-redaction.json', 'redacted.json with a redaction\'s redactedAt changed (not in the leaf: caught by the signed erasure record)', b) }
    mkdirSync(outDir, { recursive: true })
    for (const f of readdirSync(outDir)) if (f.endsWith('.json')) rmSync(join(outDir, f))
    const expected: VectorExpectation[] = []
    for (const [file, about, b] of files) {
      writeFileSync(join(outDir, file), `${canonicalJson(b)}\n`)
      // While the chain still exists: the untampered vectors hold against it too (chain steps included).
      if (!file.startsWith('tampered-')) {
        const online = await checkBundle(b, { provider: run.chain.provider, contract: run.chain.address })
        if (!online.ok) throw new Error(`${file} does not check against the chain: ${online.firstFailure?.message}`)
      }
      const r = await checkBundle(b)
      expected.push({ file, about, ok: r.ok, firstFailureRecord: r.firstFailure?.record ?? null, inScope: r.inScope })
    }
    writeFileSync(join(outDir, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`)
    return expected
  } finally {
    await run.close()
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? fileURLToPath(new URL('../test/vectors/evidence', import.meta.url)))
  const expected = await generate(out)
  for (const e of expected) console.log(`${e.ok ? 'ok  ' : 'FAIL'} ${e.file}${e.firstFailureRecord ? ` — ${e.firstFailureRecord}` : ''}`)
}
