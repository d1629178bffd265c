/**
 * `proxy start --workers N`: N proxy processes sharing the listeners (node:cluster). More cores for TLS,
 * relaying and signature checks, and N times the per-process file-descriptor limit (each session holds
 * two descriptors). Workers tell each other about bans over IPC; only worker 0 writes to the chain, so a
 * single sender owns the reporter's nonces.
 */
import cluster, { type Worker } from 'node:cluster'
import type { ProxyHandle } from './server.js'
import type { EnqueueResult, IntentInput, IntentSink } from '../chain/outbox.js'

type Ban = { ip?: string; address?: string; until: number }
type Message =
  | { type: 'ready'; result: unknown }
  | { type: 'ban'; ban: Ban; report?: boolean }
  | { type: 'intent'; intent: IntentInput }
  | { type: 'shutdown' }

export const isWorkerProcess = (): boolean => cluster.isWorker
export const workerIndex = (): number => Number(process.env.FLYTRAP_WORKER_INDEX ?? 0)

export interface ClusterPrimary {
  /** Each worker's ready result, in worker order. */
  results: unknown[]
  stop(): Promise<void>
}

/** Forks `n` workers running this same command and resolves once all of them listen. */
export async function startPrimary(n: number, log: (msg: string) => void): Promise<ClusterPrimary> {
  const workers: Worker[] = []
  const results: unknown[] = new Array(n)
  let stopping = false
  let readyCount = 0
  let resolveReady!: () => void
  let rejectReady!: (e: Error) => void
  const ready = new Promise<void>((res, rej) => ((resolveReady = res), (rejectReady = rej)))

  // Chain-write intents carry bigints: use the structured-clone serialisation for IPC.
  cluster.setupPrimary({ serialization: 'advanced' })
  const fork = (index: number) => {
    const w = cluster.fork({ FLYTRAP_WORKER_INDEX: String(index) })
    workers[index] = w
    w.on('message', (m: Message) => {
      if (m.type === 'ready') {
        results[index] = m.result
        if (++readyCount === n) resolveReady()
      } else if (m.type === 'ban') {
        // Every other worker applies it; worker 0 also puts it on chain.
        workers.forEach((other, j) => {
          if (other !== w && other.isConnected()) other.send({ type: 'ban', ban: m.ban, report: j === 0 } satisfies Message)
        })
        if (index !== 0 && workers[0] === undefined) log('ban not reported: worker 0 is down')
      } else if (m.type === 'intent') {
        // Worker 0 owns the outbox (one sender, one nonce sequence) and writes for everyone.
        if (workers[0]?.isConnected()) workers[0].send(m)
        else log(`chain write from worker ${index} lost: worker 0 is down`)
      }
    })
    w.on('exit', (code, signal) => {
      if (stopping) return
      if (readyCount < n) return rejectReady(new Error(`proxy worker ${index} exited (${signal ?? code}) before it was ready`))
      log(`proxy worker ${index} exited (${signal ?? code}); starting a new one`)
      setTimeout(() => fork(index), 1_000)
    })
  }
  for (let i = 0; i < n; i++) fork(i)
  await ready
  return {
    results,
    stop: async () => {
      stopping = true
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (!w.isConnected()) return resolve()
              w.once('exit', () => resolve())
              w.send({ type: 'shutdown' } satisfies Message)
            }),
        ),
      )
    },
  }
}

/** In workers other than 0: chain writes go to worker 0's outbox over IPC (fire and forget, like the outbox). */
export const ipcSink: IntentSink = {
  enqueue: async (intent: IntentInput): Promise<EnqueueResult> => {
    process.send!({ type: 'intent', intent } satisfies Message)
    return { id: 'ipc', deduped: false, durable: false }
  },
}

/**
 * In a worker: report readiness, share local bans, apply others', hand other workers' chain writes to this
 * worker's outbox, and resolve on the primary's shutdown.
 */
export function attachWorker(proxy: ProxyHandle, result: unknown, outbox?: IntentSink): Promise<void> {
  process.send!({ type: 'ready', result } satisfies Message)
  proxy.on('ban', (e) => {
    if (e.source === 'local' && (e.ip || e.address)) process.send!({ type: 'ban', ban: { ip: e.ip, address: e.address, until: e.until } } satisfies Message)
  })
  return new Promise((resolve) => {
    process.on('message', (m: Message) => {
      if (m.type === 'ban') proxy.ban(m.ban, { report: m.report })
      else if (m.type === 'intent') void outbox?.enqueue(m.intent)
      else if (m.type === 'shutdown') resolve()
    })
  })
}
