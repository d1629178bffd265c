/**
 * The in-process runner (test/helpers/cli.ts runInProcess) is what most command tests trust: it must print
 * and exit as the binary does, and leave the test process as it found it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { runCli, runInProcess, tempCwd } from '../helpers/cli.js'

const OFFLINE = ['--chain-id', '31337', '--contract', '0x5FbDB2315678afecb367f032d93F642f64180aa3', '--rpc', 'http://127.0.0.1:9']

test('the same exit code, stdout and stderr as bin/run.js: --json success, a parse error with help, a verification failure, a user error', async () => {
  const cwd = tempCwd()
  writeFileSync(join(cwd, 'notjson.json'), 'hello')
  // An absolute expiry (a relative one would differ by a second between the two runs), within the 366-day cap.
  const expires = new Date(Date.now() + 200 * 86_400_000).toISOString().slice(0, 10)
  const cases = [
    ['device', 'sign', '--key', ANVIL_DEV_KEYS[1]!, '--client-id', 'parity 1', '--expires', expires, ...OFFLINE, '--json'],
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
  writeFileSync(join(cwd, 'notjson.json'), 'hello')
  const address = async (env?: Record<string, string | undefined>) => (await runInProcess(['device', 'sign', '--client-id', 'c', ...OFFLINE, '--json'], { env })).json<{ address: string }>().address
  process.env.FLYTRAP_KEY = ANVIL_DEV_KEYS[2]
  try {
    assert.equal(await address({ FLYTRAP_KEY: ANVIL_DEV_KEYS[1] }), new Wallet(ANVIL_DEV_KEYS[1]!).address, 'the run sees its own env')
    assert.equal(process.env.FLYTRAP_KEY, ANVIL_DEV_KEYS[2], 'and the test process keeps its own')
    assert.equal(await address(), new Wallet(ANVIL_DEV_KEYS[2]!).address, 'the rest of the env is inherited, as by a child')
    const none = await runInProcess(['device', 'sign', '--client-id', 'c', ...OFFLINE], { env: { FLYTRAP_KEY: undefined } })
    assert.equal(none.code, 3, 'an env var can be left out of a run')
    assert.equal(process.env.FLYTRAP_KEY, ANVIL_DEV_KEYS[2])
  } finally {
    delete process.env.FLYTRAP_KEY
  }
  // A relative path is read from the run's cwd: found there (not a bundle: exit 7), missing here (usage: exit 2).
  assert.equal((await runInProcess(['audit', 'check', 'notjson.json', '--offline'], { cwd })).code, 7)
  assert.equal(process.cwd(), here)
  assert.equal((await runInProcess(['audit', 'check', 'notjson.json', '--offline'])).code, 2)
  assert.equal(process.exitCode, undefined, 'a failed run does not fail the test file')
})

test('overlapping runs are serialised: each gets its own output', async () => {
  const runs = await Promise.all(['one', 'two', 'three'].map((id) => runInProcess(['device', 'sign', '--key', ANVIL_DEV_KEYS[1]!, '--client-id', id, ...OFFLINE, '--json'])))
  assert.deepEqual(runs.map((r) => r.json<{ clientId: string }>().clientId), ['one', 'two', 'three'])
  assert.deepEqual(runs.map((r) => (r.result as { clientId: string }).clientId), ['one', 'two', 'three'])
})

test('a run stuck waiting fails after timeoutMs, gives the process back, and holds neither the next run nor the exit', async () => {
  // A "node" that accepts and never answers: the command waits on it (its own request timeout is minutes).
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => sockets.add(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const rpc = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  const here = process.cwd()
  try {
    await assert.rejects(runInProcess(['topic', 'list', '--rpc', rpc, '--contract', OFFLINE[3]!], { cwd: tempCwd(), env: { FLYTRAP_RPC: 'set for the run' }, timeoutMs: 1_500 }), /timed out in-process after 1500 ms/)
    assert.equal(process.cwd(), here)
    assert.equal(process.env.FLYTRAP_RPC, undefined)
    const next = await runInProcess(['device', 'sign', '--key', ANVIL_DEV_KEYS[1]!, '--client-id', 'after', ...OFFLINE, '--json'])
    assert.equal(next.json<{ clientId: string }>().clientId, 'after', 'the next run runs, and its output is captured')
  } finally {
    for (const s of sockets) s.destroy()
    server.close()
  }
})
