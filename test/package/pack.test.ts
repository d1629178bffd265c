/**
 * The package as a user gets it: `npm pack` (of the current build), the tarball unpacked into a temporary
 * project's node_modules/flytrap, with only the dependencies its package.json declares next to it (linked
 * from this checkout's node_modules: no network, and a devDependency the code needs would not resolve).
 * Then `import('flytrap')` must give the library's public API, the auditor UI must be in the package, the
 * embedded broker must start from it, the binary must run, and a TypeScript consumer must type-check.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '')

describe('npm pack: the tarball works as a dependency', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'flytrap-pack-'))
  const project = join(tmp, 'project')
  const installed = join(project, 'node_modules', 'flytrap')
  let files: string[] = []
  let pkg: { dependencies: Record<string, string>; optionalDependencies?: Record<string, string>; files: string[]; exports: unknown; scripts: Record<string, string> }

  before(async () => {
    // --ignore-scripts: pack what `npm run build` made (prepare would build again).
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 })
    const packed = (JSON.parse(stdout) as { filename: string; files: { path: string }[] }[])[0]!
    files = packed.files.map((f) => f.path)
    mkdirSync(installed, { recursive: true })
    await run('tar', ['-xzf', join(tmp, packed.filename), '-C', installed, '--strip-components=1'])
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', dependencies: { flytrap: `file:${packed.filename}` } }))
    pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as typeof pkg
    // What npm would install: the declared dependencies (optional ones when this platform has them), hoisted.
    const declared = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {}).filter((d) => existsSync(join(ROOT, 'node_modules', d)))]
    for (const dep of declared) {
      const from = join(ROOT, 'node_modules', dep)
      assert.ok(existsSync(from), `${dep} is a dependency but is not installed in this checkout: run npm ci`)
      mkdirSync(dirname(join(project, 'node_modules', dep)), { recursive: true })
      symlinkSync(realpathSync(from), join(project, 'node_modules', dep))
    }
  })
  after(() => rmSync(tmp, { recursive: true, force: true }))

  test('the tarball holds the built library, its types, the CLI and the auditor UI, and no source maps or tests', () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'bin/run.js', 'oclif.manifest.json', 'web/dist/index.html', 'dist/commands/dev.js', 'dist/lib/dev/embedded-broker.js']) assert.ok(files.includes(f), `${f} in the tarball`)
    assert.ok(files.some((f) => /^web\/dist\/assets\/.+\.js$/.test(f)), 'the UI bundle in web/dist/assets')
    assert.deepEqual(files.filter((f) => f.endsWith('.map') || f.startsWith('test/') || f.startsWith('src/')), [])
  })

  test("import('flytrap') gives the public API, and WEB_DIST points at the packaged UI", async () => {
    const script = `
      const m = await import('flytrap')
      const names = ['startProxy', 'openJournal', 'openAccountability', 'verifyJournal', 'verifyEntry', 'checkBundle', 'exportBundle', 'buildReport', 'FlyTrapClient', 'connect', 'deployFlyTrap', 'openOutbox', 'signCredential', 'verifyCredential', 'startDevStack', 'startAnvil', 'startMosquitto', 'startEmbeddedBroker', 'FlytrapError', 'jsonLogger']
      const out = { types: Object.fromEntries(names.map((n) => [n, typeof m[n]])), webDist: m.WEB_DIST, defaults: typeof m.PROXY_DEFAULTS, resolved: import.meta.resolve('flytrap') }
      const broker = await m.startEmbeddedBroker()
      out.broker = broker.url
      await broker.stop()
      console.log(JSON.stringify(out))`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project })
    const out = JSON.parse(stdout) as { types: Record<string, string>; webDist: string; defaults: string; resolved: string; broker: string }
    for (const [name, type] of Object.entries(out.types)) assert.equal(type, 'function', `${name} is exported`)
    assert.equal(out.defaults, 'object')
    assert.equal(out.resolved, `file://${join(installed, 'dist', 'index.js')}`)
    assert.equal(out.webDist, join(installed, 'web', 'dist'))
    assert.ok(existsSync(join(out.webDist, 'index.html')))
    assert.match(out.broker, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
  })

  test('the packaged binary runs (oclif finds its commands in dist/ through the manifest)', async () => {
    const { stdout } = await run(process.execPath, [join(installed, 'bin', 'run.js'), 'dev', '--help'], { cwd: project, env: { ...process.env, NO_COLOR: '1' } })
    assert.match(stdout, /--broker=<value>/)
    assert.match(stdout, /embedded/)
  })

  test('a TypeScript consumer type-checks against dist/index.d.ts', async () => {
    writeFileSync(
      join(project, 'main.ts'),
      `import { startProxy, openJournal, FlyTrapClient, type ProxyOptions, type VerifyReport } from 'flytrap'
const start: (o: ProxyOptions) => Promise<unknown> = startProxy
const open: typeof openJournal = openJournal
const report: VerifyReport | null = null
export { start, open, report, FlyTrapClient }
`,
    )
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    await run(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--typeRoots', join(ROOT, 'node_modules', '@types'), '--types', 'node', 'main.ts'], { cwd: project }).catch((err: { stdout?: string; message: string }) => {
      throw new Error(`tsc: ${err.stdout ?? err.message}`)
    })
  })

  test('package.json: exports point at the built files; prepare does not build twice', () => {
    assert.deepEqual(pkg.exports, { '.': { types: './dist/index.d.ts', default: './dist/index.js' }, './package.json': './package.json' })
    assert.ok(pkg.files.includes('web/dist'))
    assert.equal(pkg.dependencies.aedes, '2.0.0-beta.1', 'the embedded broker is pinned to the exact release it is tested with')
    assert.equal(pkg.scripts.prepare, 'node scripts/prepare.mjs')
  })
})

describe('scripts/prepare.mjs (npm ci and npx flytrap both run prepare)', () => {
  test('right after a build it says the build is up to date; a newer source makes a build due', async () => {
    const prepare = join(ROOT, 'scripts', 'prepare.mjs')
    // A copy of the layout with its own mtimes, so the checkout's build is not touched.
    const tmp = mkdtempSync(join(tmpdir(), 'flytrap-prepare-'))
    try {
      const write = (p: string, text = '') => {
        mkdirSync(dirname(join(tmp, p)), { recursive: true })
        writeFileSync(join(tmp, p), text)
      }
      for (const p of ['src/index.ts', 'contracts/FlyTrap.sol', 'web/src/main.ts', 'web/index.html', 'tsconfig.json', 'package.json', 'scripts/compile-contract.ts']) write(p)
      write('scripts/prepare.mjs', readFileSync(prepare, 'utf8'))
      const check = () => run(process.execPath, [join(tmp, 'scripts', 'prepare.mjs'), '--check']).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
      )
      assert.deepEqual(await check(), { code: 1, out: 'flytrap: a build is due: not built yet (dist/index.js, dist/commands/dev.js, src/lib/chain/artifacts/FlyTrap.ts, web/dist/index.html missing)\n' })
      await new Promise((r) => setTimeout(r, 20))
      for (const p of ['dist/index.js', 'dist/commands/dev.js', 'src/lib/chain/artifacts/FlyTrap.ts', 'web/dist/index.html']) write(p)
      assert.deepEqual(await check(), { code: 0, out: 'flytrap: the build is up to date\n' })
      await new Promise((r) => setTimeout(r, 20))
      write('src/lib/proxy/new.ts')
      assert.deepEqual(await check(), { code: 1, out: 'flytrap: a build is due: src changed since the last build\n' })
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  })
})
