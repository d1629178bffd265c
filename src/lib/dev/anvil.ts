/**
 * Starts the bundled anvil (npm @foundry-rs/anvil ships the binary in a per-platform package) as a child
 * process on a free loopback port, optionally persisting its state to a file so restarts keep the chain.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { FlytrapError } from '../errors.js'

export interface AnvilOptions {
  port?: number
  host?: string
  /** Load from and dump to this file (anvil --state). */
  stateFile?: string
  /** Mine a block every N seconds instead of on every transaction. */
  blockTime?: number
  chainId?: number
  accounts?: number
  /** Block gas limit (anvil --gas-limit), for benchmarks that pack many transactions into a block. */
  gasLimit?: number
  /** Milliseconds to wait for anvil to listen. */
  timeoutMs?: number
}

export interface AnvilHandle {
  rpcUrl: string
  port: number
  process: ChildProcess
  stop(): Promise<void>
}

/** Anvil's well-known dev mnemonic accounts (public test keys, funded with 10,000 ETH on every anvil). */
export const ANVIL_DEV_KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6',
] as const

export function anvilBinary(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const platform = process.platform === 'win32' ? 'win32' : process.platform
  const require = createRequire(import.meta.url)
  try {
    const pkg = require.resolve(`@foundry-rs/anvil-${platform}-${arch}/package.json`)
    const bin = join(dirname(pkg), 'bin', platform === 'win32' ? 'anvil.exe' : 'anvil')
    if (existsSync(bin)) return bin
  } catch {
    // fall through to PATH
  }
  return 'anvil'
}

export async function startAnvil(opts: AnvilOptions = {}): Promise<AnvilHandle> {
  const host = opts.host ?? '127.0.0.1'
  const args = ['--host', host, '--port', String(opts.port ?? 0), '--accounts', String(opts.accounts ?? 10)]
  if (opts.stateFile) args.push('--state', opts.stateFile)
  if (opts.blockTime) args.push('--block-time', String(opts.blockTime))
  if (opts.chainId) args.push('--chain-id', String(opts.chainId))
  if (opts.gasLimit) args.push('--gas-limit', String(opts.gasLimit))

  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => fail(new Error(`anvil did not start within ${opts.timeoutMs ?? 15_000} ms`)), opts.timeoutMs ?? 15_000)
    const fail = (err: Error) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new FlytrapError(`could not start anvil: ${err.message}${out ? `\n${out.slice(-500)}` : ''}`, { exit: 'unreachable', cause: err }))
    }
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const m = /Listening on [^\s]*:(\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        child.stdout.off('data', onData)
        child.stdout.resume() // keep draining so anvil never blocks on a full pipe
        resolve(Number(m[1]))
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    child.once('error', (err) => fail(err))
    child.once('exit', (code) => fail(new Error(`anvil exited with code ${code}`)))
  })
  child.removeAllListeners('exit')

  const rpcHost = host.includes(':') ? `[${host}]` : host
  return {
    rpcUrl: `http://${rpcHost}:${port}`,
    port,
    process: child,
    stop: () => stopChild(child),
  }
}

/** SIGTERM (anvil dumps its state on it), then SIGKILL if it lingers. */
export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}
