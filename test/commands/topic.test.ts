/**
 * The operator's story from the CLI, against a real anvil: deploy, register a topic with fees and countries,
 * allow and revoke a device, join by paying, withdraw — each with --json results and readable tables.
 * The commands run in-process (runInProcess); the deploy, a usage error with --json, an unreachable chain and
 * a missing deployment go through the real binary, so its exit codes and stdout stay tested end to end.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEYS, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { runCli, runInProcess, tempCwd } from '../helpers/cli.js'

const OWNER = ANVIL_DEV_KEYS[0]
const USER = ANVIL_DEV_KEYS[1]
const USER_ADDR = new Wallet(USER).address
const DEVICE = Wallet.createRandom().address

describe('topic commands against anvil', () => {
  let anvil: AnvilHandle
  let cwd: string
  let flytrap: (args: string[], env?: Record<string, string>) => ReturnType<typeof runInProcess>
  let binary: (args: string[], env?: Record<string, string>) => ReturnType<typeof runCli>

  before(async () => {
    anvil = await startAnvil()
    cwd = tempCwd()
    flytrap = (args, env) => runInProcess(args, { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, ...env } })
    binary = (args, env) => runCli(args, { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, ...env } })
    const deploy = await binary(['contract', 'deploy', '--key', OWNER, '--json'])
    assert.equal(deploy.code, 0, deploy.stderr)
    const d = deploy.json<{ address: string; chainId: number; block: number }>()
    assert.match(d.address, /^0x[0-9a-fA-F]{40}$/)
    assert.equal(d.chainId, 31337)
  })
  after(async () => anvil.stop())
  const anvilNonce = async (address: string): Promise<number> => {
    const res = await fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getTransactionCount', params: [address, 'latest'] }) })
    return Number(((await res.json()) as { result: string }).result)
  }

  test('contract info reads the recorded deployment without --contract', async () => {
    const r = await flytrap(['contract', 'info', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const info = r.json<{ admin: string; topicSlots: number }>()
    assert.equal(info.admin, new Wallet(OWNER).address)
    assert.equal(info.topicSlots, 0)
  })

  test('topic add with fees, countries and flags; list and show as tables and JSON', async () => {
    const add = await flytrap(['topic', 'add', 'sensors/temp', '--pub-fee', '0.001', '--sub-fee', '0.01', '--open', '--sensitive', '--country', 'gb', '--country', 'DE', '--reason', 'weather', '--key', OWNER, '--json'])
    assert.equal(add.code, 0, add.stderr)
    const { topic } = add.json<{ topic: { name: string; subFeeEth: string; pubFeeWei: string; countries: string[]; open: boolean; sensitive: boolean } }>()
    assert.deepEqual([topic.name, topic.subFeeEth, topic.pubFeeWei, topic.countries, topic.open, topic.sensitive], ['sensors/temp', '0.01', '1000000000000000', ['DE', 'GB'], true, true])

    const list = await flytrap(['topic', 'list'])
    assert.equal(list.code, 0, list.stderr)
    assert.match(list.stdout, /sensors\/temp/)
    assert.match(list.stdout, /DE GB/)
    assert.match(list.stdout, /┌/) // a cli-table3 table

    const listJson = (await flytrap(['topic', 'list', '--json'])).json<{ topics: { name: string }[] }>()
    assert.deepEqual(listJson.topics.map((t) => t.name), ['sensors/temp'])
  })

  test('allow with expiry, show lists the member, revoke removes it', async () => {
    const allow = await flytrap(['topic', 'allow', 'sensors/temp', DEVICE, '--pub', '--until', '2099-01-01', '--reason', 'sensor 17', '--key', OWNER, '--json'])
    assert.equal(allow.code, 0, allow.stderr)
    assert.deepEqual(allow.json<{ roles: string[]; expires: string }>(), { ...allow.json(), roles: ['publish'], expires: '2099-01-01T00:00:00Z' })

    const show = await flytrap(['topic', 'show', 'sensors/temp', '--json'])
    const members = show.json<{ members: { client: string; publish: boolean; subscribe: boolean }[] }>().members
    assert.deepEqual(members.find((m) => m.client === DEVICE), { client: DEVICE, publish: true, subscribe: false, pubExpiry: '2099-01-01T00:00:00Z', subExpiry: 'none' })

    const revoke = await flytrap(['topic', 'revoke', 'sensors/temp', DEVICE, '--reason', 'stolen', '--key', OWNER])
    assert.equal(revoke.code, 0, revoke.stderr)
    assert.match(revoke.stdout, /may no longer publish on sensors\/temp/) // what it held, not what it never had
    const after = (await flytrap(['topic', 'show', 'sensors/temp', '--json'])).json<{ members: { client: string; publish: boolean }[] }>()
    assert.equal(after.members.find((m) => m.client === DEVICE)?.publish, false)
  })

  test('revoke of a non-member (or of a role it lacks) is refused before any transaction', async () => {
    const owner = new Wallet(OWNER).address
    const nonce = await anvilNonce(owner)
    const stranger = await flytrap(['topic', 'revoke', 'sensors/temp', Wallet.createRandom().address, '--key', OWNER, '--json'])
    assert.equal(stranger.code, 2, stranger.stdout)
    assert.match(stranger.json<{ error: { message: string } }>().error.message, /is not a member of sensors\/temp: nothing to revoke/)
    // DEVICE's publish grant was revoked above: revoking it again is refused too.
    const again = await flytrap(['topic', 'revoke', 'sensors/temp', DEVICE, '--pub', '--key', OWNER])
    assert.equal(again.code, 2, again.stderr)
    assert.equal(await anvilNonce(owner), nonce, 'a transaction was sent')
  })

  test('bad input is refused before any RPC: short address, bad checksum, bad owner, invalid filter, unassigned country', async () => {
    const cases: [string[], RegExp][] = [
      [['topic', 'list', '--contract', '0x1234'], /--contract "0x1234" is not an Ethereum address/],
      [['topic', 'list', '--contract', '0x5FbDB2315678afecb367f032d93F642f64180Aa3'], /wrong checksum/],
      [['topic', 'list', '--owner', 'bob'], /--owner "bob" is not an Ethereum address/],
      [['topic', 'show', 'a/#/b'], /is not a valid MQTT topic or filter/],
      [['topic', 'add', 'x/y', '--country', 'XX', '--key', OWNER], /XX is not an assigned ISO 3166-1 alpha-2/],
      [['topic', 'add', 'x/y', '--period', '30', '--key', OWNER], /--period "30" has no unit/],
    ]
    for (const [args, message] of cases) {
      // An unreachable RPC: a check that waited for the chain would fail with exit 4 instead.
      const r = await flytrap([...args, '--rpc', 'http://127.0.0.1:9', '--json'])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(r.json<{ error: { message: string } }>().error.message, message)
    }
  })

  test('topic remove without a terminal needs --yes; nothing is sent until then', async () => {
    assert.equal((await flytrap(['topic', 'add', 'retired/x', '--key', OWNER])).code, 0)
    const owner = new Wallet(OWNER).address
    const nonce = await anvilNonce(owner)
    const refused = await flytrap(['topic', 'remove', 'retired/x', '--key', OWNER, '--json'])
    assert.equal(refused.code, 2)
    assert.match(refused.json<{ error: { message: string; suggestions?: string[] } }>().error.message, /refused without confirmation/)
    assert.equal(await anvilNonce(owner), nonce)
    const removed = await flytrap(['topic', 'remove', 'retired/x', '--yes', '--key', OWNER, '--json'])
    assert.equal(removed.code, 0, removed.stderr)
    assert.equal(await anvilNonce(owner), nonce + 1)
  })

  test('join pays exactly the fee to the owner, who withdraws it', async () => {
    const join = await flytrap(['topic', 'join', 'sensors/temp', '--sub', '--key', USER, '--json'])
    assert.equal(join.code, 0, join.stderr)
    const j = join.json<{ client: string; paidEth: string; expires: string }>()
    assert.deepEqual([j.client, j.paidEth, j.expires], [USER_ADDR, '0.01', 'never'])

    const again = await flytrap(['topic', 'join', 'sensors/temp', '--sub', '--key', USER, '--json'])
    assert.equal(again.code, 5)
    assert.equal(again.json<{ error: { code: string } }>().error.code, 'AlreadyMember')

    const w = await flytrap(['topic', 'withdraw', '--key', OWNER, '--json'])
    assert.equal(w.code, 0, w.stderr)
    assert.equal(w.json<{ amountWei: string }>().amountWei, '10000000000000000')
    const none = await flytrap(['topic', 'withdraw', '--key', OWNER])
    assert.equal(none.code, 5)
    assert.match(none.stderr, /nothing to withdraw/)
  })

  test('fee, geo and flags change a topic', async () => {
    assert.equal((await flytrap(['topic', 'fee', 'sensors/temp', '--sub-fee', '0.02', '--key', OWNER])).code, 0)
    assert.equal((await flytrap(['topic', 'geo', 'sensors/temp', '--anywhere', '--key', OWNER])).code, 0)
    assert.equal((await flytrap(['topic', 'flags', 'sensors/temp', '--closed', '--no-sensitive', '--key', OWNER])).code, 0)
    const t = (await flytrap(['topic', 'show', 'sensors/temp', '--json'])).json<{ topic: { subFeeEth: string; pubFeeEth: string; countries: string[]; open: boolean; sensitive: boolean } }>().topic
    assert.deepEqual([t.subFeeEth, t.pubFeeEth, t.countries, t.open, t.sensitive], ['0.02', '0.001', [], false, false])
    const closed = await flytrap(['topic', 'join', 'sensors/temp', '--pub', '--key', ANVIL_DEV_KEYS[2]])
    assert.equal(closed.code, 5)
    assert.match(closed.stderr, /closed/)
  })

  test('only the owner grants: a non-owner allow shows the contract reason', async () => {
    const r = await flytrap(['topic', 'allow', 'sensors/temp', DEVICE, '--sub', '--key', USER])
    assert.equal(r.code, 5)
    assert.match(r.stderr, /only the topic owner can do this \(NotTopicOwner\)/)
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/) // no stack trace
  })

  test('reporter add/remove by the admin only', async () => {
    const reporter = Wallet.createRandom().address
    const add = await flytrap(['contract', 'reporter', 'add', reporter, '--reason', 'proxy eu-1', '--key', OWNER, '--json'])
    assert.equal(add.code, 0, add.stderr)
    const denied = await flytrap(['contract', 'reporter', 'remove', reporter, '--key', USER])
    assert.equal(denied.code, 5)
    assert.match(denied.stderr, /NotAdmin/)
    assert.equal((await flytrap(['contract', 'reporter', 'remove', reporter, '--key', OWNER])).code, 0)
  })

  describe('namespaces: first registered wins', () => {
    const STRANGER = ANVIL_DEV_KEYS[2]
    const OWNER_ADDR = new Wallet(OWNER).address
    /** oclif wraps long errors over ' ›   '-prefixed lines: one line, single spaces. */
    const flat = (stderr: string) => stderr.replace(/\s*\n\s*›\s*/g, ' ').replace(/\s+/g, ' ')

    test("topic add '#' by a stranger is refused, naming each overlapping registration and its owner; nothing is sent", async () => {
      const nonce = await anvilNonce(new Wallet(STRANGER).address)
      for (const filter of ['#', 'sensors/+', 'sensors/#', '+/temp']) {
        const r = await flytrap(['topic', 'add', filter, '--key', STRANGER])
        assert.equal(r.code, 5, `${filter}: ${r.stdout}\n${r.stderr}`)
        assert.match(flat(r.stderr), new RegExp(`topic add refused: "${filter.replace(/[+#]/g, '\\$&')}" would overlap a registration of another owner \\(first registered wins\\)`))
        assert.match(flat(r.stderr), new RegExp(`sensors/temp \\(owner ${OWNER_ADDR}\\)`))
        assert.doesNotMatch(r.stderr, /\n\s+at /)
      }
      const json = await flytrap(['topic', 'add', '#', '--key', STRANGER, '--json'])
      assert.equal(json.code, 5)
      assert.equal(json.json<{ error: { code: string } }>().error.code, 'NamespaceOccupied')
      assert.equal(await anvilNonce(new Wallet(STRANGER).address), nonce, 'refused at gas estimation: no transaction was sent')
      const list = (await flytrap(['topic', 'list', '--json'])).json<{ topics: { name: string }[] }>()
      assert.deepEqual(list.topics.map((t) => t.name), ['sensors/temp'])
    })

    test('a name inside another owner\'s filter is refused; names beside it are not', async () => {
      assert.equal((await flytrap(['topic', 'add', 'vault/#', '--key', OWNER])).code, 0)
      const r = await flytrap(['topic', 'add', 'vault/data', '--key', STRANGER])
      assert.equal(r.code, 5)
      assert.match(flat(r.stderr), new RegExp(`vault/# \\(owner ${OWNER_ADDR}\\)`))
      assert.equal((await flytrap(['topic', 'add', 'vaults/data', '--key', STRANGER])).code, 0)
    })

    test('topic transfer --with moves a filter and the names under it together', async () => {
      assert.equal((await flytrap(['topic', 'add', 'vault/data', '--key', OWNER])).code, 0)
      const alone = await flytrap(['topic', 'transfer', 'vault/#', USER_ADDR, '--key', OWNER])
      assert.equal(alone.code, 5)
      assert.match(flat(alone.stderr), new RegExp(`topic transfer refused: "vault/#" would overlap a registration of another owner[^]*vault/data \\(owner ${OWNER_ADDR}\\)`))
      const both = await flytrap(['topic', 'transfer', 'vault/#', USER_ADDR, '--with', 'vault/data', '--key', OWNER, '--json'])
      assert.equal(both.code, 0, both.stderr)
      assert.deepEqual(both.json<{ topic: string; with: string[]; newOwner: string }>(), { ...both.json(), topic: 'vault/#', with: ['vault/data'], newOwner: USER_ADDR })
      const show = (await flytrap(['topic', 'show', 'vault/data', '--json'])).json<{ topic: { owner: string } }>()
      assert.equal(show.topic.owner, USER_ADDR)
    })
  })

  describe('bad input: one line, non-zero exit, a suggestion, nothing sent', () => {
    const cases: [string, string[], number, RegExp][] = [
      ['bad filter', ['topic', 'add', 'a/#/b'], 2, /not a valid MQTT topic or filter/],
      ['shared prefix', ['topic', 'add', '$share/g/a'], 2, /shared subscription/],
      ['bad fee', ['topic', 'add', 'x', '--sub-fee', 'ten'], 2, /not an amount of ETH/],
      ['sub-gwei fee', ['topic', 'add', 'x', '--sub-fee', '0.0000000001'], 2, /whole number of gwei/],
      ['bad country', ['topic', 'add', 'x', '--country', 'GBR'], 2, /ISO 3166-1 alpha-2/],
      ['bad address', ['topic', 'allow', 'sensors/temp', '0x1234', '--pub'], 2, /not an Ethereum address/],
      ['bad date', ['topic', 'allow', 'sensors/temp', DEVICE, '--pub', '--until', 'soonish'], 2, /not a date/],
      ['past date', ['topic', 'allow', 'sensors/temp', DEVICE, '--pub', '--until', '2001-01-01'], 2, /in the past/],
      ['no role', ['topic', 'allow', 'sensors/temp', DEVICE], 2, /choose a role/],
      ['bad key', ['topic', 'add', 'x', '--key', '0xnotakey'], 6, /neither a hex private key nor a keystore/],
      ['missing arg without a TTY', ['topic', 'show'], 2, /missing TOPIC/],
      ['unknown flag', ['topic', 'list', '--bogus'], 2, /Nonexistent flag: --bogus/],
      ['unreachable chain', ['topic', 'list', '--rpc', 'http://127.0.0.1:9'], 4, /cannot reach the chain/],
    ]
    // These two also through the binary: oclif's parse error with its help, and a failure to connect.
    const throughBinary = new Set(['unknown flag', 'unreachable chain'])
    for (const [name, args, exit, message] of cases) {
      test(name, async () => {
        const run = throughBinary.has(name) ? binary : flytrap
        const r = await run([...args, ...(args.includes('--key') ? [] : ['--key', OWNER])])
        assert.equal(r.code, exit, `${r.stdout}\n${r.stderr}`)
        assert.match(r.stderr, message)
        assert.doesNotMatch(r.stderr, /\n\s+at /) // no stack trace
      })
    }

    test('--json errors are JSON with the exit code', async () => {
      const r = await binary(['topic', 'add', 'a+', '--key', OWNER, '--json'])
      assert.equal(r.code, 2)
      assert.equal(r.json<{ error: { oclif: { exit: number } } }>().error.oclif.exit, 2)
    })

    test('no contract recorded for the chain', async () => {
      const r = await runCli(['topic', 'list'], { cwd: tempCwd(), env: { FLYTRAP_RPC: anvil.rpcUrl } })
      assert.equal(r.code, 3)
      assert.match(r.stderr, /no FlyTrap contract recorded for chain 31337/)
    })
  })
})
