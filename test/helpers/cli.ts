/**
 * The built `flytrap` binary (bin/run.js) as a child process, as a user would run it: one-shot commands
 * (runCli) and long-running ones (spawnCli, startCliProxy: a crash shows as the process exiting).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
