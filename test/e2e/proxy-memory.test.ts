/**
 * Issue 14: an idle `flytrap proxy start` (its own process, real mosquitto and anvil, the journal on, one
 * authenticated session open so the GeoIP database and the session code are loaded; the verify threads start
 * only at a burst of CONNECTs) is small. With geoip-lite's city data it was 259 MiB; 120 MiB after the country
 * mmdb and an ethers-free verify worker; ~107 MiB with the threads started on demand. Two checks: a hard
 * ceiling of 130 MiB that fails on a city database, and the 100 MiB target, `todo` until met
 * (it runs and reports; make it plain once it passes). MEM_ARGS adds proxy flags, to measure.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { startCliProxy, type CliProxy } from '../helpers/cli.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { freshDeviceKey } from '../helpers/mqtt.js'
import { sleep, waitFor } from '../helpers/wait.js'

const LIMIT_MIB = 100
/** Today's figure (107–118 MiB, with the machine loaded) plus margin: geoip-lite's city data (259 MiB) fails it. */
const CEILING_MIB = 130

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) / 1024
}

describe('idle proxy memory', () => {
  let e: E2E
  let p: CliProxy
  before(async () => {
    e = await e2eFixture({})
    p = await startCliProxy(e, ['--data-dir', `${process.env.TMPDIR ?? '/tmp'}/flytrap-mem-${process.pid}`, ...(process.env.MEM_ARGS?.split(' ').filter(Boolean) ?? [])])
  })
  after(async () => {
    await p?.stop()
    await e?.close()
  })

  let idleMiB = 0
  test(`an idle proxy process stays under ${CEILING_MIB} MiB resident`, async () => {
    let connected = false
    let client: Awaited<ReturnType<E2E['connect']>> | undefined
    await waitFor(async () => (connected = Boolean((client = await e.connect({ key: freshDeviceKey(), url: p.url }).catch(() => undefined)))), 15_000, 'the CLI proxy to sync')
    assert.ok(connected && client)
    await sleep(2_000) // idle: start-up garbage collected by now
    idleMiB = rssMiB(p.child.pid!)
    console.log(`proxy RSS ${idleMiB.toFixed(1)} MiB`)
    client.end(true)
    assert.ok(idleMiB <= CEILING_MIB, `the idle proxy holds ${idleMiB.toFixed(1)} MiB resident (ceiling ${CEILING_MIB} MiB)`)
  })

  test(`an idle proxy process is at most ${LIMIT_MIB} MiB resident (issue 14's target)`, { todo: 'issue 14: ~107 MiB today' }, () => {
    assert.ok(idleMiB > 0 && idleMiB <= LIMIT_MIB, `the idle proxy holds ${idleMiB.toFixed(1)} MiB resident (target ${LIMIT_MIB} MiB)`)
  })
})
