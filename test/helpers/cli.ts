/** Runs the built `flytrap` binary (bin/run.js) as a child process, as a user would. */
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

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
