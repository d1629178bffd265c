// Writes oclif.manifest.json from the compiled commands, or with --check fails when the committed one is stale.
import { readFileSync, writeFileSync } from 'node:fs'
import { Plugin } from '@oclif/core'

const root = new URL('..', import.meta.url).pathname
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true, isRoot: true })
await plugin.load()
// oclif loads command modules concurrently, so their order can follow load timing: sort by id, so the
// manifest is the same on every machine.
const manifest = { ...plugin.manifest, commands: Object.fromEntries(Object.entries(plugin.manifest.commands).sort(([a], [b]) => a.localeCompare(b))) }
const fresh = JSON.stringify(manifest, null, 2) + '\n'
const file = new URL('../oclif.manifest.json', import.meta.url)

if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(file, 'utf8')
  } catch {
    // missing counts as stale
  }
  if (current !== fresh) {
    // Say where it differs, so a stale manifest in CI is easy to explain.
    const a = current.split('\n')
    const b = fresh.split('\n')
    const i = a.findIndex((line, n) => line !== b[n])
    console.error(`oclif.manifest.json is stale at line ${i + 1}:\n  committed: ${a[i]?.trim()}\n  expected:  ${b[i]?.trim()}`)
    console.error('run `npm run manifest` and commit it')
    process.exit(1)
  }
  console.log(`oclif.manifest.json is up to date (${Object.keys(manifest.commands).length} commands)`)
} else {
  writeFileSync(file, fresh)
  console.log(`wrote oclif.manifest.json (${Object.keys(manifest.commands).length} commands)`)
}
