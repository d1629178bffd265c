/**
 * The layers of docs/architecture.md, checked on the source's own imports: a module of src/lib imports only
 * from its own area or from a lower layer (never sideways, so `proxy/` and `audit/` never meet), src/lib never
 * imports the commands or the CLI's rendering libraries (only `cli/`, the commands' base class and output helpers). A new upward or sideways import fails here, naming it.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const LIB = join(ROOT, 'src', 'lib')

/** The layer of each area of src/lib, bottom (shared ground) first, as docs/architecture.md draws them. */
const LAYER: Record<string, number> = {
  'errors.ts': -1, // the error type everything throws, under the rest of the shared ground
  'log.ts': 0,
  net: 0,
  fs: 0,
  'worker-entry.ts': 0,
  parse: 0, // the one parser of durations, dates, sizes and country codes
  crypto: 0, // keccak-256 in WebAssembly: the journal's hashes and the credential check's
  chain: 1,
  mqtt: 1,
  policy: 2,
  auth: 2,
  geo: 2,
  config: 2,
  proxy: 3,
  audit: 3,
  web: 4,
  dev: 4,
  cli: 4,
  // The benchmark starts its stack with dev/'s launchers (anvil, mosquitto, certificates, ports).
  bench: 5,
}
/** What only commands may use: src/lib computes, commands render (conventions.md). */
const RENDERING = ['@oclif/', 'chalk', 'ora', '@inquirer/', 'cli-table3']

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : []
  })
}
/** `proxy` for src/lib/proxy/…; `log.ts` for src/lib/log.ts (an import names it log.js). */
const areaOf = (path: string) => relative(LIB, path).split('/')[0]!.replace(/\.js$/, '.ts')
/** Static imports and re-exports (`… from 'x'`), side-effect imports (`import 'x'`) and dynamic `import('x')`. */
const specifiers = (source: string) =>
  [...source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => (m[1] ?? m[2] ?? m[3])!)

const files = sources(LIB)

describe('the layers of src/lib', () => {
  test('every area has a layer', () => {
    const areas = [...new Set(files.map(areaOf))].sort()
    assert.deepEqual(areas.filter((a) => LAYER[a] === undefined), [], 'an area docs/architecture.md does not place (add it there and here)')
  })

  test('imports go to the same area or a lower layer, never sideways or up (proxy/ and audit/ never meet)', () => {
    const wrong: string[] = []
    for (const file of files) {
      const from = areaOf(file)
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue
        const target = normalize(join(dirname(file), spec))
        const rel = relative(LIB, target)
        if (rel.startsWith('..')) {
          wrong.push(`${relative(ROOT, file)} imports ${spec}, outside src/lib`)
          continue
        }
        const to = areaOf(target)
        if (to === from) continue
        if (!(LAYER[to]! < LAYER[from]!)) wrong.push(`${relative(ROOT, file)} (${from}, layer ${LAYER[from]}) imports ${spec} (${to}, layer ${LAYER[to]})`)
      }
    }
    assert.deepEqual(wrong, [])
  })

  test('src/lib never imports the commands or the CLI rendering libraries (but cli/, the commands\' own base class and output)', () => {
    const wrong: string[] = []
    for (const file of files.filter((f) => areaOf(f) !== 'cli')) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        if (RENDERING.some((r) => spec === r || spec.startsWith(r))) wrong.push(`${relative(ROOT, file)} imports ${spec}`)
        if (spec.includes('/commands/')) wrong.push(`${relative(ROOT, file)} imports ${spec}`)
      }
    }
    assert.deepEqual(wrong, [])
  })

  test('the check sees imports (a known import of each kind is found)', () => {
    const session = readFileSync(join(LIB, 'proxy', 'session.ts'), 'utf8')
    assert.ok(specifiers(session).includes('../policy/types.js'), 'a type import')
    assert.ok(specifiers(session).includes('./handshake.js'), 'a value import')
    assert.ok(specifiers("const m = await import('../audit/x.js')").includes('../audit/x.js'), 'a dynamic import')
    assert.ok(specifiers("export { a } from '../audit/x.js'").includes('../audit/x.js'), 'a re-export')
    assert.ok(specifiers("import '../audit/x.js'").includes('../audit/x.js'), 'a side-effect import')
  })
})
