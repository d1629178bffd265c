/**
 * Runs `flytrap`: the built binary (bin/run.js) as a child process, as a user would — one-shot commands
 * (`runCli`) and long-running ones (`spawnCli`, `startCliProxy`: a crash shows as the process exiting) — or
 * the same compiled commands inside the test process (`runInProcess`, below), for the fast command tests.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run } from '@oclif/core'
import { Exit, handle } from '@oclif/core/handle'
import { captureOutput } from '@oclif/test'
import chalk from 'chalk'
import { waitFor } from './wait.js'

export const BIN = new URL('../../bin/run.js', import.meta.url).pathname

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
  /** stdout parsed as JSON (for --json runs); throws with the output when it is not JSON. */
  json<T = Record<string, unknown>>(): T
}

export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...opts.env }
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`flytrap ${args.join(' ')} timed out\n${stdout}\n${stderr}`))
    }, opts.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({
        code,
        stdout,
        stderr,
        json<T>() {
          try {
            return JSON.parse(stdout) as T
          } catch {
            throw new Error(`not JSON (exit ${code}):\n${stdout}\n${stderr}`)
          }
        },
      })
    })
    child.stdin.end(opts.input ?? '')
  })
}

/** A fresh working directory, so each test has its own `.flytrap/`. */
export function tempCwd(prefix = 'flytrap-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export interface CliProxy {
  child: ChildProcess
  port: number
  url: string
  /** Everything the process wrote to stderr (JSON log lines, or a crash's stack trace). */
  stderr(): string
  alive(): boolean
  stop(): Promise<void>
}

/**
 * Starts `bin/run.js proxy start --json` against the fixture's chain and broker (dist/ must be current).
 * Resolves once it printed its listening address.
 */
export async function startCliProxy(e: { chain: { rpcUrl: string; address: string; deployBlock: number }; mosquitto: { url: string } }, extraArgs: string[] = []): Promise<CliProxy> {
  const args = ['proxy', 'start', '--json', '--listen', '127.0.0.1:0', '--broker', e.mosquitto.url, '--rpc', e.chain.rpcUrl, '--contract', e.chain.address, '--from-block', String(e.chain.deployBlock), '--poll-interval', '100ms', '--log-level', 'error', ...extraArgs]
  const cli = spawnCli(args, { cwd: tempCwd('flytrap-cli-proxy-') })
  const alive = () => cli.child.exitCode === null && cli.child.signalCode === null
  let result: { listening: { port: number }[] }
  try {
    result = await cli.firstJsonLine<typeof result>()
  } catch (err) {
    cli.child.kill('SIGKILL')
    throw err
  }
  if (!alive()) throw new Error(`flytrap proxy start exited (${cli.child.exitCode}):\n${cli.stdout()}\n${cli.stderr()}`)
  const port = result.listening[0]!.port
  return {
    child: cli.child,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    stderr: cli.stderr,
    alive,
    stop: async () => {
      if (alive()) await cli.stop('SIGTERM', 5_000)
    },
  }
}

export interface LongCli {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The first complete stdout line, parsed as JSON; rejects if the process exits first or after timeoutMs. */
  firstJsonLine<T = Record<string, unknown>>(timeoutMs?: number): Promise<T>
  /** Sends `signal` and waits up to timeoutMs for the exit; a process still running then is SIGKILLed (hung: true). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; hung: boolean }>
}

/** Spawns `bin/run.js <args>` (dist/ must be current) without FLYTRAP_* variables from the environment. */
export function spawnCli(args: string[], opts: { cwd: string; env?: Record<string, string> }): LongCli {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }
  for (const k of Object.keys(env)) if (k.startsWith('FLYTRAP_')) delete env[k]
  Object.assign(env, opts.env)
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })))
  let done = false
  void exited.then(() => (done = true))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    firstJsonLine: async <T,>(timeoutMs = 30_000) => {
      await waitFor(() => out.includes('\n') || done, timeoutMs, `a JSON line from flytrap ${args.join(' ')}`).catch((e: Error) => {
        throw new Error(`${e.message}\nstdout: ${out}\nstderr: ${err}`)
      })
      if (!out.includes('\n')) throw new Error(`flytrap ${args.join(' ')} exited (${child.exitCode}) before printing:\n${err}`)
      return JSON.parse(out.slice(0, out.indexOf('\n'))) as T
    },
    stop: async (signal = 'SIGTERM', timeoutMs = 15_000) => {
      if (!done) child.kill(signal)
      let hung = false
      const t = setTimeout(() => {
        hung = true
        child.kill('SIGKILL')
      }, timeoutMs)
      const r = await exited
      clearTimeout(t)
      return { ...r, hung }
    },
  }
}

