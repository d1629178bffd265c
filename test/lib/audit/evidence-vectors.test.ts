/**
 * The evidence-bundle test vectors (test/vectors/evidence/, from scripts/evidence-vectors.ts: a real anvil +
 * proxy run) checked offline, without a chain node: each file must give the verdict and the first failing
 * record expected.json names, through the library and through `flytrap audit check --offline` (which must
 * never claim the chain checks passed). Needs dist/ for the CLI part.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Wallet } from 'ethers'
import { canonicalJson } from '../../../src/lib/audit/entry.js'
import { checkBundle, type CheckResult } from '../../../src/lib/audit/evidence/check.js'
import { readBundle } from '../../../src/lib/audit/evidence/format.js'
import { ANVIL_DEV_KEYS } from '../../../src/lib/dev/anvil.js'
import { runCli } from '../../helpers/cli.js'

const DIR = fileURLToPath(new URL('../../vectors/evidence/', import.meta.url))
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { file: string; about: string; ok: boolean; firstFailureRecord: string | null; inScope: number[] }[]
const load = (f: string) => JSON.parse(readFileSync(join(DIR, f), 'utf8')) as unknown

describe('evidence test vectors (offline)', () => {
  test('the vectors cover the three scopes and every tampering kind', () => {
    const files = expected.map((e) => e.file)
    for (const f of ['whole.json', 'topic.json', 'client.json', 'tampered-entry-field.json', 'tampered-salt.json', 'tampered-proof.json', 'tampered-dropped-entry.json', 'tampered-signature.json', 'tampered-topic-dropped-entry.json', 'tampered-member-count.json', 'tampered-member-withheld.json', 'tampered-reason-opening.json', 'tampered-grant-other-client.json']) assert.ok(files.includes(f), f)
    const whole = readBundle(load('whole.json'))
    assert.equal(whole.signer, new Wallet(ANVIL_DEV_KEYS[5]!).address, 'signed by the reporter of the run')
    assert.equal(readFileSync(join(DIR, 'whole.json'), 'utf8'), `${canonicalJson(whole)}\n`, 'stored as canonical JSON')
    assert.ok(whole.summaries.some((e) => e.event === 'SensitiveReport') && whole.members.length > 0, 'a committed sensitive report with its member records')
    assert.ok(whole.reasons.some((r) => whole.policy.some((e) => e.args.reason === r.commitment)), 'a private reason with its opening')
    assert.ok(whole.grants.length > 0 && whole.grants.every((g) => g.policy !== null), 'every allowed access with the grant that allowed it')
    assert.ok(readBundle(load('topic.json')).periods.some((p) => p.openings.length > 0 && p.anchor.index !== null), 'the topic vector opens index keys')
  })

  for (const e of expected) {
    test(`${e.file}: ${e.about} → ${e.ok ? 'ok' : `fails at ${e.firstFailureRecord}`}`, async () => {
      const r = await checkBundle(load(e.file))
      assert.equal(r.offline, true)
      assert.equal(r.ok, e.ok, r.firstFailure?.message)
      assert.equal(r.firstFailure?.record ?? null, e.firstFailureRecord)
      if (e.ok) {
        assert.deepEqual(r.inScope, e.inScope)
        for (const k of ['deployment', 'anchors', 'policy', 'summaries'] as const) assert.equal(r.steps[k].status, 'not-checked', k)
      }
    })
  }

  test('a vector changed by one byte no longer checks', async () => {
    const text = readFileSync(join(DIR, 'client.json'), 'utf8')
    const i = text.indexOf('"t":') + 5
    const changed = text.slice(0, i) + (text[i] === '1' ? '2' : '1') + text.slice(i + 1)
    const r = await checkBundle(JSON.parse(changed))
    assert.equal(r.ok, false)
    assert.match(r.firstFailure!.record, /^entry seq \d+/)
  })

  test('flytrap audit check --offline: exit 0 says only the offline checks hold; a tampered vector is exit 7 naming the record', async () => {
    const ok = await runCli(['audit', 'check', join(DIR, 'topic.json'), '--offline', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    const res = ok.json<CheckResult>()
    assert.equal(res.offline, true)
    assert.equal(res.steps.anchors.status, 'not-checked')
    assert.ok(res.warnings.some((w) => w.includes('NOT checked against the chain')))
    const human = await runCli(['audit', 'check', join(DIR, 'topic.json'), '--offline'])
    assert.equal(human.code, 0)
    assert.match(human.stdout, /the chain was NOT checked/)
    const bad = await runCli(['audit', 'check', join(DIR, 'tampered-salt.json'), '--offline'])
    assert.equal(bad.code, 7)
    assert.match(bad.stderr, /entry seq \d+/)
  })
})
