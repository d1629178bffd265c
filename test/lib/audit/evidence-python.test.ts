/**
 * The evidence test vectors (test/vectors/evidence/) re-verified by an independent implementation: the Python
 * checker scripts/check-evidence.py, written from docs/evidence.md alone (Debian's python3 + python3-pycryptodome,
 * no TypeScript). `--offline` on every vector must give exactly what expected.json says: the exit code, the first
 * failing record, the entries in scope. And the test can fail: a vector changed by one byte, and copies of the
 * checker with one of its hash rules broken, must not pass.
 * On CI (CI set) a missing /usr/bin/python3 or Cryptodome fails the test; elsewhere it is skipped with a message.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CHECKER, ON_CI, pythonMissing, runPython } from '../../helpers/python.js'

const DIR = fileURLToPath(new URL('../../vectors/evidence/', import.meta.url))
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { file: string; about: string; ok: boolean; firstFailureRecord: string | null; inScope: number[] }[]
const missing = pythonMissing()

if (missing) {
  test('evidence vectors with the independent Python checker', { skip: ON_CI ? false : missing }, () => assert.fail(missing))
} else {
  describe('evidence vectors with the independent Python checker (offline)', () => {
    for (const e of expected) {
      test(`${e.file}: ${e.ok ? 'exit 0' : `exit 7 at ${e.firstFailureRecord}`}`, async () => {
        const r = await runPython(join(DIR, e.file), ['--offline'])
        assert.ok(r.result, `no JSON from the checker (exit ${r.code}): ${r.stderr}`)
        assert.equal(r.code, e.ok ? 0 : 7, r.stderr)
        assert.equal(r.result.ok, e.ok)
        assert.equal(r.result.offline, true)
        assert.equal(r.result.firstFailure?.record ?? null, e.firstFailureRecord, r.result.firstFailure?.message)
        assert.deepEqual(r.result.inScope, e.inScope)
        for (const k of ['deployment', 'anchors', 'policy', 'summaries']) assert.equal(r.result.steps[k]?.status, 'not-checked', k)
        if (!e.ok) assert.ok(r.stderr.includes(e.firstFailureRecord!), 'stderr names the record')
      })
    }

    test('a vector changed by one byte: exit 7 naming the entry', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'flytrap-pyvec-'))
      try {
        const text = readFileSync(join(DIR, 'client.json'), 'utf8')
        const i = text.indexOf('"t":') + 5
        writeFileSync(join(dir, 'b.json'), text.slice(0, i) + (text[i] === '1' ? '2' : '1') + text.slice(i + 1))
        const r = await runPython(join(dir, 'b.json'), ['--offline'])
        assert.equal(r.code, 7, r.stderr)
        assert.match(r.result!.firstFailure!.record, /^entry seq \d+ \(period /)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    test('the vectors catch a broken hash rule: copies of the checker with one rule changed fail them', async () => {
      const source = readFileSync(CHECKER, 'utf8')
      const mutants: { name: string; from: string; to: string; vector: string; record: RegExp }[] = [
        { name: 'Merkle node prefix', from: "return keccak(b'\\x01', left, right)", to: "return keccak(b'\\x02', left, right)", vector: 'whole.json', record: /^entry seq 1 / },
        { name: 'entry leaf prefix', from: "keccak(b'\\x00', unhex(salt_hex)", to: "keccak(b'\\x01', unhex(salt_hex)", vector: 'whole.json', record: /^entry seq 1 / },
        { name: 'index key hash prefix', from: "keccak(b'\\x03', utf8(k))", to: "keccak(b'\\x02', utf8(k))", vector: 'client.json', record: /^index key "client:/ },
        { name: 'seqsDigest little-endian', from: 'keccak(*[u64be(s) for s in seqs])', to: "keccak(*[s.to_bytes(8, 'little') for s in seqs])", vector: 'topic.json', record: /^index key "topic:ward\/vitals"/ },
        { name: 'member leaf prefix', from: "keccak(b'\\x05', unhex(salt_hex)", to: "keccak(b'\\x04', unhex(salt_hex)", vector: 'whole.json', record: /^member record (publisher|receiver) 0x[0-9a-f]{40} of summary \d+$/ },
        { name: 'member salt prefix', from: "keccak(b'\\x06', unhex(entry_salt_hex)", to: "keccak(b'\\x05', unhex(entry_salt_hex)", vector: 'client.json', record: /^member record (publisher|receiver) 0x[0-9a-f]{40} of summary \d+$/ },
        { name: 'reason commitment prefix', from: "keccak(b'\\x07', unhex(salt_hex)", to: "keccak(b'\\x06', unhex(salt_hex)", vector: 'topic.json', record: /^reason commit:0x[0-9a-f]{64}$/ },
        { name: 'grant role bits swapped', from: "GRANT_ROLE = {'publish': ROLE_PUBLISH, 'will': ROLE_PUBLISH, 'subscribe': ROLE_SUBSCRIBE, 'deliver': ROLE_SUBSCRIBE}", to: "GRANT_ROLE = {'publish': ROLE_SUBSCRIBE, 'will': ROLE_SUBSCRIBE, 'subscribe': ROLE_PUBLISH, 'deliver': ROLE_PUBLISH}", vector: 'whole.json', record: /^grant of entry seq \d+$/ },
        { name: 'EIP-191 prefix', from: 'Ethereum Signed Message:\\n32', to: 'Ethereum Signed Message:\\n33', vector: 'redacted.json', record: /^erasure record seq \d+$/ },
      ]
      const dir = mkdtempSync(join(tmpdir(), 'flytrap-pymut-'))
      try {
        for (const m of mutants) {
          assert.ok(source.includes(m.from), `${m.name}: the checker has ${m.from}`)
          const script = join(dir, `${m.name.replace(/\W+/g, '-')}.py`)
          writeFileSync(script, source.replace(m.from, m.to))
          const r = await runPython(join(DIR, m.vector), ['--offline'], script)
          assert.equal(r.code, 7, `${m.name}: the broken checker still passes ${m.vector}`)
          assert.match(r.result!.firstFailure!.record, m.record, m.name)
        }
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    test('usage: a bundle and exactly one of --rpc / --offline, else exit 2; an unreadable file is exit 2', async () => {
      assert.equal((await runPython(join(DIR, 'whole.json'), [])).code, 2)
      assert.equal((await runPython(join(DIR, 'whole.json'), ['--offline', '--rpc', 'http://127.0.0.1:1'])).code, 2)
      assert.equal((await runPython(join(DIR, 'no-such-file.json'), ['--offline'])).code, 2)
    })

    test('an unreachable node is exit 4, not a verdict', async () => {
      const r = await runPython(join(DIR, 'whole.json'), ['--rpc', 'http://127.0.0.1:9'])
      assert.equal(r.code, 4, r.stderr)
    })
  })
}
