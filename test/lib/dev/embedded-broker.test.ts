/**
 * The embedded broker of `flytrap dev`: the aedes installed is exactly the release the code pins (package.json
 * and EMBEDDED_BROKER_VERSION agree), it speaks MQTT 5 and 3.1.1 on loopback, says in its CONNACK that it has no
 * shared subscriptions (what EMBEDDED_BROKER_LACKS tells the developer), and stop() gives the port back.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import mqtt from 'mqtt'
import { EMBEDDED_BROKER_LACKS, EMBEDDED_BROKER_VERSION, startEmbeddedBroker } from '../../../src/lib/dev/embedded-broker.js'
import { portIsFree } from '../../../src/lib/dev/ports.js'
import { chooseDevBroker } from '../../../src/lib/dev/dev-stack.js'
import { ExitCode, FlytrapError } from '../../../src/lib/errors.js'

describe('startEmbeddedBroker', () => {
  test('the installed aedes is the pinned release', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }
    assert.equal(pkg.dependencies.aedes, EMBEDDED_BROKER_VERSION, 'package.json pins the exact version (no range)')
    const installed = JSON.parse(readFileSync(join(dirname(createRequire(import.meta.url).resolve('aedes')), 'package.json'), 'utf8')) as { version: string }
    assert.equal(installed.version, EMBEDDED_BROKER_VERSION)
  })

  test('MQTT 5 and 3.1.1 clients connect and exchange a message; CONNACK says no shared subscriptions; stop frees the port', async () => {
    const b = await startEmbeddedBroker()
    assert.match(b.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
    assert.ok(EMBEDDED_BROKER_LACKS.some((l) => l.startsWith('shared subscriptions')))
    const v5 = await mqtt.connectAsync(b.url, { protocolVersion: 5, clientId: 'v5', reconnectPeriod: 0 })
    const v4 = await mqtt.connectAsync(b.url, { protocolVersion: 4, clientId: 'v4', reconnectPeriod: 0 })
    try {
      const connack = await new Promise<{ properties?: { sharedSubscriptionAvailable?: boolean } }>((resolve, reject) => {
        const c = mqtt.connect(b.url, { protocolVersion: 5, clientId: 'probe', reconnectPeriod: 0 })
        c.once('connect', (p) => {
          c.end(true)
          resolve(p as { properties?: { sharedSubscriptionAvailable?: boolean } })
        })
        c.once('error', reject)
      })
      assert.equal(connack.properties?.sharedSubscriptionAvailable, false)
      await v4.subscribeAsync('t/x', { qos: 1 })
      const got = new Promise<string>((r) => v4.once('message', (_t, p) => r(p.toString())))
      await v5.publishAsync('t/x', 'from v5', { qos: 1 })
      assert.equal(await got, 'from v5')
    } finally {
      v5.end(true)
      v4.end(true)
      await b.stop()
      await b.stop()
    }
    assert.equal(await portIsFree(b.port, '127.0.0.1'), true)
  })
})

describe('a locked embedded broker admits only the proxy', () => {
  const attempt = (url: string, version: 4 | 5, username?: string, password?: string) =>
    new Promise<{ ok: boolean; code?: number }>((resolve) => {
      const c = mqtt.connect(url, { protocolVersion: version, reconnectPeriod: 0, connectTimeout: 5_000, username, password, clientId: `lk-${Math.random().toString(36).slice(2, 8)}` })
      c.once('connect', () => {
        c.end(true)
        resolve({ ok: true })
      })
      c.once('error', (err) => {
        c.end(true)
        resolve({ ok: false, code: (err as { code?: number }).code })
      })
    })

  test('no credential and a wrong password are refused (v5 and 3.1.1); the proxy identity connects', async () => {
    const b = await startEmbeddedBroker({ locked: { username: 'flytrap-proxy', password: 's3cret-pass' } })
    try {
      for (const v of [5, 4] as const) {
        assert.equal((await attempt(b.url, v)).ok, false, `v${v}: a device with no credential straight to the broker`)
        assert.equal((await attempt(b.url, v, 'flytrap-proxy', 's3cret-pasS')).ok, false, `v${v}: a wrong password`)
        assert.equal((await attempt(b.url, v, 'someone', 's3cret-pass')).ok, false, `v${v}: another user name`)
        assert.equal((await attempt(b.url, v, 'flytrap-proxy', 's3cret-pass')).ok, true, `v${v}: the proxy's identity`)
      }
    } finally {
      await b.stop()
    }
  })
})

describe('chooseDevBroker (flytrap dev --broker)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flytrap-broker-choice-'))
  const fake = join(dir, 'mosquitto')
  writeFileSync(fake, '#!/bin/sh\n', { mode: 0o755 })
  const none = { searchPath: join(dir, 'nothing-here'), fallbacks: [] }
  const installed = { searchPath: dir, fallbacks: [] }

  test('auto: mosquitto whenever it is installed, else the embedded broker', () => {
    assert.deepEqual(chooseDevBroker('auto', installed), { kind: 'mosquitto', binary: fake })
    assert.deepEqual(chooseDevBroker('auto', none), { kind: 'embedded' })
  })

  test('embedded and URLs are taken as given; mosquitto where there is none is a config error naming the way out', () => {
    assert.deepEqual(chooseDevBroker('embedded', installed), { kind: 'embedded' })
    assert.deepEqual(chooseDevBroker('mqtt://127.0.0.1:1884', installed), { kind: 'external', url: 'mqtt://127.0.0.1:1884' })
    assert.throws(() => chooseDevBroker('mosquitto', none), (e: unknown) => e instanceof FlytrapError && e.exit === ExitCode.config && e.code === 'FLYTRAP_NO_BROKER' && e.suggestions.some((s) => s.includes('--broker embedded')))
    assert.throws(() => chooseDevBroker('aedes', none), (e: unknown) => e instanceof FlytrapError && e.exit === ExitCode.usage)
    rmSync(dir, { recursive: true, force: true })
  })
})
