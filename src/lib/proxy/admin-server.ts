/**
 * The proxy's admin API: JSON over HTTP on a unix socket in the data directory (mode 0600: only the
 * proxy's user can connect) and, with `adminListen`, on host:port, where a bearer token is always required
 * (any local user can reach a loopback port). The token is compared in constant time.
 *
 *   GET  /v1/status                      GET  /v1/bans
 *   GET  /v1/sessions?address=&topic=    POST /v1/kick   {"target": address | client id}
 *                                        POST /v1/unban  {"target": ip | address}
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { chmodSync, lstatSync, unlinkSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { FlytrapError } from '../errors.js'
import { normalizeIp } from '../net/ip.js'
import type { Logger } from '../log.js'
import { ADDRESS_RE } from './admin-local.js'
import type { AdminBackend } from './admin-view.js'
import { parseHostPort } from './metrics.js'

export const ADMIN_SOCKET = 'admin.sock'
/** A unix socket path longer than this does not fit sockaddr_un on Linux (108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107

export interface AdminServerOptions {
  backend: AdminBackend
  /** Unix socket path (e.g. <data-dir>/admin.sock). */
  socketPath?: string
  /** host:port for the TCP listener (needs `token`). */
  listen?: string
  token?: string
  logger?: Logger
}

export interface AdminServer {
  socketPath?: string
  address?: { host: string; port: number }
  close(): Promise<void>
}

export async function serveAdmin(o: AdminServerOptions): Promise<AdminServer> {
  if (o.listen !== undefined && !o.token) {
    const { host } = parseHostPort(o.listen)
    throw new FlytrapError(`--admin-listen ${o.listen} needs a token${isLoopback(host) ? '' : ' (and it is not a loopback address: anyone who reaches it could kick sessions and lift bans)'}`, {
      exit: 'usage',
      code: 'FLYTRAP_ADMIN_TOKEN',
      suggestions: ['set FLYTRAP_ADMIN_TOKEN (or --admin-token) to a long random secret, e.g. `openssl rand -hex 32`'],
    })
  }
  if (o.token !== undefined && o.token.length < 16) throw new FlytrapError('--admin-token must be at least 16 characters', { exit: 'usage' })
  const servers: Server[] = []
  const result: AdminServer = { close: async () => {} }
  try {
    if (o.socketPath) {
      await prepareSocketPath(o.socketPath)
      // Only the token-less socket: its permissions are the access control.
      const s = handler(o.backend, undefined, o.logger)
      // Bound with umask 0177 so there is no moment at which another user could connect; chmod again to be sure.
      const mask = process.umask(0o177)
      try {
        await listen(s, (srv, cb) => srv.listen(o.socketPath!, cb))
      } finally {
        process.umask(mask)
      }
      chmodSync(o.socketPath, 0o600)
      servers.push(s)
      result.socketPath = o.socketPath
    }
    if (o.listen !== undefined) {
      const { host, port } = parseHostPort(o.listen)
      const s = handler(o.backend, o.token, o.logger)
      await listen(s, (srv, cb) => srv.listen(port, host, cb), o.listen)
      servers.push(s)
      const a = s.address() as AddressInfo
      result.address = { host: a.address, port: a.port }
    }
  } catch (err) {
    await Promise.all(servers.map(closeServer))
    throw err
  }
  result.close = async () => {
    await Promise.all(servers.map(closeServer))
    if (o.socketPath) {
      try {
        unlinkSync(o.socketPath)
      } catch {
        // already gone
      }
    }
  }
  return result
}

/**
 * A socket left at the path: refused when a proxy answers on it (this data directory is in use), when it is
 * not a socket (never unlink what may be a user's file or a symlink), or when another user owns it; a stale
 * one of ours is removed.
 */
