/**
 * The bundle checker must run in a browser too (the auditor UI checks an uploaded bundle against the chain
 * node the server uses): src/lib/audit/evidence/check.ts and everything it imports, transitively, use no
 * `node:` module, no Node-only global (Buffer, process) and no package but ethers and hash-wasm (keccak in
 * WebAssembly, crypto/keccak.ts; it runs in browsers as it is).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Packages known to work unchanged in a browser (hash-wasm: pure JS + WASM, no Node API). */
const BROWSER_PACKAGES = new Set(['ethers', 'hash-wasm'])

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

test('check.ts and its imports are isomorphic (ethers, hash-wasm and pure code only)', () => {
  const seen = new Set<string>()
  const todo = [join(ROOT, 'src/lib/audit/evidence/check.ts')]
  const problems: string[] = []
  while (todo.length > 0) {
    const file = todo.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    const code = readFileSync(file, 'utf8')
    const body = code.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
    for (const m of body.matchAll(/(?:import|export)\s[^'"]*?from\s+'([^']+)'/g)) {
      const spec = m[1]!
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
      else if (!BROWSER_PACKAGES.has(spec)) problems.push(`${file.slice(ROOT.length + 1)} imports ${spec}`)
    }
    for (const g of ['Buffer', 'process.', 'require(']) if (body.includes(g)) problems.push(`${file.slice(ROOT.length + 1)} uses ${g}`)
  }
  assert.ok(seen.size > 8, `walked ${seen.size} files`)
  assert.deepEqual(problems, [])
})
