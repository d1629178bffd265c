/**
 * `flytrap dev` as a user runs it: the built binary starts anvil, the contract, mosquitto and the proxy; the
 * mosquitto clients reach each other through it with credentials from `flytrap device sign`; Ctrl-C stops
 * everything it started; a restart in the same directory keeps the chain, the contract and the demo topic.
 * `dev` stays a child process (it owns child processes, waits for a signal and may call process.exit); the
 * `device sign` runs beside it are in-process.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { runInProcess, tempCwd } from '../helpers/cli.js'
import { spawnCli, waitFor, type LongCli } from '../helpers/e2e.js'

interface DevResult {
  rpcUrl: string
  policyUpdates: string
  chainId: number
  contract: string
  broker: string
  proxy: string
  stateFile: string
  deployed: boolean
  demoTopic: string
  devKeys: { index: number; address: string; privateKey: string }[]
  commands: string[]
}

/** Every process below `root` (Linux /proc), with its command name. */
function descendants(root: number): { pid: number; comm: string }[] {
  const procs: { pid: number; ppid: number; comm: string }[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const m = /^(\d+) \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${d}/stat`, 'utf8'))
      if (m) procs.push({ pid: Number(m[1]), comm: m[2]!, ppid: Number(m[3]) })
    } catch {
      // gone meanwhile
    }
  }
  const out: { pid: number; comm: string }[] = []
  const queue = [root]
  while (queue.length) {
    const parent = queue.shift()!
    for (const p of procs) {
      if (p.ppid !== parent) continue
      out.push({ pid: p.pid, comm: p.comm })
      queue.push(p.pid)
    }
  }
  return out
}

/** Still running (not gone, not a zombie). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** mosquitto_sub for one message, and mosquitto_pub repeated until it arrives. */
async function mosquittoRoundTrip(proxyUrl: string, topic: string, subArgs: string[], pubArgs: string[], message: string): Promise<string> {
  const { hostname, port } = new URL(proxyUrl)
  const at = ['-h', hostname, '-p', port]
  const sub = spawn('mosquitto_sub', [...at, '-t', topic, '-v', '-C', '1', '-W', '30', ...subArgs], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  sub.stdout.on('data', (c: Buffer) => (out += c.toString()))
  sub.stderr.on('data', (c: Buffer) => (err += c.toString()))
  const exited = new Promise<number | null>((r) => sub.once('exit', (code) => r(code)))
  try {
    // The subscription is in place some time after mosquitto_sub starts: publish until it is seen.
    await waitFor(
      async () => {
        if (out.includes('\n') || sub.exitCode !== null) return true
        await new Promise<void>((r) => execFile('mosquitto_pub', [...at, '-t', topic, '-m', message, ...pubArgs], { timeout: 10_000 }, () => r()))
        await new Promise((r) => setTimeout(r, 200))
        return out.includes('\n')
      },
      30_000,
      `mosquitto_sub to receive on ${topic}`,
    )
    assert.equal(await exited, 0, `mosquitto_sub: ${err}`)
    return out.trim()
  } finally {
    sub.kill('SIGKILL')
  }
}

describe('flytrap dev', () => {
  const cwd = tempCwd('flytrap-dev-')
  const running = new Set<LongCli>()
  after(async () => {
    for (const p of running) await p.stop('SIGKILL', 2_000)
    rmSync(cwd, { recursive: true, force: true })
  })

  const startDev = async (): Promise<{ p: LongCli; r: DevResult }> => {
    const p = spawnCli(['dev', '--json', '--port', '0', '--anvil-port', '0', '--log-level', 'error'], { cwd })
    running.add(p)
    const r = await p.firstJsonLine<DevResult>(60_000)
    return { p, r }
  }
  const stopDev = async (p: LongCli) => {
    const children = descendants(p.child.pid!)
    const stopped = await p.stop('SIGINT', 20_000)
    running.delete(p)
    return { stopped, children }
  }

  let first: DevResult
  let subArgs: string[]
  let pubArgs: string[]

  test('--json --port 0 --anvil-port 0: one JSON line; mosquitto_sub/pub with `device sign` credentials meet on the demo topic; SIGINT stops everything', async () => {
    const { p, r } = await startDev()
    first = r
    assert.match(r.rpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.notEqual(new URL(r.rpcUrl).port, '8545', '--anvil-port 0 picked a free port')
    assert.match(r.contract, /^0x[0-9a-fA-F]{40}$/)
    assert.match(r.broker, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
    assert.match(r.proxy, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
    assert.notEqual(new URL(r.proxy).port, '1883', '--port 0 picked a free port')
    assert.equal(r.deployed, true)
    assert.equal(r.demoTopic, 'demo/hello')
    assert.equal(r.policyUpdates, 'subscription', 'the proxy follows its anvil by eth_subscribe')
    assert.equal(r.devKeys[1]!.privateKey, ANVIL_DEV_KEYS[1])

    const children = descendants(p.child.pid!)
    assert.ok(children.some((c) => c.comm === 'anvil'), `anvil among ${JSON.stringify(children)}`)
    assert.ok(children.some((c) => c.comm === 'mosquitto'), `mosquitto among ${JSON.stringify(children)}`)

    // Credentials as the printed instructions make them: dev key #1, from the deployment recorded in this directory.
    const sign = async (clientId: string) => {
      const s = await runInProcess(['device', 'sign', '--rpc', r.rpcUrl, '--key', ANVIL_DEV_KEYS[1], '--client-id', clientId, '--format', 'mosquitto'], { cwd, env: { FLYTRAP_CONTRACT: undefined, FLYTRAP_RPC: undefined } })
      assert.equal(s.code, 0, s.stderr)
      return s.stdout.trim().split(/\s+/)
    }
    subArgs = await sign('dev-sub')
    pubArgs = await sign('dev-pub')
    assert.ok(subArgs.includes('flytrap-sig'), subArgs.join(' '))
    const got = await mosquittoRoundTrip(r.proxy, r.demoTopic, subArgs, pubArgs, 'hello from FlyTrap')
    assert.equal(got, 'demo/hello hello from FlyTrap')

    const { stopped } = await stopDev(p)
    assert.equal(stopped.hung, false, `dev did not exit on SIGINT\n${p.stderr()}`)
    assert.equal(stopped.code, 0, p.stderr())
    const left = children.filter((c) => alive(c.pid))
    assert.deepEqual(left, [], 'no child process is left behind')
    assert.ok(existsSync(r.stateFile), `chain state saved in ${r.stateFile}`)
  })

  test('a second start in the same directory reuses the recorded contract and keeps the demo topic and grants', async (t) => {
    if (!first) return t.skip('needs the first start')
    const { p, r } = await startDev()
    assert.equal(r.contract, first.contract)
    assert.equal(r.deployed, false)
    assert.equal(r.chainId, first.chainId)
    assert.equal(r.demoTopic, 'demo/hello')
    // The first run's credentials are bound to chain + contract: they still work, and #1 is still a member.
    const got = await mosquittoRoundTrip(r.proxy, r.demoTopic, subArgs, pubArgs, 'hello again')
    assert.equal(got, 'demo/hello hello again')
    const { stopped, children } = await stopDev(p)
    assert.equal(stopped.code, 0, p.stderr())
    assert.deepEqual(children.filter((c) => alive(c.pid)), [])
    assert.ok(existsSync(join(cwd, '.flytrap')))
  })
})