/**
 * In-process runs: the same commands, from the same dist/commands the binary loads, without a node start-up
 * per run (a second or more each on a loaded machine). What `@oclif/test`'s `runCommand(argv, { root })` does — oclif's `run()` under
 * its `captureOutput` — with three differences, each needed here:
 *  - argv stays an array: `runCommand` joins it with spaces and splits it again, so `--reason 'proxy eu-1'`
 *    or `--client-id 'a\nb'` would arrive as several arguments;
 *  - an error is rendered by oclif's own `handle` (as `execute()` in bin/run.js does: the same message,
 *    wrapping, suggestions and help) with its `Exit.exit` stubbed, so `code` is the exit code the binary
 *    would have, not an error object to interpret;
 *  - NODE_ENV stays production (as bin/run.js runs): `captureOutput` would set "test", which makes oclif
 *    look for src/*.ts through tsconfig and warn about unparsed commands.
 * Every run gets the process-global state a fresh process would have, and gives it back afterwards: its
 * own cwd (`.flytrap/` is found from it), env (NO_COLOR, the given FLYTRAP_* overrides, the rest as this
 * process has it), argv, `process.exitCode`, no TTY on stdin/stdout/stderr (no prompts, no ora spinner),
 * chalk at level 0, and signal listeners removed. Runs are serialised: output capture patches
 * process.stdout/stderr, so two overlapping runs would see each other's output.
 * Long-running commands (`proxy start`, `dev`, `audit serve`) wait for a signal, install handlers for it and
 * may call process.exit(): they stay on the real binary (`runCli`, `spawnCli`), as does `bench`.
 */
export interface InProcessRun extends CliRun {
  /** What the command's run() returned (what --json prints on success); undefined on failure. */
  result: unknown
  /** The error the command ended with, as oclif's handler saw it (undefined on success and with --json). */
  error: (Error & { oclif?: { exit?: number } }) | undefined
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
let queue: Promise<unknown> = Promise.resolve()

class ProcessExit extends Error {
  constructor(readonly exitCode: number) {
    super(`process.exit(${exitCode}) called in-process`)
  }
}

/** terminalColumns: stdout is a terminal of that width (for the tables fitted to it); otherwise no TTY anywhere. */
type InProcessOpts = { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number; terminalColumns?: number }

/**
 * A run that outlives `timeoutMs` (60 s, as runCli) fails the test, like runCli's kill: the process-global
 * state is given back at once, and the timers the run started are cleared, so a command stuck waiting
 * (e.g. polling for a receipt) neither holds the next runs nor keeps the test file from exiting.
 */
export function runInProcess(args: string[], opts: InProcessOpts = {}): Promise<InProcessRun> {
  const next = queue.then(() => withTimeout(args, opts))
  queue = next.catch(() => undefined)
  return next
}

async function withTimeout(args: string[], opts: InProcessOpts): Promise<InProcessRun> {
  const timers = new Set<NodeJS.Timeout>()
  const { setTimeout: st, setInterval: si } = globalThis
  const track = <F extends typeof setTimeout | typeof setInterval>(f: F) =>
    ((...a: Parameters<F>) => {
      const t = (f as (...x: unknown[]) => NodeJS.Timeout)(...a)
      timers.add(t)
      return t
    }) as unknown as F
  globalThis.setTimeout = track(st)
  globalThis.setInterval = track(si)
  let restore: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      runIsolated(args, opts, (r) => (restore = r)),
      new Promise<never>((_, reject) => {
        timer = st(() => {
          restore?.()
          for (const t of timers) clearTimeout(t)
          reject(new Error(`flytrap ${args.join(' ')} timed out in-process after ${opts.timeoutMs ?? 60_000} ms`))
        }, opts.timeoutMs ?? 60_000)
      }),
    ])
  } finally {
    clearTimeout(timer)
    globalThis.setTimeout = st
    globalThis.setInterval = si
  }
}

