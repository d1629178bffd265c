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
    await waitFor(() => (pool as unknown as { ready: Set<unknown> }).ready.size === 1, 10_000, 'the worker to load')
    // A lone check: inline.
    const one = await pool.verify(fields('lone'))
    assert.equal(one.kind, 'ok')
    assert.deepEqual(pool.counts, { inline: 1, pooled: 0 })

    // A burst in one turn of the loop: beyond the inline budget (and once one is queued) the workers take it.
    const forged = { ...fields('burst-x'), userProperties: { ...fields('burst-x', Wallet.createRandom()).userProperties, 'flytrap-address': device.address } }
    const burst = Array.from({ length: 40 }, (_, i) => (i === 20 ? forged : fields(`burst-${i}`)))
    const results = await Promise.all(burst.map((f) => pool.verify(f)))
    assert.ok(pool.counts.pooled >= 40 - INLINE_PER_WINDOW, `pooled ${pool.counts.pooled} of 40`)
    assert.ok(pool.counts.inline <= 1 + INLINE_PER_WINDOW)
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
