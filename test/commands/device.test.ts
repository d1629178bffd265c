/** `flytrap device keygen|sign` (in-process): credentials a device flashes, checked with the verifying side. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { credentialFromConnect, verifyCredential } from '../../src/lib/auth/index.js'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { runInProcess, tempCwd } from '../helpers/cli.js'

const KEY = ANVIL_DEV_KEYS[1]
const ADDRESS = new Wallet(KEY).address
const CONTRACT = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const OFFLINE = ['--chain-id', '31337', '--contract', CONTRACT, '--rpc', 'http://127.0.0.1:9']

describe('device sign (offline: --chain-id + --contract, no RPC)', () => {
  test('--json: a credential bound to deployment, client id and expiry that the proxy side accepts', async () => {
    const r = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', 'sensor-1', '--expires', '30d', ...OFFLINE, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const c = r.json<{ address: string; expiresAt: number; userProperties: Record<string, string>; username: string; password: string; chainId: number; contract: string }>()
    assert.equal(c.address, ADDRESS)
    assert.equal(c.chainId, 31337)
    const inDays = (c.expiresAt - Date.now() / 1000) / 86400
    assert.ok(inDays > 29.9 && inDays <= 30, `expiry ${inDays} days away`)
    const deployment = { chainId: 31337n, contract: CONTRACT }
    const viaProps = verifyCredential(credentialFromConnect({ clientId: 'sensor-1', userProperties: c.userProperties }), deployment)
    assert.equal(viaProps.ok && viaProps.address, ADDRESS)
    const viaPassword = verifyCredential(credentialFromConnect({ clientId: 'sensor-1', username: c.username, password: Buffer.from(c.password) }), deployment)
    assert.equal(viaPassword.ok && viaPassword.address, ADDRESS)
    // Not replayable elsewhere: another client id, chain or contract refuses it.
    assert.equal(verifyCredential(credentialFromConnect({ clientId: 'sensor-2', userProperties: c.userProperties }), deployment).ok, false)
    assert.equal(verifyCredential(credentialFromConnect({ clientId: 'sensor-1', userProperties: c.userProperties }), { chainId: 1n, contract: CONTRACT }).ok, false)
  })

  test('--format mosquitto prints the exact mosquitto_pub arguments', async () => {
    const v5 = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', 'dev-1', '--format', 'mosquitto', ...OFFLINE])
    assert.equal(v5.code, 0, v5.stderr)
    assert.match(v5.stdout.trim(), /^-V mqttv5 -i dev-1 -D connect user-property flytrap-address 0x[0-9a-fA-F]{40} -D connect user-property flytrap-expires \d+ -D connect user-property flytrap-sig 0x[0-9a-f]{130} -D connect user-property flytrap-v 1$/)
    const v311 = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', 'dev-1', '--format', 'mosquitto', '--mqtt-version', '3.1.1', ...OFFLINE])
    assert.match(v311.stdout.trim(), new RegExp(`^-V mqttv311 -i dev-1 -u ${ADDRESS} -P v1:\\d+:0x[0-9a-f]{130}$`))
  })

  test('--expires 366d (the proxy\'s maximum) and a compound 1h30m are accepted', async () => {
    for (const [expires, sec] of [['366d', 366 * 86_400], ['1h30m', 5_400]] as const) {
      const r = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', 'a', '--expires', expires, ...OFFLINE, '--json'])
      assert.equal(r.code, 0, r.stderr)
      const away = r.json<{ expiresAt: number }>().expiresAt - Date.now() / 1000
      assert.ok(away > sec - 60 && away <= sec, `${expires}: ${away} s`)
    }
  })

  test('--format json without --json prints the JSON credential, not a table', async () => {
    const r = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', 'dev-1', '--format', 'json', ...OFFLINE])
    assert.equal(r.code, 0, r.stderr)
    const c = JSON.parse(r.stdout) as { address: string; clientId: string; mosquittoArgs: string[] }
    assert.equal(c.address, ADDRESS)
    assert.equal(c.clientId, 'dev-1')
  })

  test('--format mosquitto and env are shell-quoted: a client id with spaces and quotes survives bash word splitting', async () => {
    const clientId = `it's a "plc" $HOME \\ 3`
    const m = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', clientId, '--format', 'mosquitto', ...OFFLINE])
    assert.equal(m.code, 0, m.stderr)
    const words = execFileSync('bash', ['-c', `printf '%s\\0' ${m.stdout.trim()}`]).toString().split('\0').slice(0, -1)
    assert.deepEqual(words.slice(0, 4), ['-V', 'mqttv5', '-i', clientId])
    const verdict = verifyCredential(credentialFromConnect({ clientId: words[3]!, userProperties: Object.fromEntries(words.flatMap((w, i) => (w === 'user-property' ? [[words[i + 1]!, words[i + 2]!]] : []))) }), { chainId: 31337n, contract: CONTRACT })
    assert.equal(verdict.ok && verdict.address, ADDRESS)
    const e = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', clientId, '--format', 'env', ...OFFLINE])
    const sourced = execFileSync('bash', ['-c', `${e.stdout.trim()}\nprintf '%s' "$FLYTRAP_CRED_CLIENT_ID"`]).toString()
    assert.equal(sourced, clientId)
  })

  test('--format env is shell-sourceable', async () => {
    const r = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', 'dev-1', '--format', 'env', ...OFFLINE])
    const env = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('=') as [string, string]))
    assert.equal(env.FLYTRAP_CRED_ADDRESS, ADDRESS)
    assert.equal(env.FLYTRAP_CRED_CLIENT_ID, 'dev-1')
    assert.match(env.FLYTRAP_CRED_PASSWORD!, /^v1:\d+:0x[0-9a-f]{130}$/)
  })

  test('--legacy exists only behind its flag and says it is replayable', async () => {
    const r = await runInProcess(['device', 'sign', '--key', KEY, '--client-id', 'dev-1', '--legacy', '--format', 'mosquitto', ...OFFLINE])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /replay it forever/)
    assert.match(r.stdout, new RegExp(`-u ${ADDRESS} -P 0x[0-9a-f]{130}`))
  })

  const bad: [string, string[], number, RegExp][] = [
    ['newline in client id', ['--client-id', 'a\nb'], 2, /client id/i],
    ['expiry in the past', ['--client-id', 'a', '--expires', '2001-01-01'], 2, /in the past/],
    ['bad expiry', ['--client-id', 'a', '--expires', 'whenever'], 2, /not a date/],
    ['bad format', ['--client-id', 'a', '--format', 'xml'], 2, /Expected --format=xml to be one of/],
    ['a day that does not exist (not rolled into March)', ['--client-id', 'a', '--expires', '2099-02-30'], 2, /not a valid date/],
    ['a lifetime the proxy refuses (> 366 days)', ['--client-id', 'a', '--expires', '5y'], 2, /more than 366 days away/],
    ['367 days as a compound duration', ['--client-id', 'a', '--expires', '1y2d'], 2, /more than 366 days away/],
    ['no key', ['--client-id', 'a'], 3, /needs a key/],
  ]
  for (const [name, args, exit, message] of bad) {
    test(`refuses: ${name}`, async () => {
      const key = name === 'no key' ? [] : ['--key', KEY]
      const r = await runInProcess(['device', 'sign', ...key, ...OFFLINE, ...args], { cwd: tempCwd(), env: { FLYTRAP_KEY: undefined } })
      assert.equal(r.code, exit, r.stdout + r.stderr)
      assert.match(r.stderr, message)
    })
  }
})

describe('device keygen', () => {
  test('writes only an encrypted keystore that device sign can use', async () => {
    const cwd = tempCwd()
    const env = { FLYTRAP_KEY_PASSWORD: 'correct horse battery' }
    const r = await runInProcess(['device', 'keygen', '--out', 'dev.json', '--json'], { cwd, env })
    assert.equal(r.code, 0, r.stderr)
    const { address, keystore } = r.json<{ address: string; keystore: string }>()
    assert.equal(keystore, join(cwd, 'dev.json'))
    const file = readFileSync(keystore, 'utf8')
    assert.equal(JSON.parse(file).address.toLowerCase(), address.slice(2).toLowerCase())
    assert.doesNotMatch(r.stdout + r.stderr, /privateKey|0x[0-9a-f]{64}\b/) // the key is never printed

    const signed = await runInProcess(['device', 'sign', '--key', 'dev.json', '--client-id', 'k1', ...OFFLINE, '--json'], { cwd, env })
    assert.equal(signed.json<{ address: string }>().address, address)
    const wrong = await runInProcess(['device', 'sign', '--key', 'dev.json', '--client-id', 'k1', ...OFFLINE], { cwd, env: { FLYTRAP_KEY_PASSWORD: 'nope' } })
    assert.equal(wrong.code, 6)
    assert.match(wrong.stderr, /wrong password/)
    const again = await runInProcess(['device', 'keygen', '--out', 'dev.json'], { cwd, env })
    assert.equal(again.code, 2)
  })

  test('without a password and without a terminal it refuses', async () => {
    const r = await runInProcess(['device', 'keygen', '--out', 'x.json'], { cwd: tempCwd(), env: { FLYTRAP_KEY_PASSWORD: undefined } })
    assert.equal(r.code, 3)
    assert.match(r.stderr, /FLYTRAP_KEY_PASSWORD/)
  })
})
