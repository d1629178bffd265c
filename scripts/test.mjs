#!/usr/bin/env node
// Runs every test/**/*.test.ts through Node's test runner with the tsx loader (Node 20 has no --test globs).
// Usage: node scripts/test.mjs [path-or-substring ...]
//
// A hang must cost minutes, not CI's 90-minute limit. Node 20 applies --test-timeout to each test and also to
// each file's process as a whole (hooks, teardown, a handle that keeps it alive): a file still running after it
// is failed and killed. So the limit sits above the slowest legitimate *file* (~3 min on a loaded 2-core box).
// A watchdog names the files that are still running long before that.
// FLYTRAP_TEST_TIMEOUT_MS and FLYTRAP_TEST_WATCHDOG_MIN override both.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { clearInterval, setInterval } from 'node:timers'

function collect(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return collect(path)
    return name.endsWith('.test.ts') ? [path] : []
  })
}

const filters = process.argv.slice(2)
const files = collect('test').sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
if (files.length === 0) {
  console.error('no test files matched', filters)
  process.exit(1)
}
const concurrency = process.env.FLYTRAP_TEST_CONCURRENCY ?? '2'
const timeoutMs = Number(process.env.FLYTRAP_TEST_TIMEOUT_MS ?? 600_000)
const watchdogMin = Number(process.env.FLYTRAP_TEST_WATCHDOG_MIN ?? 4)

const runner = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, `--test-timeout=${timeoutMs}`, ...files],
  { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } },
)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => runner.kill(signal))

/** The test files the runner's child processes are running now, with how long each has run (Linux /proc; elsewhere none). */
function runningFiles() {
  let pids
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p))
  } catch {
    return []
  }
  const ticks = 100 // USER_HZ, 100 on every Linux this runs on
  const uptimeSec = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0])
  const out = []
  for (const pid of pids) {
    try {
      // Fields after the command name (which may hold spaces): state is field 3, ppid 4, starttime 22.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[1]) !== runner.pid) continue
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      const file = args.find((a) => a.endsWith('.test.ts'))
      if (file) out.push({ pid, file: relative(process.cwd(), file), minutes: (uptimeSec - Number(fields[19]) / ticks) / 60 })
    } catch {
      // the process ended while being read
    }
  }
  return out
}

const watchdog = setInterval(() => {
  for (const r of runningFiles()) {
    if (r.minutes >= watchdogMin) {
      console.error(`[watchdog] ${r.file} still running after ${r.minutes.toFixed(1)} min (pid ${r.pid}); the runner fails and kills it at ${(timeoutMs / 60_000).toFixed(0)} min`)
    }
  }
}, Math.max(1_000, Math.min(60_000, watchdogMin * 60_000)))
watchdog.unref()

runner.on('exit', (code) => {
  clearInterval(watchdog)
  process.exit(code ?? 1)
})
