/**
 * `flytrap dev` has no bypass: its mosquitto admits only the dev proxy (a generated password), so a device
 * connecting straight to the broker is refused; and a `--broker` that cannot be reached stops dev with exit
 * code 4 before anything says "running".
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import mqtt from 'mqtt'
import { runCli, tempCwd } from '../helpers/cli.js'
import { spawnCli, type LongCli } from '../helpers/e2e.js'

describe('flytrap dev: the broker is locked and checked', () => {
  const cwd = tempCwd('flytrap-dev-broker-')
  const running = new Set<LongCli>()
  after(async () => {
    for (const p of running) await p.stop('SIGKILL', 2_000)
    rmSync(cwd, { recursive: true, force: true })
  })

  test('its mosquitto refuses a client that is not the dev proxy, anonymous or with any password', async () => {
    const p = spawnCli(['dev', '--json', '--port', '0', '--anvil-port', '0', '--log-level', 'error'], { cwd })
    running.add(p)
    const r = await p.firstJsonLine<{ broker: string; proxy: string }>(60_000)
    for (const creds of [{}, { username: 'flytrap-proxy', password: 'guess' }]) {
      const code = await new Promise<number | string>((resolve) => {
        const c = mqtt.connect(r.broker, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5_000, ...creds })
        c.once('connect', () => (c.end(true), resolve('accepted')))
        c.once('error', (err: Error & { code?: number }) => (c.end(true), resolve(err.code ?? err.message)))
      })
      assert.ok(code === 0x86 || code === 0x87, `a direct client to the dev broker got ${code}`)
    }
    const stopped = await p.stop('SIGINT', 20_000)
    running.delete(p)
    assert.equal(stopped.code, 0, p.stderr())
  })

  test('--broker that cannot be reached: exit code 4 naming the broker', async () => {
    const r = await runCli(['dev', '--port', '0', '--anvil-port', '0', '--broker', 'mqtt://127.0.0.1:1'], { cwd, timeoutMs: 60_000 })
    assert.equal(r.code, 4, r.stderr)
    assert.match(r.stderr, /mqtt:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/)
  })
})
