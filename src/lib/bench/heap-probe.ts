/**
 * Preloaded into every proxy process by `bench scale` (`node --expose-gc --import heap-probe.js`; cluster
 * workers inherit both): on SIGUSR2 a full collection, then process.memoryUsage() is written to
 * $FLYTRAP_HEAP_PROBE_DIR/<pid>.json. Resident memory alone tells little per session: it keeps the garbage of
 * the connection burst and the heap pages V8 does not give back, and a burst starts the verify threads.
 */
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.env.FLYTRAP_HEAP_PROBE_DIR
const gc = (globalThis as { gc?: () => void }).gc
if (dir && gc) {
  process.on('SIGUSR2', () => {
    gc()
    setImmediate(() => {
      gc() // a second pass collects what the first one's finalizers let go
      const u = process.memoryUsage()
      const file = join(dir, `${process.pid}.json`)
      writeFileSync(`${file}.tmp`, JSON.stringify({ heapUsed: u.heapUsed, external: u.external, rss: u.rss }))
      renameSync(`${file}.tmp`, file)
    })
  })
}
