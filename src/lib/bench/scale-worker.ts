/**
 * Load-generator worker for `flytrap bench scale`: makes its share of device keys and credentials, opens
 * that many authenticated MQTT sessions as fast as the target accepts them, times QoS 1 PUBLISH → PUBACK on
 * random sessions while all are open, and closes them. One worker per core keeps the generator off the
 * critical path.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { fastCredential } from './fast-credential.js'
import { RawClient, type Target } from './raw-client.js'

export interface ScaleWorkerData {
  index: number
  target: Target
  chainId: string
  contract: string
  /** Source addresses to spread connections over (each gives ~28k ephemeral ports). */
  sources: string[]
  /** The broker itself (no FlyTrap), for the direct baseline: it accepts anonymous clients and ignores the credential. */
  direct?: Target
}

type Command =
  | { cmd: 'prepare'; count: number }
  | { cmd: 'connect'; concurrency: number; direct?: boolean }
  | { cmd: 'publish'; samples: number; topicPrefix: string }
  | { cmd: 'close' }

const data = workerData as ScaleWorkerData
let prepared: { clientId: string; props: Record<string, string> }[] = []
let clients: RawClient[] = []

const credential = (clientId: string) => fastCredential({ chainId: BigInt(data.chainId), contract: data.contract }, clientId)

async function connectAll(concurrency: number, direct = false): Promise<{ ok: number; failed: number; errors: Record<string, number>; ms: number }> {
  const t0 = Date.now()
  let next = 0
  let ok = 0
  let failed = 0
  const errors: Record<string, number> = {}
  const one = async () => {
    while (next < prepared.length) {
      const i = next++
      const p = prepared[i]!
      try {
        // One source address needs no bind(): the kernel picks the port at connect(), much faster.
        const c = await RawClient.open(direct ? data.direct! : data.target, 5, data.sources.length > 1 ? data.sources[i % data.sources.length] : undefined)
        // The same CONNECT bytes either way (the broker ignores the user properties); a distinct client id so a
        // FlyTrap session still being torn down is never taken over.
        const rc = await c.connect({ clientId: direct ? `d-${p.clientId}` : p.clientId, properties: { userProperties: p.props } })
        if (rc !== 0) throw new Error(`CONNACK 0x${rc.toString(16)}`)
        clients.push(c)
        ok++
      } catch (err) {
        failed++
        const key = (err as Error).message.slice(0, 60)
        errors[key] = (errors[key] ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, one))
  return { ok, failed, errors, ms: Date.now() - t0 }
}

async function publishSamples(samples: number, topicPrefix: string): Promise<number[]> {
  const out: number[] = []
  if (clients.length === 0) return out
  for (let i = 0; i < samples; i++) {
    const c = clients[Math.floor(Math.random() * clients.length)]!
    out.push(await c.publishRtt(c.publishTemplate(`${topicPrefix}/${data.index}`, Buffer.from('x'))))
  }
  return out
}

parentPort!.on('message', async (m: Command) => {
  try {
    if (m.cmd === 'prepare') {
      prepared = Array.from({ length: m.count }, (_, i) => credential(`scale-${data.index}-${i}-${Date.now().toString(36)}`))
      parentPort!.postMessage({ cmd: 'prepared' })
    } else if (m.cmd === 'connect') {
      parentPort!.postMessage({ cmd: 'connected', ...(await connectAll(m.concurrency, m.direct === true)) })
    } else if (m.cmd === 'publish') {
      parentPort!.postMessage({ cmd: 'published', rtts: await publishSamples(m.samples, m.topicPrefix) })
    } else if (m.cmd === 'close') {
      const all = clients
      clients = []
      await Promise.all(all.map((c) => c.disconnect()))
      parentPort!.postMessage({ cmd: 'closed' })
    }
  } catch (err) {
    parentPort!.postMessage({ cmd: 'error', message: (err as Error).message })
  }
})
