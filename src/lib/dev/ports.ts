/**
 * Local TCP port helpers for the dev stack and tests: pick a free port, check whether one is taken, and wait
 * until something accepts connections on one.
 */
import { createConnection, createServer } from 'node:net'

/**
 * A port that was free a moment ago on `host` (bind to 0, read the port, close). Another process can take it
 * before the caller binds it: callers that spawn a server on it retry on EADDRINUSE.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close((err) => (err ? reject(err) : port ? resolve(port) : reject(new Error('could not read the bound port'))))
    })
  })
}

/** True when `port` can be bound on `host` right now; false on EADDRINUSE/EACCES. */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false)
      else reject(err)
    })
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** Resolves once a TCP connection to host:port succeeds (polling); rejects after timeoutMs or when `abort` says so. */
export async function waitForPort(
  port: number,
  host = '127.0.0.1',
  opts: { timeoutMs?: number; intervalMs?: number; abort?: () => Error | undefined } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  const interval = opts.intervalMs ?? 50
  for (;;) {
    const stop = opts.abort?.()
    if (stop) throw stop
    if (await canConnect(port, host, Math.max(50, Math.min(1_000, deadline - Date.now())))) return
    if (Date.now() >= deadline) throw new Error(`nothing accepted connections on ${host}:${port} within ${opts.timeoutMs ?? 10_000} ms`)
    await new Promise((r) => setTimeout(r, interval))
  }
}

function canConnect(port: number, host: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host })
    const done = (ok: boolean) => {
      socket.removeAllListeners()
      socket.on('error', () => {})
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
