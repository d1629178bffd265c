/**
 * `flytrap contract deploy` never silently replaces the deployment recorded for a chain: a second deploy is
 * refused (exit 2, naming the recorded contract) until --force, which says what it replaced; a recorded
 * contract whose code is gone (a reset chain) is replaced without --force, and the result says so.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEYS, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { runCli, tempCwd } from '../helpers/cli.js'

interface Deployed {
  address: string
  block: number
  replaced: { address: string; block: number; live: boolean } | null
}

describe('contract deploy and the recorded deployment', () => {
  let anvil: AnvilHandle
  let cwd: string
  const flytrap = (args: string[]) => runCli(args, { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined, FLYTRAP_CONTRACT: undefined } })
  const recorded = () => (JSON.parse(readFileSync(join(cwd, '.flytrap', 'deployments.json'), 'utf8')) as Record<string, { address: string }>)['31337']?.address

  before(async () => {
    anvil = await startAnvil()
    cwd = tempCwd('flytrap-deploy-')
  })
  after(async () => anvil.stop())

  let first: Deployed
  test('the first deploy records the contract and replaced nothing', async () => {
    const r = await flytrap(['contract', 'deploy', '--key', ANVIL_DEV_KEYS[0], '--json'])
    assert.equal(r.code, 0, r.stderr)
    first = r.json<Deployed>()
    assert.equal(first.replaced, null)
    assert.equal(recorded(), first.address)
  })

  test('a second deploy for the same chain is refused without --force, names the recorded contract and sends nothing', async () => {
    const admin = new Wallet(ANVIL_DEV_KEYS[0])
    const nonce = async () => Number(((await (await fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getTransactionCount', params: [admin.address, 'latest'] }) })).json()) as { result: string }).result)
    const before = await nonce()
    const r = await flytrap(['contract', 'deploy', '--key', ANVIL_DEV_KEYS[0]])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    const flat = r.stderr.replace(/\s*\n ›\s*/g, ' ')
    assert.match(flat, new RegExp(`already recorded for chain 31337: ${first.address} \\(block ${first.block}\\)`))
    assert.match(flat, /pass --force/)
    assert.equal(recorded(), first.address, 'deployments.json is unchanged')
    assert.equal(await nonce(), before, 'no transaction was sent')
  })

  test('--force deploys a new contract, records it and says which one it replaced', async () => {
    const r = await flytrap(['contract', 'deploy', '--key', ANVIL_DEV_KEYS[0], '--force'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`replaced\\s.*${first.address} \\(block ${first.block}, still on chain\\)`))
    const now = recorded()!
    assert.notEqual(now, first.address)
  })

  test('a recorded contract that is no longer on chain (a reset chain) is replaced without --force, and the result says so', async () => {
    const file = join(cwd, '.flytrap', 'deployments.json')
    const all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { address: string }>
    const gone = Wallet.createRandom().address
    all['31337'] = { ...all['31337']!, address: gone }
    writeFileSync(file, JSON.stringify(all))
    const r = await flytrap(['contract', 'deploy', '--key', ANVIL_DEV_KEYS[0], '--json'])
    assert.equal(r.code, 0, r.stderr)
    const d = r.json<Deployed>()
    assert.equal(d.replaced?.address, gone)
    assert.equal(d.replaced?.live, false)
    assert.equal(recorded(), d.address)
  })
})
