/**
 * The independent Python checker of evidence bundles (scripts/check-evidence.py, Debian's /usr/bin/python3 with
 * python3-pycryptodome): whether it can run here, and running it as a regulator would. On CI (CI set) a missing
 * python3 or Cryptodome is a failure (.ci/run installs them); elsewhere the tests skip with `missing`.
 */
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** Debian's python3 (FLYTRAP_PYTHON overrides it, e.g. to check the missing-python path). */
export const PYTHON = process.env.FLYTRAP_PYTHON ?? '/usr/bin/python3'
export const CHECKER = fileURLToPath(new URL('../../scripts/check-evidence.py', import.meta.url))
export const ON_CI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0'

/** Why the checker cannot run here, or null when it can. */
export function pythonMissing(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'from Cryptodome.Hash import keccak'], { encoding: 'utf8' })
  if (r.error) return `${PYTHON} is missing: install Debian's python3 and python3-pycryptodome (.ci/run does this) to run the independent checker`
  if (r.status !== 0) return `${PYTHON} has no Cryptodome: install Debian's python3-pycryptodome (.ci/run does this) to run the independent checker`
  return null
}

export interface PyCheck {
  code: number | null
  stdout: string
  stderr: string
  result: PyResult | null
}

export interface PyResult {
  ok: boolean
  offline: boolean
  steps: Record<string, { status: string; checked: number }>
  inScope: number[]
  redacted: number[]
  failures: { record: string; message: string }[]
  firstFailure: { record: string; message: string } | null
}

/** `python3 <script> <file> --json <args>`; `script` defaults to scripts/check-evidence.py. */
export function runPython(file: string, args: string[], script = CHECKER): Promise<PyCheck> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [script, file, '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`python3 ${script} ${file} timed out\n${stdout}\n${stderr}`))
    }, 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      let result: PyResult | null
      try {
        result = JSON.parse(stdout) as PyResult
      } catch {
        result = null
      }
      resolve({ code, stdout, stderr, result })
    })
  })
}
