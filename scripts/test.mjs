#!/usr/bin/env node
// Runs every test/**/*.test.ts through Node's test runner with the tsx loader (Node 20 has no --test globs).
// Usage: node scripts/test.mjs [path-or-substring ...]
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

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
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...files],
  { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } },
)
process.exit(result.status ?? 1)
