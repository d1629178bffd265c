/**
 * Durable journal throughput: entries/s through Journal.append with O_DSYNC on (the strict path's cost),
 * one core, real disk under a temp directory.
 * Usage: npx tsx scripts/bench-journal.ts [--entries 20000] [--window 64] [--serial 2000] [--impl <journal.js>] [--json]
 *
 * serial: one append at a time, each awaited (a lone QoS 1 round trip's journal share). pipelined: `window`
 * appends in flight (a busy connection), so group commit batches them. CPU µs/entry (process.cpuUsage) is
 * reported too: it moves less than wall time when other processes share the cores. `--impl` loads another
 * build's journal module (e.g. a copy of dist/ from before a change) to compare on the same machine state.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { performance } from 'node:perf_hooks'
import type { EntryInput } from '../src/lib/audit/entry.js'
import type * as JournalModule from '../src/lib/audit/journal.js'

const args = process.argv.slice(2)
const opt = (name: string, dflt: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : dflt)
const entries = opt('entries', 20_000)
const window = opt('window', 64)
const serial = opt('serial', 2000)
const impl = args.includes('--impl') ? pathToFileURL(resolve(args[args.indexOf('--impl') + 1]!)).href : '../src/lib/audit/journal.js'
const asJson = args.includes('--json')

const { openJournal } = (await import(impl)) as typeof JournalModule

const input = (i: number): EntryInput => ({
  kind: 'publish',
  outcome: 'allow',
  reason: 'ok',
  address: '0x' + (i % 97).toString(16).padStart(40, '0'),
  clientId: `sensor-${i % 97}`,
  ip: '127.0.0.1',
  topic: `bench/t/${i % 13}`,
})

async function run(mode: 'serial' | 'pipelined', n: number): Promise<{ mode: string; entries: number; perSec: number; wallUsPerEntry: number; cpuUsPerEntry: number; batches: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flytrap-bench-journal-'))
  const j = await openJournal({ dataDir, fsync: true })
  try {
    for (let i = 0; i < 50; i++) await j.append(input(i)) // warm up (segment open, JIT)
    const before = j.stats().batches
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    if (mode === 'serial') {
      for (let i = 0; i < n; i++) await j.append(input(i))
    } else {
      let next = 0
      const worker = async () => {
        while (next < n) await j.append(input(next++))
      }
      await Promise.all(Array.from({ length: window }, worker))
    }
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    return { mode, entries: n, perSec: Math.round((n / ms) * 1000), wallUsPerEntry: +((ms * 1000) / n).toFixed(1), cpuUsPerEntry: +((cpu.user + cpu.system) / n).toFixed(1), batches: j.stats().batches - before }
  } finally {
    await j.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const results = [await run('serial', serial), await run('pipelined', entries)]
if (asJson) console.log(JSON.stringify({ impl, window, results }))
else for (const r of results) console.log(`${r.mode.padEnd(9)} ${String(r.entries).padStart(6)} entries  ${String(r.perSec).padStart(7)}/s  wall ${r.wallUsPerEntry} µs/entry  cpu ${r.cpuUsPerEntry} µs/entry  ${r.batches} batches`)
