/**
 * The Dockerfile, without a Docker engine: its build stage is repeated in a temporary directory that holds
 * exactly what its COPY lines copy from a clean checkout (the files git tracks, or would track), with its RUN
 * lines run there; then every path the runtime stage copies from the build stage must exist, and the image's
 * layout (only those paths) must run the CLI and find the auditor UI. A COPY that is missing (web/ once was)
 * makes the build step fail here as it would in `docker build`.
 *
 * Two substitutions, both asserted: `npm ci --ignore-scripts` becomes links to this checkout's node_modules
 * (no network), and `npm prune` is skipped (it would prune through those links).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '')

interface Instruction {
  op: string
  args: string
}

/** Dockerfile instructions: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd()
    if (!pending && (/^\s*#/.test(line) || !line.trim())) continue
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' '
      continue
    }
    const full = (pending + line).trim()
    pending = ''
    const m = /^(\w+)\s+(.*)$/s.exec(full)
    assert.ok(m, `unparsed Dockerfile line: ${full}`)
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() })
  }
  return out
}

/** .dockerignore as Docker reads it (paths from the context root; `*` within a level, `**` across levels; a directory excludes its contents). */
function dockerignore(text: string): (path: string) => boolean {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((p) => {
      assert.ok(!p.startsWith('!'), `exceptions (${p}) are not supported by this test`)
      const body = posix.normalize(p.replace(/^\//, '')).replace(/\/$/, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\0/g, '.*')
      return new RegExp(`^${body}(/.*)?$`)
    })
  return (path) => patterns.some((re) => re.test(path))
}

/** Stages, split at FROM, each with its name (`AS x`). */
function stages(ins: Instruction[]): { from: string; name?: string; steps: Instruction[] }[] {
  const out: { from: string; name?: string; steps: Instruction[] }[] = []
  for (const i of ins) {
    if (i.op === 'FROM') {
      const [from, as, name] = i.args.split(/\s+/)
      out.push({ from: from!, name: as?.toUpperCase() === 'AS' ? name : undefined, steps: [] })
    } else out.at(-1)?.steps.push(i)
  }
  return out
}

/** COPY [--from=x] src... dest → its sources, destination and stage. */
function copyArgs(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.split(/\s+/)
  let from: string | undefined
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length)
  }
  const dest = words.pop()!
  return { from, sources: words, dest }
}

