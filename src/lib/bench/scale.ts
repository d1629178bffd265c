/**
 * `flytrap bench scale`: for each concurrency level, every client a distinct key, all connected at once
 * through the proxy; then QoS 1 PUBLISH → PUBACK timed under that concurrency, the connection-establishment
 * rate, and proxy and broker memory per session read from /proc. The load comes from worker threads.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { siblingWorker } from '../worker-entry.js'
import type { Target } from './raw-client.js'
import type { ScaleWorkerData } from './scale-worker.js'
import { summarize, type Summary } from './stats.js'

export interface ScaleOptions {
  target: Target
  /** The broker behind FlyTrap: when given, each level is also run straight against it (the direct baseline). */
  direct?: Target
  chainId: number
  contract: string
  levels: number[]
  /** Load-generator worker threads [default: number of cores]. */
  workers?: number
  /** Connections each worker opens at once. */
  concurrency?: number
  /** PUBLISH → PUBACK samples per level (spread over the workers). */
  samples?: number
  /** Topic prefix the sessions publish on (must be allowed for any authenticated key). */
  topicPrefix: string
  /** Processes whose resident memory to read (pids). */
  pids: { proxy: number[]; broker: number }
  /** Where the proxy processes write their heap after GC on SIGUSR2 (heap-probe.ts), when they were started with it. */
  heapProbeDir?: string
  onProgress?: (text: string) => void
}

export interface ScaleLevel {
  clients: number
  connected: number
  failed: number
  errors: Record<string, number>
  /** New authenticated sessions per second while ramping up to this level. */
  connectRate: number
  connectSeconds: number
  publish: Summary
  /**
   * Resident memory (/proc VmRSS, every proxy process summed) before and after the level's sessions opened,
   * per session; with the heap probe also the proxies' V8 heap after a full GC (summed), per session: what the
   * sessions themselves hold, without the burst's garbage, heap pages V8 keeps, or verify threads started.
   */
  memory: { proxyMiB: number; brokerMiB: number; proxyKiBPerSession: number; brokerKiBPerSession: number; proxyHeapMiB?: number; proxyHeapKiBPerSession?: number }
  /** The same generator straight to the broker (no FlyTrap) at this level, when a direct target is given. */
  direct?: { connected: number; failed: number; connectRate: number; connectSeconds: number; publish: Summary; /** Connects in flight over all workers (capped: see DIRECT_IN_FLIGHT). */ inFlight?: number }
}

/** Direct connects in flight over all workers: below mosquitto's listen backlog (100). */
export const DIRECT_IN_FLIGHT = 80

export interface ScaleResult {
  workers: number
  sources: string[]
  levels: ScaleLevel[]
}

/** Resident set size of a process in KiB (Linux /proc), 0 when unreadable. */
export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/**
 * The V8 heap after a full GC, summed over `pids` (KiB): each is sent SIGUSR2 and writes its reading (heap-probe.ts).
 * Undefined when a process does not answer within 10 s (not started with the probe).
 */
export async function heapAfterGcKiB(pids: number[], dir: string): Promise<number | undefined> {
  const files = pids.map((p) => join(dir, `${p}.json`))
  for (const f of files) rmSync(f, { force: true })
  for (const p of pids) {
    try {
      process.kill(p, 'SIGUSR2')
    } catch {
      return undefined
    }
  }
  const deadline = Date.now() + 10_000
  while (!files.every((f) => existsSync(f))) {
    if (Date.now() > deadline) return undefined
    await new Promise((r) => setTimeout(r, 50))
  }
  return files.reduce((a, f) => a + (JSON.parse(readFileSync(f, 'utf8')) as { heapUsed: number }).heapUsed / 1024, 0)
}

/** A process and its descendants (a clustered proxy's workers), from /proc. */
export function processTree(pid: number): number[] {
  let children: number[] = []
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    // not Linux, or gone
  }
  return [pid, ...children.flatMap(processTree)]
}

