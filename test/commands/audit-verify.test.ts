/**
 * `flytrap audit verify` and `flytrap audit forget` against a real anvil: a journal of three 2-second periods
 * whose roots a registered reporter anchored; verify proves it (and one entry), forget erases an address and
 * everything still verifies, a tampered entry exits 7 naming file, line and seq. The commands run in-process;
 * the tampered entry's exit 7 also through the built binary, and the confirmation prompt on a pseudo-terminal
 * (a prompt needs a real TTY). Needs dist/ (npx tsc -p tsconfig.json) and an up-to-date oclif.manifest.json.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync, type Dirent } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEYS, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { connect, FlyTrapClient } from '../../src/lib/chain/client.js'
import { openJournal } from '../../src/lib/audit/journal.js'
import { journalDir, readRecords } from '../../src/lib/audit/journal-files.js'
import type { EntryInput } from '../../src/lib/audit/entry.js'
import { readErasure } from '../../src/lib/audit/erasure.js'
import { forgetSubject } from '../../src/lib/audit/forget.js'
import { keyHash, seqsDigest } from '../../src/lib/audit/scope-index.js'
import { BIN, runCli, runInProcess, tempCwd } from '../helpers/cli.js'
import { indexedLink } from '../helpers/chain.js'

const OWNER = ANVIL_DEV_KEYS[0]
const REPORTER = ANVIL_DEV_KEYS[1]
const ALICE = '0x90F79bf6EB2c4f870365E785982E1f101E93b906'
const BOB = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65'
const ERASE = ['--reason', 'GDPR art. 17(1)(b), consent withdrawn', '--requested-by', 'data subject, ticket 4711']

/**
 * Runs flytrap on a pseudo-terminal (util-linux `script`), answers the first confirmation prompt once it
 * is shown, and returns the exit code and what the terminal showed.
 */
function onTty(args: string[], answer: string, env: Record<string, string>): Promise<{ code: number | null; screen: string }> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
  // A pty made by script has no size; a real terminal has one (ora needs the width).
  const child = spawn('script', ['-qec', `stty cols 200 rows 50; exec ${quoted}`, '/dev/null'], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let screen = ''
  let answered = false
  child.stdout.on('data', (c: Buffer) => {
    screen += c.toString()
    if (!answered && /\(y\/N\)/.test(screen)) {
      answered = true
      child.stdin.write(`${answer}\r`)
    }
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      // The terminal wraps long lines: join them again for matching.
      resolve({ code, screen: screen.replace(/\r\n/g, '') })
    }),
  )
}

/** oclif wraps error messages to the terminal width. */
const oneLine = (s: string) => s.replace(/\s*\n\s*›\s*/g, ' ')

const traffic = (i: number): EntryInput =>
  i % 2 === 0
    ? { kind: 'publish', outcome: 'allow', reason: 'member', address: ALICE, clientId: 'alice-1', ip: '203.0.113.7', topic: 'plant/valve' }
    : { kind: 'subscribe', outcome: 'deny', reason: 'not-member', address: BOB, clientId: 'bob', ip: '198.51.100.1', topic: 'plant/#' }