describe('Dockerfile: the build stage from exactly the files it copies', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'flytrap-docker-'))
  const app = join(tmp, 'app')
  const image = join(tmp, 'image')
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
  const [build, runtime] = stages(parseDockerfile(dockerfile))
  after(() => rmSync(tmp, { recursive: true, force: true }))

  // What a clean clone holds (tracked files, and new files git would track, not the ignored build output),
  // less what .dockerignore keeps out of the build context.
  let tracked: Set<string>
  before(async () => {
    const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 })
    const ignored = dockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'))
    tracked = new Set(stdout.split('\0').filter((f) => f && existsSync(join(ROOT, f)) && !ignored(f)))
    mkdirSync(app, { recursive: true })
  })

  const copyFromCheckout = (source: string, dest: string, workdir: string) => {
    const src = posix.normalize(source).replace(/\/$/, '')
    const target = join(app, posix.relative('/app', posix.resolve(workdir, dest)))
    const files = [...tracked].filter((f) => f === src || f.startsWith(`${src}/`))
    assert.ok(files.length > 0, `COPY ${source}: nothing in a clean checkout`)
    for (const f of files) {
      // A directory's contents go into dest; a file goes into dest/ (dest ending in /) or becomes dest.
      const to = f === src ? (dest.endsWith('/') ? join(target, posix.basename(f)) : target) : join(target, f.slice(src.length + 1))
      mkdirSync(dirname(to), { recursive: true })
      cpSync(join(ROOT, f), to)
    }
  }

  test('stage 1 (build): every COPY from the checkout, every RUN succeeds', { timeout: 600_000 }, async () => {
    assert.equal(build?.name, 'build')
    let workdir = '/'
    for (const step of build!.steps) {
      if (step.op === 'WORKDIR') workdir = posix.resolve(workdir, step.args)
      else if (step.op === 'COPY') {
        const c = copyArgs(step.args)
        assert.equal(c.from, undefined, 'the build stage copies from the context only')
        for (const s of c.sources) copyFromCheckout(s, c.dest, workdir)
      } else if (step.op === 'RUN') {
        const cwd = join(app, posix.relative('/app', workdir))
        const commands = step.args.split('&&').map((s) => s.trim())
        for (const cmd of commands) {
          if (cmd === 'npm ci --ignore-scripts') {
            // Offline stand-in: the packages package-lock.json pins, as installed in this checkout.
            assert.ok(existsSync(join(cwd, 'package-lock.json')), 'npm ci needs package-lock.json copied first')
            mkdirSync(join(cwd, 'node_modules'))
            for (const e of readdirSync(join(ROOT, 'node_modules'))) if (e !== '.vite-temp') symlinkSync(realpathSync(join(ROOT, 'node_modules', e)), join(cwd, 'node_modules', e))
          } else if (cmd.startsWith('npm prune ')) {
            continue
          } else {
            await run('sh', ['-ec', cmd], { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NODE_ENV: undefined } }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
              throw new Error(`RUN ${cmd} failed in a directory holding only what the Dockerfile copies:\n${err.stdout ?? ''}\n${err.stderr ?? err.message}`)
            })
          }
        }
      }
    }
    assert.ok(existsSync(join(app, 'dist', 'index.js')), 'the build made dist/index.js')
    assert.ok(existsSync(join(app, 'web', 'dist', 'index.html')), 'the build made the auditor UI')
  })

  test('stage 2 (runtime): every path it copies from the build stage exists, and that layout runs the CLI and finds the UI', async (t) => {
    if (!existsSync(join(app, 'dist', 'index.js'))) return t.skip('needs the build stage')
    let workdir = '/'
    const copied: string[] = []
    for (const step of runtime!.steps) {
      if (step.op === 'WORKDIR') workdir = posix.resolve(workdir, step.args)
      if (step.op !== 'COPY') continue
      const c = copyArgs(step.args)
      assert.equal(c.from, 'build', `runtime COPY ${step.args} comes from the build stage`)
      for (const s of c.sources) {
        const from = join(app, posix.relative('/app', s))
        assert.ok(existsSync(from), `${s} exists after the build stage`)
        const dest = posix.resolve(workdir, c.dest)
        const to = join(image, posix.relative('/app', c.dest.endsWith('/') && !statSync(from).isDirectory() ? posix.join(dest, posix.basename(s)) : dest))
        mkdirSync(dirname(to), { recursive: true })
        // node_modules holds links into this checkout: link the directory rather than copy it.
        if (s.endsWith('/node_modules')) symlinkSync(from, to)
        else cpSync(from, to, { recursive: true })
        copied.push(posix.relative('/app', dest))
      }
    }
    for (const p of ['node_modules', 'bin', 'dist', 'web/dist']) assert.ok(copied.includes(p), `the runtime image gets ${p}`)
    const entry = runtime!.steps.find((s) => s.op === 'ENTRYPOINT')
    assert.deepEqual(JSON.parse(entry!.args), ['node', 'bin/run.js'])
    const env = { ...process.env, NODE_ENV: 'production', NO_COLOR: '1' }
    const version = await run(process.execPath, ['bin/run.js', '--version'], { cwd: image, env })
    assert.match(version.stdout, /^flytrap\/\d+\.\d+\.\d+/)
    const serve = await run(process.execPath, ['bin/run.js', 'audit', 'serve', '--help'], { cwd: image, env })
    assert.match(serve.stdout, /--data-dir/)
    // audit serve serves web/dist relative to its own file: in the image that is /app/web/dist.
    assert.ok(existsSync(join(image, 'web', 'dist', 'index.html')))
    const lib = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('./dist/index.js'); console.log(m.WEB_DIST)"], { cwd: image, env })
    assert.equal(lib.stdout.trim(), join(image, 'web', 'dist'))
  })
})
