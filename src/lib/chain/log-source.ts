/**
 * New-log notifications over a WebSocket RPC: `eth_subscribe("logs", {address, topics})`, with reconnect and
 * resubscribe. It only *tells* that something happened (and at which block); the policy sync then runs its
 * normal eth_getLogs poll, so order, dedup and the head-went-backwards case stay in one place. A `removed: true`
 * log (a reorg) is a notification like any other. Node-only (the `ws` package): the browser bundle never imports
 * it (client.ts, which it does bundle, must stay isomorphic). Not ethers' WebSocketProvider: it never reconnects.
 */
import WebSocket from 'ws'
import { usageError } from '../errors.js'
import type { Logger } from '../log.js'

/** A subscription live this long resets the reconnect backoff. */
const STABLE_MS = 30_000

export type LogSourceMode = 'subscription' | 'polling'

export interface LogSourceOptions {
  /** ws:// or wss:// JSON-RPC endpoint. */
  url: string
  address: string
  topics?: (string | string[] | null)[]
  /** A log arrived (block = its block number, when the node said): poll now. */
  onLog: (block: number | null) => void
  /** The subscription went live (poll now: logs of the gap are not replayed) or was lost (poll on the timer). */
  onMode?: (mode: LogSourceMode, why: string) => void
  logger?: Logger
  /** Reconnect backoff: first wait and cap [default 250 ms doubling to 30 s]. */
  minBackoffMs?: number
  maxBackoffMs?: number
  /** A socket that answers no ping within this time is dropped [default 30 s]. */
  pingIntervalMs?: number
  /** Connect + subscribe must complete within this [default 10 s]. */
  connectTimeoutMs?: number
}

export interface LogSource {
  mode(): LogSourceMode
  /** Times the subscription went live (the first time included). */
  subscriptions(): number
  stop(): Promise<void>
}

/** ws:// or wss:// with a host, else a usage error naming the flag (checked before any network call). */
export function parseWsRpcUrl(value: string, flag: string): string {
  const example = `e.g. ${flag} ws://127.0.0.1:8545 (anvil and geth serve WebSocket; anvil on its HTTP port)`
  let u: URL
  try {
    u = new URL(value.trim())
  } catch {
    throw usageError(`${flag} "${value}" is not a URL`, example)
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw usageError(`${flag} "${value}": ${u.protocol.replace(/:$/, '')}:// is not a WebSocket URL (ws:// or wss://)`, example)
  if (!u.hostname) throw usageError(`${flag} "${value}" has no host`, example)
  return u.toString()
}

export function startLogSource(o: LogSourceOptions): LogSource {
  const minBackoff = o.minBackoffMs ?? 250
  const maxBackoff = o.maxBackoffMs ?? 30_000
  const pingEvery = o.pingIntervalMs ?? 30_000
  const connectTimeout = o.connectTimeoutMs ?? 10_000
  const safeUrl = redact(o.url)
  let mode: LogSourceMode = 'polling'
  let live = 0
  let failures = 0
  let stopped = false
  let ws: WebSocket | undefined
  let retry: NodeJS.Timeout | undefined

  const setMode = (next: LogSourceMode, why: string) => {
    if (next === mode) return
    mode = next
    o.onMode?.(next, why)
  }

  function open(): void {
    retry = undefined
    if (stopped) return
    const sock = new WebSocket(o.url, { handshakeTimeout: connectTimeout })
    ws = sock
    let subId: string | null = null
    let liveSince = 0
    let alive = true
    let ended = false
    const ping = setInterval(() => {
      if (!alive) return sock.terminate() // no pong since the last ping: a half-open socket
      alive = false
      sock.ping()
    }, pingEvery)
    ping.unref()
    const subscribeTimer = setTimeout(() => end('no subscription within the connect timeout'), connectTimeout)
    subscribeTimer.unref()

    const end = (why: string) => {
      if (ended) return
      ended = true
      clearInterval(ping)
      clearTimeout(subscribeTimer)
      sock.removeAllListeners()
      sock.on('error', () => {})
      sock.terminate()
      if (ws === sock) ws = undefined
      if (stopped) return
      // A subscription that held a while starts the backoff over; one that flaps keeps backing off.
      if (liveSince > 0 && Date.now() - liveSince > STABLE_MS) failures = 0
      failures++
      const wait = Math.min(maxBackoff, minBackoff * 2 ** Math.min(failures - 1, 20))
      o.logger?.debug('log subscription: retrying', { url: safeUrl, why, inMs: wait })
      setMode('polling', why)
      retry = setTimeout(open, wait)
    }

    sock.on('pong', () => (alive = true))
    sock.on('open', () => {
      sock.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['logs', { address: o.address, ...(o.topics?.length ? { topics: o.topics } : {}) }] }))
    })
    sock.on('message', (data) => {
      let msg: { id?: number; result?: unknown; error?: { message?: string }; method?: string; params?: { subscription?: string; result?: { blockNumber?: string } } }
      try {
        msg = JSON.parse(String(data))
      } catch {
        return end('the node sent a message that is not JSON')
      }
      alive = true
      if (msg.id === 1) {
        if (msg.error || typeof msg.result !== 'string') return end(`the node refused eth_subscribe: ${msg.error?.message ?? 'no subscription id'}`)
        subId = msg.result
        clearTimeout(subscribeTimer)
        liveSince = Date.now()
        live++
        setMode('subscription', 'subscribed')
        return
      }
      if (msg.method !== 'eth_subscription' || subId === null || msg.params?.subscription !== subId) return
      const bn = msg.params.result?.blockNumber
      const block = typeof bn === 'string' && /^0x[0-9a-f]+$/i.test(bn) ? Number(BigInt(bn)) : null
      o.onLog(block)
    })
    sock.on('close', (code) => end(`the WebSocket closed (${code})`))
    sock.on('error', (err) => end(`the WebSocket failed: ${err.message}`))
  }

  open()
  return {
    mode: () => mode,
    subscriptions: () => live,
    async stop() {
      stopped = true
      if (retry) clearTimeout(retry)
      const sock = ws
      ws = undefined
      if (!sock) return
      sock.removeAllListeners()
      sock.on('error', () => {})
      await new Promise<void>((resolve) => {
        if (sock.readyState === WebSocket.CLOSED) return resolve()
        sock.once('close', () => resolve())
        sock.terminate()
      })
    },
  }
}

/** The URL without credentials, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.username || u.password) {
      u.username = '***'
      u.password = ''
    }
    return u.toString()
  } catch {
    return '(invalid URL)'
  }
}
