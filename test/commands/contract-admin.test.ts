/**
 * Contract administration against a real anvil: reporter list, idempotent reporter add/remove (no second
 * transaction: the admin's nonce does not move), the two-step admin transfer (offer, accept by the pending
 * admin only, the old admin loses the role) and the registration fee (show, set, refused for a non-admin).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEYS, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { runInProcess, tempCwd } from '../helpers/cli.js'

const ADMIN = ANVIL_DEV_KEYS[0]
const NEXT = ANVIL_DEV_KEYS[1]
const STRANGER = ANVIL_DEV_KEYS[2]
const addr = (k: string) => new Wallet(k).address

describe('contract administration against anvil', () => {
  let anvil: AnvilHandle
  let flytrap: (args: string[]) => ReturnType<typeof runInProcess>
  const nonce = async (address: string): Promise<number> => {
    const res = await fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getTransactionCount', params: [address, 'latest'] }) })
    return Number(((await res.json()) as { result: string }).result)
  }

  before(async () => {
    anvil = await startAnvil()
    const cwd = tempCwd()
    flytrap = (args) => runInProcess(args, { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl } })
    const deploy = await flytrap(['contract', 'deploy', '--key', ADMIN, '--json'])
    assert.equal(deploy.code, 0, deploy.stderr)
  })
  after(async () => anvil.stop())

  test('reporter add is idempotent and reporter list shows registered and removed reporters', async () => {
    const r1 = Wallet.createRandom().address
    const r2 = Wallet.createRandom().address
    const empty = await flytrap(['contract', 'reporter', 'list', '--json'])
    assert.equal(empty.code, 0, empty.stderr)
    assert.deepEqual(empty.json<{ reporters: string[] }>().reporters, [])

    for (const r of [r1, r2]) assert.equal((await flytrap(['contract', 'reporter', 'add', r, '--key', ADMIN])).code, 0)
    const before = await nonce(addr(ADMIN))
    const again = await flytrap(['contract', 'reporter', 'add', r1, '--key', ADMIN, '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(again.json(), { reporter: r1, changed: false, tx: null })
    const human = await flytrap(['contract', 'reporter', 'add', r1, '--key', ADMIN])
    assert.match(human.stdout, /registered reporter already: nothing sent/)
    assert.equal(await nonce(addr(ADMIN)), before, 'a second transaction was sent')

    assert.equal((await flytrap(['contract', 'reporter', 'remove', r2, '--key', ADMIN])).code, 0)
    const removedAgain = await flytrap(['contract', 'reporter', 'remove', r2, '--key', ADMIN, '--json'])
    assert.equal(removedAgain.json<{ changed: boolean }>().changed, false)
    assert.equal(await nonce(addr(ADMIN)), before + 1)

    const list = await flytrap(['contract', 'reporter', 'list', '--json'])
    assert.deepEqual(list.json<{ reporters: string[]; removed: string[] }>(), { ...list.json(), reporters: [r1], removed: [r2] })
    const table = await flytrap(['contract', 'reporter', 'list'])
    assert.match(table.stdout, new RegExp(`${r1}.*registered`))
    assert.match(table.stdout, new RegExp(`${r2}.*removed`))
  })

  test('registration fee: show, set (admin only), unchanged sends nothing, bad amounts refused', async () => {
    const show = await flytrap(['contract', 'fee', '--json'])
    assert.equal(show.code, 0, show.stderr)
    assert.equal(show.json<{ registrationFeeEth: string }>().registrationFeeEth, '0')
    const set = await flytrap(['contract', 'fee', '0.05', '--key', ADMIN, '--json'])
    assert.equal(set.code, 0, set.stderr)
    assert.equal(set.json<{ registrationFeeWei: string }>().registrationFeeWei, '50000000000000000')
    assert.equal((await flytrap(['contract', 'info', '--json'])).json<{ registrationFeeEth: string }>().registrationFeeEth, '0.05')
    const n = await nonce(addr(ADMIN))
    const same = await flytrap(['contract', 'fee', '0.05', '--key', ADMIN, '--json'])
    assert.equal(same.json<{ tx: unknown }>().tx, null)
    assert.equal(await nonce(addr(ADMIN)), n)
    const denied = await flytrap(['contract', 'fee', '1', '--key', STRANGER])
    assert.equal(denied.code, 5)
    assert.match(denied.stderr, /NotAdmin/)
    const bad = await flytrap(['contract', 'fee', '-1', '--json'])
    assert.equal(bad.code, 2)
  })

  test('admin transfer: offer, only the pending admin accepts, the old admin loses the role', async () => {
    const offer = await flytrap(['contract', 'admin', 'transfer', addr(NEXT), '--key', ADMIN, '--json'])
    assert.equal(offer.code, 0, offer.stderr)
    assert.equal((await flytrap(['contract', 'info', '--json'])).json<{ pendingAdmin: string }>().pendingAdmin, addr(NEXT))

    const n = await nonce(addr(STRANGER))
    const wrong = await flytrap(['contract', 'admin', 'accept', '--key', STRANGER, '--json'])
    assert.equal(wrong.code, 2)
    assert.match(wrong.json<{ error: { message: string } }>().error.message, /is not the pending admin/)
    assert.equal(await nonce(addr(STRANGER)), n, 'a refused accept sent a transaction')

    const accept = await flytrap(['contract', 'admin', 'accept', '--key', NEXT, '--json'])
    assert.equal(accept.code, 0, accept.stderr)
    assert.deepEqual(accept.json<{ previousAdmin: string; admin: string }>(), { ...accept.json(), previousAdmin: addr(ADMIN), admin: addr(NEXT) })
    const info = (await flytrap(['contract', 'info', '--json'])).json<{ admin: string; pendingAdmin: string | null }>()
    assert.deepEqual([info.admin, info.pendingAdmin], [addr(NEXT), null])
    const oldAdmin = await flytrap(['contract', 'fee', '0', '--key', ADMIN])
    assert.equal(oldAdmin.code, 5)
    assert.match(oldAdmin.stderr, /NotAdmin/)
    const noneLeft = await flytrap(['contract', 'admin', 'accept', '--key', NEXT, '--json'])
    assert.match(noneLeft.json<{ error: { message: string } }>().error.message, /no admin transfer is pending/)
  })
})
