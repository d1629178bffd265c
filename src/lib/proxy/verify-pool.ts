/**
 * A small pool of worker threads that verify CONNECT credentials. Requests made in one turn of the event
 * loop are sent as one batch per worker, so a burst of CONNECTs costs one message per worker, not one per
 * device. With size 0 verification runs inline on the calling thread.
 *
 * The hop to a worker (a loop turn, two messages, a thread wake-up) costs more latency than one check
 * (~90 µs with libsecp256k1), so a lone CONNECT is verified inline when it pays: nothing is queued or in a
 * worker, and the main thread has spent less than its inline budget in the current window. A burst goes to
 * the workers, so the relay never stalls behind verification. The threads start at the first burst (until
 * they have loaded, that burst is checked inline).
 */
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import type { Worker } from 'node:worker_threads'
import { siblingWorker } from '../worker-entry.js'
import { authenticateFields, type AuthConfig, type ConnectAuth, type CredentialFields } from './authenticate.js'

type Result = Exclude<ConnectAuth, { kind: 'challenge' }>

/** Inline checks allowed per window: 8 × ~90 µs in 10 ms keeps the main thread's share under ~10 %. */
export const INLINE_WINDOW_MS = 10
export const INLINE_PER_WINDOW = 8

export function defaultAuthWorkers(): number {
  return Math.min(4, Math.max(0, availableParallelism() - 1))
}

export class VerifyPool {
  private readonly workers: Worker[] = []
  /** Workers that finished loading; a worker takes a while to start, and a CONNECT should not wait for it. */
  private readonly ready = new Set<Worker>()
  private readonly pending = new Map<number, { worker: Worker; items: { fields: CredentialFields; resolve: (r: Result) => void }[] }>()
  private queue: { fields: CredentialFields; resolve: (r: Result) => void }[] = []
  private scheduled = false
  private nextId = 1
  private nextWorker = 0
  private windowStart = 0
  private inlineInWindow = 0
  /** How many checks ran inline and in workers (the tests read it). */
  readonly counts = { inline: 0, pooled: 0 }

  private started = false

  constructor(
    readonly size: number,
    private readonly cfg: AuthConfig,
  ) {}

  /** Worker threads started so far (none until the first burst, or start()). */
  get workerCount(): number {
    return this.workers.length
  }

  /**
   * Starts the worker threads (idempotent). The pool does so itself at the first burst: a proxy whose
   * CONNECTs come one at a time never pays a thread's memory (~15 MiB each).
   */
  start(): void {
    if (this.started) return
    this.started = true
    for (let i = 0; i < this.size; i++) {
      const w = siblingWorker(import.meta.url, 'verify-worker')
      w.on('message', (msg: { id: number; results: Result[] } | { ready: true }) => {
        if ('ready' in msg) return void this.ready.add(w)
        const batch = this.pending.get(msg.id)
        this.pending.delete(msg.id)
        batch?.items.forEach((item, j) => item.resolve(msg.results[j]!))
      })
      w.on('error', () => this.retire(w))
      w.on('exit', () => this.retire(w))
      w.unref() // never keeps the process alive on its own
      this.workers.push(w)
    }
  }

  /** A worker that failed: its requests are verified inline, and it gets no more. */
  private retire(w: Worker): void {
    const i = this.workers.indexOf(w)
    if (i >= 0) this.workers.splice(i, 1)
    this.ready.delete(w)
    for (const [id, batch] of this.pending) {
      if (batch.worker !== w) continue
      this.pending.delete(id)
      for (const item of batch.items) item.resolve(authenticateFields(item.fields, this.cfg))
    }
  }

  /** The result at once when checked inline; a promise when a worker checks it. */
  verify(fields: CredentialFields): Result | Promise<Result> {
    const inline = this.inlinePays()
    if (!inline) this.start() // a burst: from now on (once loaded) the workers take what the budget does not
    if (inline || this.ready.size === 0) {
      this.counts.inline++
      return authenticateFields(fields, this.cfg)
    }
    this.counts.pooled++
    return new Promise((resolve) => {
      this.queue.push({ fields, resolve })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  private inlinePays(): boolean {
    if (this.queue.length > 0 || this.pending.size > 0) return false
    const now = performance.now()
    if (now - this.windowStart >= INLINE_WINDOW_MS) {
      this.windowStart = now
      this.inlineInWindow = 0
    }
    return this.inlineInWindow++ < INLINE_PER_WINDOW
  }

  private flush(): void {
    this.scheduled = false
    const queue = this.queue
    this.queue = []
    // Spread the batch over the ready workers in contiguous slices.
    const ready = [...this.ready]
    const slice = Math.ceil(queue.length / Math.max(1, ready.length))
    for (let start = 0; start < queue.length; start += slice) {
      const part = queue.slice(start, start + slice)
      const id = this.nextId++
      const worker = ready[this.nextWorker++ % Math.max(1, ready.length)]
      if (!worker) {
        for (const item of part) item.resolve(authenticateFields(item.fields, this.cfg))
        continue
      }
      this.pending.set(id, { worker, items: part })
      worker.postMessage({ id, cfg: this.cfg, items: part.map((p) => p.fields) })
    }
  }

  async close(): Promise<void> {
    const workers = [...this.workers]
    this.workers.length = 0
    this.ready.clear()
    await Promise.all(workers.map((w) => w.terminate()))
  }
}
