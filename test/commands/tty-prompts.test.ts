/**
 * Prompts on a real pseudo-terminal (test/helpers/tty.ts): a short keystore password asks again, `topic
 * remove` asks for confirmation (no → nothing sent), `topic allow` without --pub/--sub asks for the roles.
 * The same commands without a terminal refuse (topic.test.ts, device.test.ts).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEYS, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { runInProcess, tempCwd } from '../helpers/cli.js'
import { runOnTty } from '../helpers/tty.js'

const OWNER = ANVIL_DEV_KEYS[0]

describe('prompts on a terminal', () => {
  let anvil: AnvilHandle
  let cwd: string
  before(async () => {
    anvil = await startAnvil()
    cwd = tempCwd()
    const deploy = await runInProcess(['contract', 'deploy', '--key', OWNER, '--json'], { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl } })
    assert.equal(deploy.code, 0, deploy.stderr)
    assert.equal((await runInProcess(['topic', 'add', 'tty/x', '--key', OWNER], { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl } })).code, 0)
  })
  after(async () => anvil.stop())
  const env = () => ({ FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_KEY_PASSWORD: undefined })
  const exists = async (name: string) => (await runInProcess(['topic', 'show', name, '--json'], { cwd, env: env() })).code === 0

  test('device keygen: a short password asks again instead of failing', async () => {
    const out = join(cwd, 'dev.json')
    const r = await runOnTty(['device', 'keygen', '--out', out], { cwd, env: env(), steps: [['Keystore password', 'short\r'], ['try again[\\s\\S]*Keystore password', 'long enough 1\r'], ['Repeat password', 'long enough 1\r']] })
    assert.equal(r.code, 0, r.output)
    assert.deepEqual(r.pending, [])
    assert.match(r.output, /use a password of at least 8 characters: try again/)
    assert.ok(existsSync(out))
  })

  test('topic remove: "no" cancels and sends nothing; "yes" removes', async () => {
    const no = await runOnTty(['topic', 'remove', 'tty/x', '--key', OWNER], { cwd, env: env(), steps: [['Remove tty/x\\?', 'n\r']] })
    assert.equal(no.code, 2, no.output)
    assert.match(no.output, /cancelled: nothing was changed/)
    assert.ok(await exists('tty/x'))
    const yes = await runOnTty(['topic', 'remove', 'tty/x', '--key', OWNER], { cwd, env: env(), steps: [['Remove tty/x\\?', 'y\r']] })
    assert.equal(yes.code, 0, yes.output)
    assert.ok(!(await exists('tty/x')))
  })

  test('topic allow without --pub/--sub asks for the roles', async () => {
    assert.equal((await runInProcess(['topic', 'add', 'tty/y', '--key', OWNER], { cwd, env: env() })).code, 0)
    const device = Wallet.createRandom().address
    const r = await runOnTty(['topic', 'allow', 'tty/y', device, '--key', OWNER], { cwd, env: env(), steps: [['Roles', ' \r']] })
    assert.equal(r.code, 0, r.output)
    const show = await runInProcess(['topic', 'show', 'tty/y', '--json'], { cwd, env: env() })
    const m = show.json<{ members: { client: string; publish: boolean; subscribe: boolean }[] }>().members.find((x) => x.client === device)
    assert.deepEqual([m?.publish, m?.subscribe], [true, false])
  })
})
