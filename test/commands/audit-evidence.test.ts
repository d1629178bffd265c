/**
 * `audit export` / `audit check` flags: bad input is a usage error (exit 2) before any network call (the RPC
 * URL points at a closed port, so reaching the network would be exit 4 instead). Needs dist/. In-process, but
 * for the exit 7 of a bundle that is not one, which also goes through the binary.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, runInProcess, tempCwd } from '../helpers/cli.js'

const DEAD = 'http://127.0.0.1:9'
const KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'

test('audit export: usage errors before the chain is touched', async () => {
  const cwd = tempCwd()
  const base = ['audit', 'export', '--rpc', DEAD, '--contract', '0x5FbDB2315678afecb367f032d93F642f64180aa3', '--key', KEY, '--out', 'b.json', '--data-dir', cwd]
  for (const [extra, why] of [
    [['--from', '1h', '--topic', 'a/b', '--client', '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'], /one topic or one client/],
    [['--from', '1h', '--topic', 'a/#/b'], /--topic/],
    [['--from', '1h', '--client', 'not-an-address'], /client/],
    [['--from', 'yesterday-ish'], /./],
    [['--from', '1h', '--to', '2h'], /must be after/],
  ] as const) {
    const r = await runInProcess([...base, ...extra], { cwd })
    assert.equal(r.code, 2, `${extra.join(' ')}: exit ${r.code}\n${r.stderr}`)
    assert.match(r.stderr, why)
  }
})

test('audit check: a missing file and --offline with --rpc are usage errors; garbage is exit 7; an unreachable node is exit 4', async () => {
  const cwd = tempCwd()
  writeFileSync(join(cwd, 'junk.json'), '{"format":"something else"}')
  writeFileSync(join(cwd, 'notjson.json'), 'hello')
  assert.equal((await runInProcess(['audit', 'check', 'missing.json', '--offline'], { cwd })).code, 2)
  assert.equal((await runInProcess(['audit', 'check', 'junk.json', '--offline', '--rpc', DEAD], { cwd })).code, 2)
  const junk = await runInProcess(['audit', 'check', 'junk.json', '--offline', '--json'], { cwd })
  assert.equal(junk.code, 7)
  assert.equal(junk.json<{ ok: boolean; firstFailure: { record: string } }>().firstFailure.record, 'bundle')
  // A verification failure reported without an error (process.exitCode): the binary's exit status too.
  const viaBinary = await runCli(['audit', 'check', 'notjson.json', '--offline'], { cwd })
  assert.equal(viaBinary.code, 7, viaBinary.stderr)
  assert.equal((await runInProcess(['audit', 'check', 'notjson.json', '--offline'], { cwd })).code, 7)
  assert.equal((await runInProcess(['audit', 'check', 'junk.json', '--rpc', DEAD], { cwd })).code, 4)
})
