/**
 * What an idle authenticated session costs the proxy: the proxy in a child process with --expose-gc
 * (memory-proxy-child.mjs, over the built dist/), heap read after a full GC, and many idle sessions opened through it by the bench's
 * raw client with real credentials. Used by test/e2e/session-memory.test.ts and scripts/session-heap.ts.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { fastCredential } from '../../src/lib/bench/fast-credential.js'
import { RawClient } from '../../src/lib/bench/raw-client.js'

export interface MemoryProxyConfig {
  rpcUrl: string
  contract: string
  chainId: number
  fromBlock: number
  brokerUrl: string
}

export interface ProxyMemory {
  sessions: number
  heapUsed: number
  /** The V8 heap's committed pages: what of it is resident, garbage or not. */
  heapTotal: number
  external: number
  arrayBuffers: number
  rss: number
}

export interface MemoryProxy {
  port: number
  pid: number
  /** process.memoryUsage() in the proxy after a full GC, with its open session count. */
  memory(): Promise<ProxyMemory>
  /** Writes a heap snapshot (after GC) in the proxy process; resolves with its path. */
  snapshot(path: string): Promise<string>
  close(): Promise<void>
}

export async function startMemoryProxy(config: MemoryProxyConfig, nodeArgs: string[] = []): Promise<MemoryProxy> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./memory-proxy-child.mjs', import.meta.url)), [], {
    execArgv: ['--expose-gc', ...nodeArgs],
    env: { ...process.env, FLYTRAP_MEMORY_PROXY: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const reply = <T>(cmd: string, msg?: object): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: { cmd: string }) => {
        if (m.cmd !== cmd) return
        child.off('message', onMessage)
        child.off('exit', onExit)
        resolve(m as T)
      }
      const onExit = (code: number | null) => reject(new Error(`the memory proxy exited (${code}) waiting for ${cmd}`))
      child.on('message', onMessage)
      child.once('exit', onExit)
      if (msg) child.send(msg)
    })
  const { port } = await reply<{ port: number }>('ready')
  return {
    port,
    pid: child.pid!,
    memory: () => reply<ProxyMemory>('memory', { cmd: 'memory' }),
    snapshot: async (path) => (await reply<{ path: string }>('snapshot', { cmd: 'snapshot', path })).path,
    close: async () => {
      if (child.exitCode !== null) return
      await Promise.race([reply('closed', { cmd: 'close' }).catch(() => {}), new Promise((r) => setTimeout(r, 10_000))])
      child.kill()
    },
  }
}

/** Opens `count` idle authenticated MQTT 5 sessions (a fresh key each) through the proxy at `port`. */
export async function openIdleSessions(port: number, deployment: { chainId: number; contract: string }, count: number, opts: { concurrency?: number; tag?: string } = {}): Promise<RawClient[]> {
  const tag = opts.tag ?? Date.now().toString(36)
  const creds = Array.from({ length: count }, (_, i) => fastCredential({ chainId: BigInt(deployment.chainId), contract: deployment.contract }, `idle-${tag}-${i}`))
  const clients: RawClient[] = []
  let next = 0
  const one = async () => {
    while (next < creds.length) {
      const c = creds[next++]!
      const client = await RawClient.open({ host: '127.0.0.1', port }, 5)
      const rc = await client.connect({ clientId: c.clientId, properties: { userProperties: c.props } })
      if (rc !== 0) throw new Error(`CONNACK 0x${rc.toString(16)} for ${c.clientId}`)
      clients.push(client)
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency ?? 50 }, one))
  return clients
}

export async function closeSessions(clients: RawClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.disconnect()))
}