async function runIsolated(args: string[], opts: InProcessOpts, onRestore: (restore: () => void) => void): Promise<InProcessRun> {
  if (!existsSync(join(ROOT, 'dist', 'commands'))) throw new Error('runInProcess needs dist/: run `npm run build`')
  const saved = {
    cwd: process.cwd(),
    env: { ...process.env },
    argv: process.argv,
    exitCode: process.exitCode,
    exit: process.exit,
    handleExit: Exit.exit,
    chalkLevel: chalk.level,
    tty: ttyStreams().map((s) => Object.getOwnPropertyDescriptor(s, 'isTTY')),
    columns: Object.getOwnPropertyDescriptor(process.stdout, 'columns'),
    signals: signalNames.map((sig) => process.listeners(sig)),
    stdoutWrite: process.stdout.write,
    stderrWrite: process.stderr.write,
  }
  let restored = false
  // Once: at the end of the run, or at its timeout (then the abandoned run's own end restores nothing).
  const restore = () => {
    if (restored) return
    restored = true
    process.chdir(saved.cwd)
    for (const k of Object.keys(process.env)) if (!(k in saved.env)) delete process.env[k]
    Object.assign(process.env, saved.env)
    process.argv = saved.argv
    process.exitCode = saved.exitCode
    process.exit = saved.exit
    Exit.exit = saved.handleExit
    chalk.level = saved.chalkLevel
    ttyStreams().forEach((s, i) => {
      const d = saved.tty[i]
      if (d) Object.defineProperty(s, 'isTTY', d)
      else delete (s as { isTTY?: boolean }).isTTY
    })
    if (saved.columns) Object.defineProperty(process.stdout, 'columns', saved.columns)
    else delete (process.stdout as { columns?: number }).columns
    signalNames.forEach((sig, i) => {
      for (const l of process.listeners(sig)) if (!saved.signals[i]!.includes(l)) process.removeListener(sig, l)
    })
    process.stdout.write = saved.stdoutWrite
    process.stderr.write = saved.stderrWrite
  }
  onRestore(restore)
  let code: number | undefined
  try {
    for (const [k, v] of Object.entries({ NO_COLOR: '1', FORCE_COLOR: '0', ...opts.env })) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    if (opts.cwd) process.chdir(opts.cwd)
    process.argv = [process.execPath, BIN, ...args]
    process.exitCode = undefined
    process.exit = ((c?: number) => {
      throw new ProcessExit(c ?? 0)
    }) as typeof process.exit
    // handle() calls Exit.exit last: returning instead of exiting ends it the same way.
    Exit.exit = ((c = 0) => {
      code = c
    }) as typeof Exit.exit
    chalk.level = 0
    for (const s of ttyStreams()) Object.defineProperty(s, 'isTTY', { value: false, configurable: true, writable: true })
    if (opts.terminalColumns) {
      Object.defineProperty(process.stdout, 'isTTY', { value: true, configurable: true, writable: true })
      Object.defineProperty(process.stdout, 'columns', { value: opts.terminalColumns, configurable: true, writable: true })
    }

    const realStdoutWrite = process.stdout.write
    const out = await captureOutput(
      async () => {
        const unpass = passRunnerFrames(realStdoutWrite)
        try {
          return await run(args, { root: ROOT }) // a fresh Config each run (~10 ms): run() given a loaded Config reloads it and loses commands
        } catch (err) {
          if (err instanceof ProcessExit) code = err.exitCode
          else if (!restored) await handle(err as Error) // prints as the binary does; sets `code` through the stubbed Exit (real again once abandoned)
          throw err
        } finally {
          if (!restored) unpass()
        }
      },
      { testNodeEnv: process.env.NODE_ENV ?? 'production' },
    )
    if (restored) process.exitCode = saved.exitCode // abandoned at its timeout: what it set since is not the test file's exit
    const exit = code ?? (typeof process.exitCode === 'number' ? process.exitCode : 0)
    return {
      code: exit,
      stdout: out.stdout,
      stderr: out.stderr,
      result: out.result,
      error: out.error,
      json<T>() {
        try {
          return JSON.parse(out.stdout) as T
        } catch {
          throw new Error(`not JSON (exit ${exit}):\n${out.stdout}\n${out.stderr}`)
        }
      },
    }
  } finally {
    restore()
  }
}

/** A getter: process.stdin is created on first use, which files that never run in-process need not pay. */
const ttyStreams = (): (NodeJS.ReadStream | NodeJS.WriteStream)[] => [process.stdin, process.stdout, process.stderr]
const signalNames: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']

/**
 * Under `node --test` this process reports to the runner by writing v8-serialised frames to stdout, from a
 * stream, at any moment — also while a command's output is being captured. Swallowing them loses test
 * events; so frames (Buffers opening with the v8 serialiser's 0xFF header, never a UTF-8 text's first byte)
 * go past captureOutput's mock to the real stdout. Returns the undo.
 */
function passRunnerFrames(real: typeof process.stdout.write): () => void {
  const mock = process.stdout.write
  process.stdout.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    const frame = chunk instanceof Uint8Array && chunk[0] === 0xff
    return (frame ? real : mock).apply(this, [chunk, ...rest] as Parameters<typeof mock>)
  } as typeof process.stdout.write
  return () => {
    process.stdout.write = mock
  }
}
