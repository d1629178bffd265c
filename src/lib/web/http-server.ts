/**
 * The HTTP side of `flytrap audit serve` on node:http: the read-only JSON API under /api (api.ts), the
 * OpenAPI document at /openapi.json, the read-only JSON-RPC relay at POST /api/rpc (rpc-relay.ts), and the
 * bundled UI (web/dist) at / with a single-page-app fallback to index.html. GET and HEAD only, but for the
 * relay; CORS only for the configured origins; errors are JSON `{ error: { code, message } }`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { existsSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname, join, resolve, sep } from 'node:path'
import type { AddressInfo } from 'node:net'
import { Api, ApiError, type ApiResponse } from './api.js'
import type { ChainIndex } from './chain-index.js'
import type { ErasureSigner } from '../audit/erasure.js'
import { openApiDocument } from './openapi.js'
import { MAX_BODY_BYTES, relay, type RpcSend } from './rpc-relay.js'

export interface WebServerOptions {
  index: ChainIndex
  /** 0 = any free port. */
  port: number
  host: string
  /** Origins allowed to call the API from a browser ("*" = any). */
  cors?: string[]
  /** The built UI (web/dist). */
  staticDir?: string
  /** The chain node the index reads, for the relay at POST /api/rpc (absent: the relay answers 404). */
  rpc?: RpcSend
  /** The reporter key that signs evidence bundles at /api/evidence (absent: that endpoint answers 503). */
  signer?: ErasureSigner
  /** A block explorer base URL the UI links transactions and blocks to (GET /api/status says which). */
  explorer?: string
}

export interface WebServer {
  /** Base URL, e.g. http://127.0.0.1:8080 */
  address: string
  port: number
  close(): Promise<void>
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FlyTrap audit</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>FlyTrap audit</h1>
<p>The web UI is not built. Build it with <code>npm run build:web</code> and restart <code>flytrap audit serve</code>.</p>
<p>The API works without it: <a href="/api/status">/api/status</a>, <a href="/api/topics">/api/topics</a>, documented by <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>
`

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const api = new Api(opts.index, { signer: opts.signer, explorer: opts.explorer })
  const origins = new Set(opts.cors ?? [])
  const staticDir = opts.staticDir ? resolve(opts.staticDir) : null
  const openapi = JSON.stringify(openApiDocument(), null, 2)

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(req, res, 500, { error: { code: 'internal', message: (err as Error).message } })
      else res.destroy()
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('x-content-type-options', 'nosniff')
    res.setHeader('referrer-policy', 'no-referrer')
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://localhost')
    } catch {
      return sendJson(req, res, 400, { error: { code: 'bad_request', message: 'malformed request URL' } })
    }
    const path = url.pathname
    const isApi = path === '/api' || path.startsWith('/api/') || path === '/openapi.json'
    if (isApi) cors(req, res)
    const method = req.method ?? 'GET'
    if (method === 'OPTIONS' && isApi && res.hasHeader('access-control-allow-origin')) {
      res.writeHead(204, { 'access-control-allow-methods': path === '/api/rpc' ? 'POST' : 'GET, HEAD', 'access-control-allow-headers': 'content-type', 'access-control-max-age': '600' })
      res.end()
      return
    }
    if (path === '/api/rpc') return rpcRelay(req, res, method)
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return sendJson(req, res, 405, { error: { code: 'method_not_allowed', message: `${method} is not allowed: this API is read-only (GET, HEAD)` } })
    }
    if (path === '/openapi.json') return send(req, res, 200, openapi, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache' })
    if (isApi) {
      let out: ApiResponse
      try {
        out = await api.handle(path, url.searchParams)
      } catch (err) {
        if (err instanceof ApiError) return sendJson(req, res, err.status, { error: { code: err.code, message: err.message } })
        throw err
      }
      if (out.text !== undefined) return send(req, res, out.status, out.text, { 'cache-control': 'no-store', ...out.headers })
      return sendJson(req, res, out.status, out.json)
    }
    return serveStatic(req, res, path)
  }

  async function rpcRelay(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (!opts.rpc) return sendJson(req, res, 404, { error: { code: 'not_found', message: 'no chain node to relay to' } })
    if (method !== 'POST') {
      res.setHeader('allow', 'POST')
      return sendJson(req, res, 405, { error: { code: 'method_not_allowed', message: `${method} is not allowed: POST a JSON-RPC call or batch` } })
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        sendJson(req, res, 413, { error: { code: 'too_large', message: `a JSON-RPC request of at most ${MAX_BODY_BYTES} bytes` } })
        req.destroy()
        return
      }
      chunks.push(chunk)
    }
    return sendJson(req, res, 200, await relay(Buffer.concat(chunks).toString('utf8'), opts.rpc))
  }

  function cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin
    if (!origin) return
    if (origins.has('*')) res.setHeader('access-control-allow-origin', '*')
    else if (origins.has(origin)) {
      res.setHeader('access-control-allow-origin', origin)
      res.setHeader('vary', 'Origin')
    } else return
    res.setHeader('access-control-expose-headers', 'content-disposition')
  }

  async function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const index = staticDir ? join(staticDir, 'index.html') : null
    if (!staticDir || !index || !existsSync(index)) {
      return send(req, res, path === '/' || path === '/index.html' ? 200 : 404, NOT_BUILT, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' })
    }
    let rel: string
    try {
      rel = decodeURIComponent(path)
    } catch {
      return send(req, res, 400, 'bad path\n', { 'content-type': 'text/plain; charset=utf-8' })
    }
    const file = resolve(staticDir, `.${rel}`)
    const inside = file === staticDir || file.startsWith(staticDir + sep)
    if (inside && !rel.includes('\0') && isFile(file)) {
      const immutable = file.startsWith(join(staticDir, 'assets') + sep)
      return send(req, res, 200, await readFile(file), {
        'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
        'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      })
    }
    // A missing asset is a 404; any other path is a route of the single-page app.
    if (!inside || /\.[a-z0-9]{1,8}$/i.test(rel)) return send(req, res, 404, 'not found\n', { 'content-type': 'text/plain; charset=utf-8' })
    return send(req, res, 200, await readFile(index), { 'content-type': TYPES['.html']!, 'cache-control': 'no-cache' })
  }

  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(opts.port, opts.host, () => {
      server.off('error', fail)
      ok()
    })
  })
  const a = server.address() as AddressInfo
  const host = a.address === '0.0.0.0' || a.address === '::' ? '127.0.0.1' : a.address
  return {
    address: `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`,
    port: a.port,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok())
        server.closeAllConnections()
      }),
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  send(req, res, status, JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
}

function send(req: IncomingMessage, res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string>): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body
  res.writeHead(status, { ...headers, 'content-length': String(buf.length) })
  res.end(req.method === 'HEAD' ? undefined : buf)
}
