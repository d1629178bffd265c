/**
 * The in-process runner (test/helpers/cli.ts runInProcess) is what most command tests trust: it must print
 * and exit as the binary does, and leave the test process as it found it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { runCli, runInProcess, tempCwd } from '../helpers/cli.js'

const OFFLINE = ['--chain-id', '31337', '--contract', '0x5FbDB2315678afecb367f032d93F642f64180aa3', '--rpc', 'http://127.0.0.1:9']

test('the same exit code, stdout and stderr as bin/run.js: --json success, a parse error with help, a verification failure, a user error', async () => {
  const cwd = tempCwd()
  writeFileSync(join(cwd, 'notjson.json'), 'hello')
  const cases = [
    ['device', 'sign', '--key', ANVIL_DEV_KEYS[1]!, '--client-id', 'parity 1', '--expires', '2099-01-01', ...OFFLINE, '--json'],
    ['topic', 'list', '--bogus'],
    ['audit', 'check', 'notjson.json', '--offline'],
    ['device', 'sign', '--client-id', 'a', ...OFFLINE],
  ]
  const codes = []
  for (const args of cases) {
    const env = { FLYTRAP_KEY: undefined }
    const [bin, inProcess] = [await runCli(args, { cwd, env }), await runInProcess(args, { cwd, env })]
    assert.deepEqual({ code: inProcess.code, stdout: inProcess.stdout, stderr: inProcess.stderr }, { code: bin.code, stdout: bin.stdout, stderr: bin.stderr }, args.join(' '))
    codes.push(inProcess.code)
  }
  assert.deepEqual(codes, [0, 2, 7, 3])
})

test('each run has its own cwd, env and exit code, and gives the process back as it was', async () => {
  const here = process.cwd()
  const cwd = tempCwd()
  process.env.FLYTRAP_KEY_PASSWORD = 'from the test process'
  try {
    // The keystore lands in the run's cwd, encrypted with the run's password; the test process keeps its own.
    const made = await runInProcess(['device', 'keygen', '--out', 'k.json', '--json'], { cwd, env: { FLYTRAP_KEY_PASSWORD: 'for this run' } })
    assert.equal(made.code, 0, made.stderr)
    assert.equal(made.json<{ keystore: string }>().keystore, join(cwd, 'k.json'))
    assert.equal(process.env.FLYTRAP_KEY_PASSWORD, 'from the test process')
    const wrong = await runInProcess(['device', 'sign', '--key', 'k.json', '--client-id', 'c', ...OFFLINE], { cwd })
    assert.equal(wrong.code, 6, 'the password of the test process does not open it')
    assert.match(wrong.stderr, /wrong password/)
    const right = await runInProcess(['device', 'sign', '--key', 'k.json', '--client-id', 'c', ...OFFLINE], { cwd, env: { FLYTRAP_KEY_PASSWORD: 'for this run' } })
    assert.equal(right.code, 0, right.stderr)
    const gone = await runInProcess(['device', 'sign', '--key', 'k.json', '--client-id', 'c', ...OFFLINE], { env: { FLYTRAP_KEY_PASSWORD: 'for this run' } })
    assert.equal(gone.code, 6, 'without cwd the run is in the test process directory, where k.json is not')
  } finally {
    delete process.env.FLYTRAP_KEY_PASSWORD
  }
  assert.equal(process.cwd(), here)
  assert.equal(process.exitCode, undefined, 'a failed run does not fail the test file')
})

test('overlapping runs are serialised: each gets its own output', async () => {
  const runs = await Promise.all(['one', 'two', 'three'].map((id) => runInProcess(['device', 'sign', '--key', ANVIL_DEV_KEYS[1]!, '--client-id', id, ...OFFLINE, '--json'])))
  assert.deepEqual(runs.map((r) => r.json<{ clientId: string }>().clientId), ['one', 'two', 'three'])
  assert.deepEqual(runs.map((r) => (r.result as { clientId: string }).clientId), ['one', 'two', 'three'])
})