async function prepareSocketPath(path: string): Promise<void> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new FlytrapError(`the admin socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes`, { exit: 'config', suggestions: ['use a shorter --data-dir, or --no-admin-socket with --admin-listen'] })
  }
  let st: ReturnType<typeof lstatSync>
  try {
    st = lstatSync(path)
  } catch {
    return // nothing there
  }
  if (!st.isSocket()) throw new FlytrapError(`${path} exists and is not a socket: not removing it`, { exit: 'config', suggestions: ['move it away, or use another --data-dir'] })
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== uid) {
    throw new FlytrapError(`${path} belongs to another user (uid ${st.uid}): not using or removing it`, { exit: 'config', suggestions: ['remove it as that user, or use another --data-dir'] })
  }
  if (await answers(path)) throw new FlytrapError(`a proxy is already serving ${path}: this data directory is in use`, { exit: 'config', suggestions: ['stop the other proxy, or give this one its own --data-dir'] })
  unlinkSync(path)
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(path)
    const done = (v: boolean) => {
      c.destroy()
      resolve(v)
    }
    c.once('connect', () => done(true))
    c.once('error', () => done(false))
    c.setTimeout(1_000, () => done(false))
  })
}

function listen(s: Server, start: (s: Server, cb: () => void) => void, what?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('error', (err: NodeJS.ErrnoException) => reject(new FlytrapError(`cannot serve the admin API${what ? ` on ${what}` : ''}: ${err.code ?? err.message}`, { exit: 'config', cause: err })))
    start(s, () => {
      s.on('error', () => {})
      resolve()
    })
  })
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve())
    s.closeAllConnections()
  })
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true
  const ip = normalizeIp(host)
  return ip !== null && (ip.startsWith('127.') || ip === '::1')
}

/** Constant time: both sides hashed to 32 bytes first, so neither the length nor a prefix leaks. */
export function tokenMatches(given: string, token: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}

function handler(backend: AdminBackend, token: string | undefined, log?: Logger): Server {
  const server = createServer((req, res) => {
    if (token !== undefined) {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
      if (!m || !tokenMatches(m[1]!, token)) return reply(res, 401, { error: 'unauthorized', message: 'a valid admin token is required (Authorization: Bearer <token>)' }, { 'www-authenticate': 'Bearer' })
    }
    route(backend, req).then(
      ([status, body]) => reply(res, status, body),
      (err: Error) => {
        log?.warn('admin request failed', { path: req.url, error: err.message })
        reply(res, 500, { error: 'internal', message: err.message })
      },
    )
  })
  server.headersTimeout = 5_000
  server.requestTimeout = 10_000
  server.maxConnections = 32
  server.on('clientError', (_err, socket) => socket.destroy())
  return server
}

async function route(b: AdminBackend, req: IncomingMessage): Promise<[number, unknown]> {
  const url = new URL(req.url ?? '/', 'http://admin')
  const key = `${req.method} ${url.pathname}`
  switch (key) {
    case 'GET /v1/status':
      return [200, await b.status()]
    case 'GET /v1/sessions': {
      const address = url.searchParams.get('address') ?? undefined
      if (address !== undefined && !ADDRESS_RE.test(address)) return [400, { error: 'bad-request', message: `not an address: ${JSON.stringify(address)}` }]
      return [200, await b.sessions({ address, topic: url.searchParams.get('topic') ?? undefined })]
    }
    case 'GET /v1/bans':
      return [200, await b.bans()]
    case 'POST /v1/kick':
    case 'POST /v1/unban': {
      const body = await readJson(req)
      const target = typeof body?.target === 'string' ? body.target : ''
      if (!target || target.length > 256) return [400, { error: 'bad-request', message: 'body must be {"target": "..."}' }]
      return [200, key === 'POST /v1/kick' ? await b.kick(target) : await b.unban(target)]
    }
    default:
      return [404, { error: 'not-found', message: `no admin endpoint ${key}` }]
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  let text = ''
  for await (const chunk of req) {
    text += String(chunk)
    if (text.length > 4096) return null
  }
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch {
    return null
  }
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers }).end(text)
}