describe('audit verify / audit forget (CLI, anvil)', () => {
  let anvil: AnvilHandle
  let cwd: string
  let dataDir: string
  let flytrap: (args: string[]) => ReturnType<typeof runInProcess>
  let binary: (args: string[]) => ReturnType<typeof runCli>

  before(async () => {
    anvil = await startAnvil()
    cwd = tempCwd()
    const env = { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined, FLYTRAP_DATA_DIR: undefined }
    flytrap = (args) => runInProcess(args, { cwd, env })
    binary = (args) => runCli(args, { cwd, env })
    const deploy = await flytrap(['contract', 'deploy', '--key', OWNER, '--json'])
    assert.equal(deploy.code, 0, deploy.stderr)
    const { address } = deploy.json<{ address: string }>()
    const add = await flytrap(['contract', 'reporter', 'add', new Wallet(REPORTER).address, '--reason', 'proxy eu-1', '--key', OWNER])
    assert.equal(add.code, 0, add.stderr)

    // The proxy's journal in the default data directory: 12 entries over three 2 s periods.
    dataDir = join(cwd, '.flytrap', 'proxy')
    const t0 = Math.floor((Date.now() - 60_000) / 2_000) * 2_000 // anchored right after, well within the deadline
    const c = { now: t0 }
    const j = await openJournal({ dataDir, periodMs: 2_000, now: () => c.now, flushIntervalMs: 1 })
    for (let i = 0; i < 12; i++) {
      await j.append(traffic(i))
      c.now += 500
    }
    const { provider } = await connect(anvil.rpcUrl)
    const reporter = new FlyTrapClient(address, new Wallet(REPORTER, provider))
    for (let k = j.periodOf(t0); k <= j.periodOf(c.now - 500); k++) await reporter.anchor(await indexedLink(j.dataDir, await j.periodRoot(k)))
    await j.close()
    provider.destroy()
  })
  after(async () => anvil?.stop())

  test('an intact journal verifies against its anchors (JSON and table)', async () => {
    const r = await flytrap(['audit', 'verify', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const out = r.json<{ mode: string; ok: boolean; journal: { entries: number }; anchors: { checked: boolean; verified: number; mismatched: number } }>()
    assert.deepEqual([out.mode, out.ok, out.journal.entries, out.anchors.checked, out.anchors.verified, out.anchors.mismatched], ['journal', true, 12, true, 3, 0])

    const human = await flytrap(['audit', 'verify'])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /hash chain\s*│\s*intact/)
    assert.equal(human.stdout.match(/verified/g)?.length, 4) // the summary and three periods
    assert.match(human.stdout, /✓ journal intact and consistent with the chain/)
  })

  test('--entry prints the leaf, the proof and the anchored root, and checks them', async () => {
    const r = await flytrap(['audit', 'verify', '--entry', '6', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const e = r.json<{ mode: string; ok: boolean; anchored: boolean; root: string; anchor: { root: string }; proof: { index: number; count: number; siblings: string[] } }>()
    assert.deepEqual([e.mode, e.ok, e.anchored, e.root], ['entry', true, true, e.anchor.root])
    assert.deepEqual([e.proof.index, e.proof.count, e.proof.siblings.length], [1, 4, 2])

    const human = await flytrap(['audit', 'verify', '--entry', '6'])
    assert.equal(human.code, 0, human.stderr)
    for (const s of [/leaf/, /proof/, /anchored root/, /✓ entry seq 6 is proven by the root anchored in tx 0x[0-9a-f]{64}/]) assert.match(human.stdout, s)
    const none = await flytrap(['audit', 'verify', '--entry', '99'])
    assert.equal(none.code, 2)
  })

  test('without a reachable chain the hash chain is still checked and the output says anchors were not', async () => {
    const r = await flytrap(['audit', 'verify', '--rpc', 'http://127.0.0.1:9', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const out = r.json<{ ok: boolean; chain: { ok: boolean }; anchors: { checked: boolean; reason: string } }>()
    assert.deepEqual([out.ok, out.chain.ok, out.anchors.checked], [true, true, false])
    assert.match(out.anchors.reason, /anchors not checked: cannot reach the chain/)
    const human = await flytrap(['audit', 'verify', '--rpc', 'http://127.0.0.1:9'])
    assert.match(human.stdout, /hash chain intact \(anchors were not checked\)/)
  })

  test('audit forget refuses without a terminal and without --yes, and with a key that is not a reporter, before touching anything', async () => {
    const snapshot = () => readdirSync(journalDir(dataDir)).map((n) => readFileSync(join(journalDir(dataDir), n), 'utf8')).join('')
    const before = snapshot()
    const noYes = await flytrap(['audit', 'forget', ALICE, ...ERASE, '--key', REPORTER])
    assert.equal(noYes.code, 2, noYes.stderr)
    assert.match(oneLine(noYes.stderr), /needs a confirmation: pass --yes \(there is no terminal to ask on\)/)
    const notReporter = await flytrap(['audit', 'forget', ALICE, ...ERASE, '--key', OWNER, '--yes'])
    assert.equal(notReporter.code, 3, notReporter.stderr)
    assert.match(oneLine(notReporter.stderr), /is not a registered reporter/)
    const noKey = await flytrap(['audit', 'forget', ALICE, ...ERASE, '--yes'])
    assert.equal(noKey.code, 3, noKey.stderr)
    assert.match(oneLine(noKey.stderr), /signed with the reporter key: pass --key/)
    assert.equal(snapshot(), before, 'nothing was changed')
  })

  test('audit forget erases an address; every anchored root still verifies', async () => {
    const r = await flytrap(['audit', 'forget', ALICE, ...ERASE, '--key', REPORTER, '--yes', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const out = r.json<{ redacted: number; verify: { dir: string; ok: boolean; anchorsChecked: boolean; periodsVerified: number }[] }>()
    assert.deepEqual([out.redacted, out.verify.length, out.verify[0]!.dir, out.verify[0]!.ok, out.verify[0]!.anchorsChecked, out.verify[0]!.periodsVerified], [6, 1, '.', true, true, 3])
    // No file under the data directory names her any more: not the journal, not the scope indexes (stored
    // now for the periods concerned, her rows cut to keyHash and seqsDigest), nor anything else.
    const all = (readdirSync(dataDir, { recursive: true, withFileTypes: true }) as Dirent[]).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name))
    const files = all.map((f) => readFileSync(f, 'utf8')).join('')
    assert.doesNotMatch(files, new RegExp(ALICE.slice(2), 'i'))
    assert.doesNotMatch(files, /203\.0\.113\.7|alice-1/)
    assert.ok(!files.includes(`client:${ALICE.toLowerCase()}`))
    assert.match(files, new RegExp(BOB))
    const indexes = all.filter((f) => f.includes(`${join('journal', 'index')}/`))
    assert.ok(indexes.length >= 1, 'the scope index of every period with a redaction is stored')
    const rows = indexes.flatMap((f) => JSON.parse(readFileSync(f, 'utf8')) as { keyHash: string; key?: string }[])
    assert.ok(rows.some((row) => row.keyHash === keyHash(`client:${ALICE.toLowerCase()}`) && row.key === undefined), 'her row is kept as hashes only')
    assert.ok(rows.some((row) => row.key === `client:${BOB.toLowerCase()}`), 'other rows stay in clear')

    const again = await flytrap(['audit', 'verify', '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(again.json<{ ok: boolean; journal: { redacted: number } }>().journal.redacted, 6)
    const human = await flytrap(['audit', 'forget', ALICE, ...ERASE, '--key', REPORTER, '--yes'])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /✓ 0 entries redacted/)
    assert.match(human.stdout, /Not scrubbed:[\s\S]*anything already on chain/)

    // The erasure record: the entry after the 12, signed by the reporter.
    const recs = []
    for await (const x of readRecords(dataDir)) recs.push(x.record)
    const e = recs.at(-1)!
    assert.ok(!e.redacted && e.entry.kind === 'erasure' && e.seq === 13)
    const body = readErasure(e.entry.erasure)
    assert.ok(body.ok && body.recovered === new Wallet(REPORTER).address, 'a valid signature by the reporter')
    assert.deepEqual(body.body.redacts.map((x) => x[0]), [1, 3, 5, 7, 9, 11])
    assert.equal(body.body.basis, ERASE[1])
  })

  test('a scope index row edited on disk (after the forget): exit 7 naming index-mismatch and the period', async () => {
    const dir = join(journalDir(dataDir), 'index')
    const name = readdirSync(dir).sort()[0]!
    const file = join(dir, name)
    const original = readFileSync(file, 'utf8')
    const rows = JSON.parse(original) as { keyHash: string; seqsDigest: string; key?: string; seqs?: number[] }[]
    const i = rows.findIndex((r) => r.key === `client:${BOB.toLowerCase()}`)
    assert.ok(i >= 0)
    const seqs = rows[i]!.seqs!.slice(1)
    rows[i] = { ...rows[i]!, seqs, seqsDigest: seqsDigest(seqs) } // self-consistent, but not what the entries say
    writeFileSync(file, JSON.stringify(rows))
    try {
      const r = await flytrap(['audit', 'verify', '--json'])
      assert.equal(r.code, 7, r.stderr)
      const out = r.json<{ ok: boolean; anchors: { indexMismatched: number; periods: { status: string; indexKeyHash?: string }[] } }>()
      assert.equal(out.anchors.indexMismatched, 1)
      assert.ok(out.anchors.periods.some((p) => p.status === 'index-mismatch' && p.indexKeyHash === keyHash(`client:${BOB.toLowerCase()}`)))
      assert.match(r.stderr, new RegExp(`period .*: the scope index of this range is not the one of its entries: .*${name.replace('.', '\\.')}`))
    } finally {
      writeFileSync(file, original)
    }
    assert.equal((await flytrap(['audit', 'verify', '--json'])).code, 0)
  })

  test('a redaction no valid erasure record covers: exit 7 naming the line and seq (hand-made, edited t or redactedAt)', async () => {
    const file = join(journalDir(dataDir), 'seg-0000000000000001.jsonl')
    const original = readFileSync(file, 'utf8')
    const lines = original.split('\n')
    const cases: [string, (ls: string[]) => void, RegExp][] = [
      [
        'hand-made',
        (ls) => {
          const o = JSON.parse(ls[1]!) as { seq: number; t: number; leaf: string; prev: string } // Bob's refused subscribe, seq 2
          ls[1] = JSON.stringify({ seq: o.seq, t: o.t, redacted: true, redactedAt: Date.now(), erasure: 13, leaf: o.leaf, prev: o.prev })
        },
        /seg-0000000000000001\.jsonl:2: redacted entry seq 2 is not listed by erasure record seq 13/,
      ],
      ['edited t', (ls) => (ls[2] = ls[2]!.replace(/"t":(\d+)/, (_m, t: string) => `"t":${Number(t) + 1}`)), /:3: redacted entry seq 3 has t \d+, but erasure record seq 13 signed t \d+: its time was edited/],
      ['edited redactedAt', (ls) => (ls[2] = ls[2]!.replace(/"redactedAt":(\d+)/, '"redactedAt":1')), /:3: redacted entry seq 3 has redactedAt 1, but erasure record seq 13 signed \d+: it was edited/],
    ]
    for (const [what, change, message] of cases) {
      const ls = [...lines]
      change(ls)
      writeFileSync(file, ls.join('\n'))
      const r = await flytrap(['audit', 'verify'])
      assert.equal(r.code, 7, `${what}: ${r.stdout}${r.stderr}`)
      assert.match(oneLine(r.stderr), message, what)
      const j = await flytrap(['audit', 'verify', '--entry', what === 'hand-made' ? '2' : '3'])
      assert.equal(j.code, 7, `--entry, ${what}`)
    }
    writeFileSync(file, original)
    assert.equal((await flytrap(['audit', 'verify'])).code, 0)
  })

  test('on a terminal audit forget asks first: no changes nothing, yes erases', { skip: !existsSync('/usr/bin/script') && 'needs util-linux script' }, async () => {
    const copy = join(cwd, 'tty-copy')
    cpSync(dataDir, copy, { recursive: true })
    const seg = join(journalDir(copy), 'seg-0000000000000001.jsonl')
    const before = readFileSync(seg, 'utf8')
    const args = ['audit', 'forget', BOB, '--data-dir', copy, ...ERASE, '--key', REPORTER]
    const no = await onTty(args, 'n', { FLYTRAP_RPC: anvil.rpcUrl })
    assert.equal(no.code, 2, no.screen)
    assert.match(no.screen, /Erase 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65 from 6 journal entries/)
    assert.match(no.screen, /cancelled: nothing was changed/)
    assert.equal(readFileSync(seg, 'utf8'), before)
    const yes = await onTty(args, 'y', { FLYTRAP_RPC: anvil.rpcUrl })
    assert.equal(yes.code, 0, yes.screen)
    assert.match(yes.screen, /✓ 6 entries redacted/)
    assert.doesNotMatch(readFileSync(seg, 'utf8'), new RegExp(BOB.slice(2), 'i'))
  })

  test('an erasure record signed by a key that is not a reporter: exit 7', async () => {
    // A copy of the journal, "forgotten" with the owner's key straight through the library (as a forger would).
    const copy = join(cwd, 'forged-copy')
    cpSync(dataDir, copy, { recursive: true })
    await forgetSubject({ dataDir: copy, subject: BOB, signer: new Wallet(OWNER), basis: 'none', requestedBy: 'nobody' })
    const r = await flytrap(['audit', 'verify', '--data-dir', copy])
    assert.equal(r.code, 7, r.stdout + r.stderr)
    assert.match(oneLine(r.stderr), new RegExp(`erasure record seq 14 is not valid: it is signed by ${new Wallet(OWNER).address}, which is not a reporter this verification trusts`))
  })

  test('a tampered entry: exit 7 naming the file, the line and the seq', async () => {
    const file = join(journalDir(dataDir), 'seg-0000000000000001.jsonl')
    const lines = readFileSync(file, 'utf8').split('\n')
    assert.match(lines[9]!, /"seq":10,.*"outcome":"deny"/) // Bob's refused subscribe
    lines[9] = lines[9]!.replace('"outcome":"deny"', '"outcome":"allow"')
    writeFileSync(file, lines.join('\n'))

    const r = await binary(['audit', 'verify'])
    assert.equal(r.code, 7, r.stdout + r.stderr)
    assert.match(oneLine(r.stderr), /seg-0000000000000001\.jsonl:10: entry seq 10 was changed after it was written/)
    assert.match(r.stdout, /MISMATCH/)

    const j = await flytrap(['audit', 'verify', '--json'])
    assert.equal(j.code, 7)
    const out = j.json<{ ok: boolean; chain: { problems: { kind: string; file: string; line: number; seq: number; message: string }[] }; anchors: { mismatched: number } }>()
    assert.equal(out.ok, false)
    assert.deepEqual(out.chain.problems, [{ kind: 'content-altered', file: 'seg-0000000000000001.jsonl', line: 10, seq: 10, message: out.chain.problems[0]!.message }])
    assert.equal(out.anchors.mismatched, 1)

    const entry = await flytrap(['audit', 'verify', '--entry', '10'])
    assert.equal(entry.code, 7)
    assert.match(oneLine(entry.stderr), /entry seq 10 was changed/)
  })

  test('a period nobody anchored, past its deadline: exit 7 naming it; a forged meta.json reporter changes nothing', async () => {
    // A second proxy's journal: two entries ten minutes ago (its reporter was not anchoring yet), then two
    // periods anchored just now by the registered reporter (its sequence starts there).
    const other = join(cwd, 'proxy-2')
    const old = Math.floor((Date.now() - 600_000) / 2_000) * 2_000
    const c = { now: old }
    const j = await openJournal({ dataDir: other, periodMs: 2_000, now: () => c.now, flushIntervalMs: 1 })
    await j.append(traffic(0))
    await j.append(traffic(1))
    c.now = Math.floor((Date.now() - 10_000) / 2_000) * 2_000
    for (let i = 2; i < 6; i++) {
      await j.append(traffic(i))
      c.now += 1_000
    }
    const deployed = (await flytrap(['contract', 'info', '--json'])).json<{ address: string }>().address
    const second = ANVIL_DEV_KEYS[2]! // one anchor sequence per reporter key: the second proxy has its own
    assert.equal((await flytrap(['contract', 'reporter', 'add', new Wallet(second).address, '--reason', 'proxy eu-2', '--key', OWNER])).code, 0)
    const { provider } = await connect(anvil.rpcUrl)
    const reporter = new FlyTrapClient(deployed, new Wallet(second, provider))
    for (let k = j.periodOf(c.now - 4_000); k <= j.periodOf(c.now - 1_000); k++) await reporter.anchor(await indexedLink(j.dataDir, await j.periodRoot(k)))
    await j.close()
    provider.destroy()
    writeFileSync(join(journalDir(other), 'meta.json'), JSON.stringify({ version: 1, periodMs: 2_000, reporter: BOB }))

    const r = await flytrap(['audit', 'verify', '--data-dir', other, '--json'])
    assert.equal(r.code, 7, r.stdout + r.stderr)
    const out = r.json<{ ok: boolean; anchors: { reporters: string[]; unanchored: number; verified: number } }>()
    assert.deepEqual([out.ok, out.anchors.reporters, out.anchors.unanchored, out.anchors.verified], [false, [new Wallet(ANVIL_DEV_KEYS[2]!).address], 1, 2])
    assert.match(oneLine(r.stderr), /no anchor by 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC .*its 2 entries \(seq 1\.\.2\) are proven by nothing/)
    const human = await flytrap(['audit', 'verify', '--data-dir', other])
    assert.equal(human.code, 7)
    assert.match(human.stdout, /NOT ANCHORED/)
    // From where the sequence starts, everything is proven.
    const since = await flytrap(['audit', 'verify', '--data-dir', other, '--from', String(Math.floor(c.now / 1000) - 4)])
    assert.equal(since.code, 0, since.stdout + since.stderr)
    assert.equal((await flytrap(['audit', 'verify', '--data-dir', other, '--deadline', '1h'])).code, 0, 'with a deadline of an hour the old period is not due yet')
  })
})
