/**
 * `flytrap audit serve` through the built binary against a real anvil: --port 0 --json prints one line with
 * the URL once the server answers; the API serves the deployment the CLI recorded; SIGTERM ends it with
 * exit code 0. Needs dist/ (npx tsc -p tsconfig.json) and an up-to-date oclif.manifest.json.
 * The server itself stays a child process: it runs until a signal and installs its own SIGINT/SIGTERM
 * handlers, which in-process would be the test runner's. The deploy and the usage error run in-process.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { Wallet, parseEther } from 'ethers'
import { startAnvil, ANVIL_DEV_KEYS, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { connect, FlyTrapClient } from '../../src/lib/chain/client.js'
import type { AuditServeResult } from '../../src/commands/audit/serve.js'
import { BIN, runInProcess, tempCwd } from '../helpers/cli.js'

const OWNER = ANVIL_DEV_KEYS[0]!

describe('audit serve (CLI, anvil)', () => {
  let anvil: AnvilHandle
  let cwd: string
  let address: string

  before(async () => {
    anvil = await startAnvil()
    cwd = tempCwd()
    const deploy = await runInProcess(['contract', 'deploy', '--key', OWNER, '--json'], { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined } })
    assert.equal(deploy.code, 0, deploy.stderr)
    address = deploy.json<{ address: string }>().address
    const { provider } = await connect(anvil.rpcUrl)
    try {
      const owner = new FlyTrapClient(address, new Wallet(OWNER, provider))
      await owner.addTopic({ name: 'plant/valve', pubFee: 0n, subFee: parseEther('0.01'), sensitive: false, open: true, period: 0, countries: '0x', reason: 'cli test' })
    } finally {
      provider.destroy()
    }
  })
  after(async () => {
    await anvil?.stop()
  })

  test('--port 0 --json: one line when ready, the API answers, SIGTERM exits 0', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FLYTRAP_RPC: anvil.rpcUrl }
    delete env.FLYTRAP_HOME
    delete env.FLYTRAP_CONTRACT
    const child = spawn(process.execPath, [BIN, 'audit', 'serve', '--port', '0', '--json', '--poll-interval', '500ms', '--explorer', 'https://explorer.example/'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ready line in 30 s\n${stdout}\n${stderr}`)), 30_000)
        child.stdout.on('data', (c: Buffer) => {
          stdout += c.toString()
          if (stdout.includes('\n')) {
            clearTimeout(timer)
            resolve(stdout.slice(0, stdout.indexOf('\n')))
          }
        })
        child.on('close', (code) => reject(new Error(`exited ${code} before ready\n${stdout}\n${stderr}`)))
      })
      const ready = JSON.parse(line) as AuditServeResult
      assert.equal(ready.contract.toLowerCase(), address.toLowerCase())
      assert.equal(ready.chainId, 31337)
      assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+$/)

      const status = (await (await fetch(`${ready.url}/api/status`)).json()) as { contract: string; topics: number; synced: boolean; explorer: string | null }
      assert.equal(status.contract.toLowerCase(), address.toLowerCase())
      assert.equal(status.explorer, 'https://explorer.example', 'the --explorer base, without its trailing slash')
      assert.equal(status.topics, 1)
      assert.equal(status.synced, true)
      const topics = (await (await fetch(`${ready.url}/api/topics`)).json()) as { topics: { name: string; subFeeEth: string }[] }
      assert.deepEqual(topics.topics.map((t) => [t.name, t.subFeeEth]), [['plant/valve', '0.01']])
    } finally {
      child.kill('SIGTERM')
    }
    assert.equal(await exited, 0, stderr)
    assert.equal(stdout.trim().split('\n').length, 1, `exactly one line on stdout:\n${stdout}`)
  })

  test('a bad --poll-interval is a usage error (exit 2)', async () => {
    const r = await runInProcess(['audit', 'serve', '--poll-interval', 'soon'], { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined } })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /--poll-interval "soon" is not a duration/)
  })

  test('an --explorer that is not an http(s) URL is a usage error (exit 2)', async () => {
    for (const bad of ['javascript:alert(1)', 'explorer.example']) {
      const r = await runInProcess(['audit', 'serve', '--explorer', bad], { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined } })
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /--explorer .* is not (an http\(s\) URL|a URL)/)
    }
  })

  test('a busy --port exits 3 like proxy start and dev (FLYTRAP_PORT_BUSY)', async () => {
    const squatter = createServer()
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve))
    const port = (squatter.address() as AddressInfo).port
    try {
      const r = await runInProcess(['audit', 'serve', '--host', '127.0.0.1', '--port', String(port), '--json'], { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined } })
      assert.equal(r.code, 3, r.stdout + r.stderr)
      const err = r.json<{ error: { code: string; message: string } }>().error
      assert.equal(err.code, 'FLYTRAP_PORT_BUSY')
      assert.match(err.message, new RegExp(`port ${port} on 127.0.0.1 is already in use`))
    } finally {
      squatter.close()
    }
  })
})
