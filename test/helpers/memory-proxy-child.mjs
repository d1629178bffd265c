/**
 * The proxy (`startProxy`, no journal) alone in a child process started with --expose-gc, so its heap can be
 * read after a full collection without the test's own clients in it. Plain JavaScript over the built package
 * (dist/, as `import { startProxy } from 'flytrap'` gets it): under the tsx loader every arrow function in an
 * object literal gets a `__name` property (256 bytes each), which would be measured as the proxy's. Driven over IPC by memory-proxy.ts:
 * `memory` → process.memoryUsage() after GC, `snapshot` → a heap snapshot file, `close`.
 */
import { setImmediate, setTimeout } from 'node:timers'
import { writeHeapSnapshot } from 'node:v8'
import { Wallet } from 'ethers'
import { ANVIL_DEV_KEYS, connect, FlyTrapClient, PROXY_DEFAULTS as DEFAULTS, startProxy } from '../../dist/index.js'

const gc = globalThis.gc
if (!gc) throw new Error('memory-proxy-child needs --expose-gc')

/** Full collections until the heap stops shrinking (weak callbacks and finalizers run between them). */
async function collect() {
  let last = Infinity
  for (let i = 0; i < 6; i++) {
    gc()
    await new Promise((r) => setImmediate(r))
    const used = process.memoryUsage().heapUsed
    if (used >= last - 1024) return
    last = used
  }
}

/** @type {import('./memory-proxy.js').MemoryProxyConfig} */
const config = JSON.parse(process.env.FLYTRAP_MEMORY_PROXY)
const { provider } = await connect(config.rpcUrl)
const proxy = await startProxy({
  listeners: [{ listen: '127.0.0.1:0' }],
  upstream: { url: config.brokerUrl },
  contract: new FlyTrapClient(config.contract, new Wallet(ANVIL_DEV_KEYS[0], provider)),
  chainId: config.chainId,
  fromBlock: config.fromBlock,
  pollIntervalMs: 200,
  unregisteredTopics: 'allow',
  failOpen: false,
  allowLegacyCredentials: false,
  usernameFromAddress: false,
  maxCredentialLifetimeSec: DEFAULTS.maxCredentialLifetimeSec,
  bans: { ...DEFAULTS.bans, threshold: 1_000_000 },
  limits: { ...DEFAULTS.limits, maxConnectionsPerIp: 1_000_000, connectTimeoutMs: 30_000 },
})
while (!proxy.policyStatus().synced) await new Promise((r) => setTimeout(r, 50))

process.on('message', async (m) => {
  if (m.cmd === 'memory') {
    await collect()
    const u = process.memoryUsage()
    process.send({ cmd: 'memory', sessions: proxy.sessionCount(), heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers, rss: u.rss })
  } else if (m.cmd === 'snapshot') {
    await collect()
    process.send({ cmd: 'snapshot', path: writeHeapSnapshot(m.path) })
  } else if (m.cmd === 'close') {
    await proxy.close({ graceMs: 500 })
    provider.destroy()
    process.send({ cmd: 'closed' }, () => process.exit(0))
  }
})
process.send({ cmd: 'ready', port: proxy.address.port })