export async function runScaleBench(o: ScaleOptions): Promise<ScaleResult> {
  const workers = o.workers ?? Math.max(1, availableParallelism())
  const biggest = Math.max(...o.levels)
  // Each source address has ~28k ephemeral ports towards one destination: spread big levels over several.
  const sources = Array.from({ length: Math.max(1, Math.ceil(biggest / 20_000)) }, (_, i) => `127.0.0.${i + 1}`)
  const pool = Array.from({ length: workers }, (_, index) => {
    const data: ScaleWorkerData = { index, target: o.target, direct: o.direct, chainId: String(o.chainId), contract: o.contract, sources }
    return siblingWorker(import.meta.url, 'scale-worker', { workerData: data })
  })
  const ask = <T>(w: Worker, msg: object, reply: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const on = (m: { cmd: string; message?: string }) => {
        if (m.cmd !== reply && m.cmd !== 'error') return
        w.off('message', on)
        if (m.cmd === 'error') reject(new Error(m.message))
        else resolve(m as T)
      }
      w.on('message', on)
      w.postMessage(msg)
    })
  const all = <T>(msgFor: (i: number) => object, reply: string) => Promise.all(pool.map((w, i) => ask<T>(w, msgFor(i), reply)))
  const proxyRss = () => o.pids.proxy.flatMap(processTree).reduce((a, p) => a + rssKiB(p), 0)
  const proxyHeap = async () => (o.heapProbeDir ? heapAfterGcKiB(o.pids.proxy.flatMap(processTree), o.heapProbeDir) : undefined)

  const levels: ScaleLevel[] = []
  try {
    for (const n of o.levels) {
      const share = (i: number) => Math.floor(n / workers) + (i < n % workers ? 1 : 0)
      o.onProgress?.(`${n} clients: making ${n} keys and credentials`)
      await all((i) => ({ cmd: 'prepare', count: share(i) }), 'prepared')
      const before = { proxy: proxyRss(), broker: rssKiB(o.pids.broker), heap: await proxyHeap() }
      o.onProgress?.(`${n} clients: connecting`)
      const t0 = Date.now()
      const connected = await all<{ ok: number; failed: number; errors: Record<string, number>; ms: number }>(() => ({ cmd: 'connect', concurrency: o.concurrency ?? 200 }), 'connected')
      const seconds = (Date.now() - t0) / 1000
      await new Promise((r) => setTimeout(r, 500)) // let allocations settle before reading memory
      const after = { proxy: proxyRss(), broker: rssKiB(o.pids.broker), heap: await proxyHeap() }
      const ok = connected.reduce((a, c) => a + c.ok, 0)
      o.onProgress?.(`${n} clients: ${ok} connected, timing PUBLISH → PUBACK`)
      const perWorker = Math.max(1, Math.ceil((o.samples ?? 200) / workers))
      const rtts = (await all<{ rtts: number[] }>(() => ({ cmd: 'publish', samples: perWorker, topicPrefix: o.topicPrefix }), 'published')).flatMap((r) => r.rtts)
      const errors: Record<string, number> = {}
      for (const c of connected) for (const [k, v] of Object.entries(c.errors)) errors[k] = (errors[k] ?? 0) + v
      levels.push({
        clients: n,
        connected: ok,
        failed: connected.reduce((a, c) => a + c.failed, 0),
        errors,
        connectRate: ok / seconds,
        connectSeconds: seconds,
        publish: summarize(rtts),
        memory: {
          proxyMiB: after.proxy / 1024,
          brokerMiB: after.broker / 1024,
          proxyKiBPerSession: ok ? (after.proxy - before.proxy) / ok : 0,
          brokerKiBPerSession: ok ? (after.broker - before.broker) / ok : 0,
          ...(after.heap !== undefined && before.heap !== undefined ? { proxyHeapMiB: after.heap / 1024, proxyHeapKiBPerSession: ok ? (after.heap - before.heap) / ok : 0 } : {}),
        },
      })
      o.onProgress?.(`${n} clients: closing`)
      await all(() => ({ cmd: 'close' }), 'closed')
      await new Promise((r) => setTimeout(r, 1_000)) // let the proxy and broker tear the sessions down
      if (o.direct) {
        // The same generator, keys and CONNECT bytes straight to the broker: what FlyTrap's rate is relative to.
        o.onProgress?.(`${n} clients: connecting directly to the broker`)
        const d0 = Date.now()
        // At most DIRECT_IN_FLIGHT connects in flight in all: mosquitto 2.0 listens with a backlog of 100, and
        // beyond it the kernel drops SYNs that are retried a second later, which would time the retransmit
        // timer, not the broker (measured: 1,000 clients at 400 in flight 957/s, at 80 in flight 5,435/s).
        const inFlight = Math.min(o.concurrency ?? 200, Math.max(1, Math.floor(DIRECT_IN_FLIGHT / workers)))
        const dc = await all<{ ok: number; failed: number }>(() => ({ cmd: 'connect', concurrency: inFlight, direct: true }), 'connected')
        const dSeconds = (Date.now() - d0) / 1000
        const dOk = dc.reduce((a, c) => a + c.ok, 0)
        const dRtts = (await all<{ rtts: number[] }>(() => ({ cmd: 'publish', samples: perWorker, topicPrefix: o.topicPrefix }), 'published')).flatMap((r) => r.rtts)
        levels.at(-1)!.direct = { connected: dOk, failed: dc.reduce((a, c) => a + c.failed, 0), connectRate: dOk / dSeconds, connectSeconds: dSeconds, inFlight: inFlight * workers, publish: summarize(dRtts) }
        await all(() => ({ cmd: 'close' }), 'closed')
        await new Promise((r) => setTimeout(r, 500))
      }
    }
  } finally {
    await Promise.all(pool.map((w) => w.terminate()))
  }
  return { workers, sources, levels }
}
