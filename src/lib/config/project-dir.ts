/**
 * The `.flytrap/` directory in the working directory: recorded deployments per chain and an optional
 * config file. Private keys are never stored here in clear (only a keystore path may be configured).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Deployment } from '../chain/client.js'
import { FlytrapError } from '../errors.js'

export interface FileConfig {
  rpc?: string
  contract?: string
  /** Path to an encrypted JSON keystore (never a raw key). */
  key?: string
  /** Chain ids that are permissioned (not readable by the public): no warning that reasons sent there are public. */
  permissionedChains?: number[]
}

/** Permissioned chain ids: FLYTRAP_PERMISSIONED_CHAINS (comma-separated) and the config file's permissionedChains. */
export function permissionedChains(dir = flytrapDir()): number[] {
  const env = (process.env.FLYTRAP_PERMISSIONED_CHAINS ?? '').split(',').map((s) => Number(s.trim())).filter((n) => Number.isSafeInteger(n) && n > 0)
  const file = readFileConfig(dir).permissionedChains
  return [...env, ...(Array.isArray(file) ? file.filter((n) => Number.isSafeInteger(n)) : [])]
}

export function flytrapDir(cwd = process.cwd()): string {
  return resolve(process.env.FLYTRAP_HOME ?? join(cwd, '.flytrap'))
}

function readJson<T>(file: string, fallback: T): T {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return fallback
  }
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new FlytrapError(`${file} is not valid JSON`, { exit: 'config', cause: err, suggestions: ['fix or delete the file'] })
  }
}

/** Writes via a temporary file and rename, so a crash never leaves half a file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 })
  renameSync(tmp, file)
}

export function readFileConfig(dir = flytrapDir()): FileConfig {
  const cfg = readJson<FileConfig & { privateKey?: unknown }>(join(dir, 'config.json'), {})
  if (cfg.key && /^(0x)?[0-9a-fA-F]{64}$/.test(cfg.key)) {
    throw new FlytrapError(`${join(dir, 'config.json')} holds a raw private key`, {
      exit: 'config',
      suggestions: ['store a keystore path instead: `flytrap device keygen --out key.json`, then "key": "key.json"'],
    })
  }
  return cfg
}

export function readDeployments(dir = flytrapDir()): Record<string, Deployment> {
  return readJson<Record<string, Deployment>>(join(dir, 'deployments.json'), {})
}

export function deploymentFor(chainId: number, dir = flytrapDir()): Deployment | undefined {
  return readDeployments(dir)[String(chainId)]
}

export function recordDeployment(d: Deployment, dir = flytrapDir()): string {
  mkdirSync(dir, { recursive: true })
  const all = readDeployments(dir)
  all[String(d.chainId)] = d
  const file = join(dir, 'deployments.json')
  writeJsonAtomic(file, all)
  return file
}
