/**
 * `proxy start --geoip-db`: a missing, unreadable or non-mmdb file is a usage error before any network call
 * (the RPC below is a closed port: reaching it would be another error); the bundled database passed
 * explicitly places PROXY-protocol sources, so a GB-only topic admits 81.2.69.142 and refuses 8.8.8.8.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BUNDLED_GEOIP_DB } from '../../src/lib/geo/lookup.js'
import { ReasonCode } from '../../src/lib/mqtt/reason-codes.js'
import { runCli, startCliProxy, tempCwd, type CliProxy } from '../helpers/cli.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { addressOfKey, freshDeviceKey, publishCode } from '../helpers/mqtt.js'
import { proxyProtocolRelay, type ProxyProtocolRelay } from '../helpers/taps.js'
import { waitFor } from '../helpers/wait.js'
import { BOTH, topicArgs } from '../helpers/topics.js'

const KEY = freshDeviceKey()
const OFFLINE = ['--broker', 'mqtt://127.0.0.1:1', '--rpc', 'http://127.0.0.1:1', '--contract', '0x' + '11'.repeat(20), '--no-broker-check', '--json']

describe('proxy start --geoip-db', () => {
  const dir = tempCwd('flytrap-geoip-')
  for (const [what, file, message] of [
    ['a missing file', join(dir, 'nope.mmdb'), /--geoip-db .*nope\.mmdb: cannot read the file \(ENOENT\)/],
    ['a directory', dir, /--geoip-db .*: cannot read the file \(EISDIR\)/],
    ['a file that is not a MaxMind DB', join(dir, 'countries.csv'), /--geoip-db .*countries\.csv: not a MaxMind DB file/],
  ] as const) {
    test(`${what} is a usage error (exit 2) before any network call`, async () => {
      writeFileSync(join(dir, 'countries.csv'), '1.0.0.0,1.0.0.255,AU\n')
      const r = await runCli(['proxy', 'start', '--geoip-db', file, ...OFFLINE], { cwd: dir, timeoutMs: 30_000 })
      assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`)
      assert.match(r.stdout + r.stderr, message)
    })
  }

  describe('the bundled database passed explicitly', () => {
    let e: E2E
    let p: CliProxy
    const relays: ProxyProtocolRelay[] = []
    before(async () => {
      e = await e2eFixture({
        setup: async (chain) => {
          await chain.as(0).addTopic(topicArgs('geodb/gb', { countries: ['GB'] }))
          await chain.as(0).allow('geodb/gb', addressOfKey(KEY), BOTH, 0, 'e2e')
        },
      })
      p = await startCliProxy(e, ['--geoip-db', BUNDLED_GEOIP_DB, '--proxy-protocol', '--trusted-proxy', '127.0.0.1', '--no-journal'])
    })
    after(async () => {
      for (const r of relays) await r.close()
      await p?.stop()
      await e?.close()
    })

    test('places 81.2.69.142 in GB (allowed on a GB-only topic) and 8.8.8.8 in the US (refused)', async () => {
      const gb = await proxyProtocolRelay({ port: p.port }, '81.2.69.142', 2)
      const us = await proxyProtocolRelay({ port: p.port }, '8.8.8.8', 1)
      relays.push(gb, us)
      let c: Awaited<ReturnType<E2E['connect']>> | undefined
      await waitFor(async () => Boolean((c = await e.connect({ key: KEY, url: gb.url }).catch(() => undefined))), 15_000, 'the CLI proxy to sync')
      if (!c) throw new Error('unreachable')
      assert.equal(await publishCode(c, 'geodb/gb', 'from-gb'), 0)
      c.end(true)
      const u = await e.connect({ key: KEY, url: us.url })
      assert.equal(await publishCode(u, 'geodb/gb', 'from-us'), ReasonCode.NotAuthorized)
      u.end(true)
      assert.ok(p.alive())
    })
  })
})
