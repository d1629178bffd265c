/**
 * HAProxy in TCP mode as the plain-relay reference: the cost of one userspace hop with no MQTT awareness.
 * Started from PATH (Debian package `haproxy`); callers skip it, and say so, when it is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForPort } from '../dev/ports.js'
import { stopChild } from '../dev/anvil.js'

export interface RelayHandle {
  port: number
  tlsPort?: number
  process: ChildProcess
  stop(): Promise<void>
}

export function haproxyAvailable(): boolean {
  return spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0
}

/** A TCP relay to host:port; with tls, a second frontend terminating TLS with the given cert and key. */
export async function startHaproxy(backend: { host: string; port: number }, tls?: { cert: string; key: string }): Promise<RelayHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'flytrap-haproxy-'))
  const port = await freePort()
  const tlsPort = tls ? await freePort() : undefined
  const lines = [
    'global',
    '  maxconn 9000',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 1h',
    '  timeout server 1h',
    'frontend plain',
    `  bind 127.0.0.1:${port}`,
    '  default_backend broker',
  ]
  if (tls && tlsPort) {
    const pem = join(dir, 'server.pem')
    writeFileSync(pem, readFileSync(tls.cert, 'utf8') + '\n' + readFileSync(tls.key, 'utf8'))
    lines.push('frontend tls', `  bind 127.0.0.1:${tlsPort} ssl crt ${pem}`, '  default_backend broker')
  }
  lines.push('backend broker', `  server b ${backend.host}:${backend.port}`)
  const cfg = join(dir, 'haproxy.cfg')
  writeFileSync(cfg, lines.join('\n') + '\n')
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', (c: Buffer) => (err += c.toString()))
  try {
    await waitForPort(port, '127.0.0.1', { timeoutMs: 10_000 })
    if (tlsPort) await waitForPort(tlsPort, '127.0.0.1', { timeoutMs: 10_000 })
  } catch (e) {
    child.kill('SIGKILL')
    throw new Error(`haproxy did not start: ${err.slice(-400) || (e as Error).message}`, { cause: e })
  }
  return {
    port,
    tlsPort,
    process: child,
    stop: async () => {
      await stopChild(child, 2_000)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
