/** The basic relay through real mosquitto: authenticated clients of both protocol versions, allowed traffic flows. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { inbox, publish, subscribe } from '../helpers/mqtt.js'
import { waitFor } from '../helpers/wait.js'
import { PUB, SUB, registerTopics } from '../helpers/topics.js'

describe('relay through the proxy', () => {
  let e: E2E
  before(async () => {
    e = await e2eFixture({
      setup: async (chain) => {
        const owner = chain.as(0)
        await registerTopics(owner, ['sensors/temp'], { [chain.wallet(1).address]: PUB, [chain.wallet(2).address]: SUB })
      },
    })
  })
  after(() => e.close())

  for (const [pubVersion, subVersion, transport] of [[5, 5, 'user-properties'], [4, 4, 'username-password'], [5, 4, 'enhanced-auth']] as const) {
    test(`v${pubVersion} publisher (${transport}) → v${subVersion} subscriber`, async () => {
      const sub = await e.connect({ key: 2, version: subVersion })
      const box = inbox(sub)
      assert.deepEqual(await subscribe(sub, 'sensors/temp'), [1])
      const pub = await e.connect({ key: 1, version: pubVersion, transport })
      await publish(pub, 'sensors/temp', `hello ${transport}`)
      await waitFor(() => box.has('sensors/temp', `hello ${transport}`), 5_000, 'delivery')
      pub.end()
      sub.end()
    })
  }
})
