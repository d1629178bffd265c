// The verify pool: a lone CONNECT is checked inline (the hop to a worker costs more than the check), a burst
// goes to the worker threads (the main thread keeps relaying), and both give the same answers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Wallet } from 'ethers'
import { INLINE_PER_WINDOW, VerifyPool } from '../../../src/lib/proxy/verify-pool.js'
import { AUTH, credentialFields } from '../../helpers/session-harness.js'
import { waitFor } from '../../helpers/wait.js'

const device = Wallet.createRandom()
const fields = (clientId: string, signer = device) => {
  const f = credentialFields(signer, clientId, 5)
  return { clientId, version: 5 as const, userProperties: f.properties!.userProperties }
}

test('inline when idle, workers for a burst; the same answers either way (a forged one refused in both)', async () => {
  const pool = new VerifyPool(1, AUTH)
  const alive = setInterval(() => {}, 1_000) // the pool's workers are unref'd: in the proxy its listeners keep the loop alive
  try {
    // A lone check: inline, and no thread is started for it.
    const one = await pool.verify(fields('lone'))
    assert.equal(one.kind, 'ok')
    assert.deepEqual(pool.counts, { inline: 1, pooled: 0 })
    assert.equal(pool.workerCount, 0, 'no worker thread (and its memory) for CONNECTs that come one at a time')

    // The first burst starts the workers; until they have loaded it is checked inline, and answered right.
    const firstFields = Array.from({ length: 20 }, (_, i) => fields(`first-${i}`)) // signed beforehand: the checks come in one burst
    const first = await Promise.all(firstFields.map((f) => pool.verify(f)))
    assert.ok(first.every((r) => r.kind === 'ok'))
    assert.equal(pool.workerCount, 1)
    await waitFor(() => (pool as unknown as { ready: Set<unknown> }).ready.size === 1, 10_000, 'the worker to load')
    pool.counts.inline = pool.counts.pooled = 0
    await new Promise((r) => setTimeout(r, 20)) // a new inline window

    // A burst in one turn of the loop: beyond the inline budget (and once one is queued) the workers take it.
    const forged = { ...fields('burst-x'), userProperties: { ...fields('burst-x', Wallet.createRandom()).userProperties, 'flytrap-address': device.address } }
    const burst = Array.from({ length: 40 }, (_, i) => (i === 20 ? forged : fields(`burst-${i}`)))
    const results = await Promise.all(burst.map((f) => pool.verify(f)))
    assert.ok(pool.counts.pooled >= 40 - INLINE_PER_WINDOW, `pooled ${pool.counts.pooled} of 40`)
    assert.ok(pool.counts.inline <= INLINE_PER_WINDOW)
    results.forEach((r, i) => {
      if (i === 20) assert.equal(r.kind, 'refuse', 'the forged credential is refused in the worker too')
      else {
        assert.equal(r.kind, 'ok', `burst-${i}`)
        if (r.kind === 'ok') assert.equal(r.result.address.toLowerCase(), device.address.toLowerCase())
      }
    })
  } finally {
    clearInterval(alive)
    await pool.close()
  }
})
