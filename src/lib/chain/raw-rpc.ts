/**
 * JSON-RPC over HTTP with fetch and JSON.parse, around ethers' transport, for the bulk reads of a cold start
 * (eth_getLogs, eth_call of the batch views): ethers concatenates bodies chunk by chunk and decodes UTF-8 in
 * JavaScript. No Buffer: this module is bundled for the browser too.
 */
import { JsonRpcProvider, type Provider } from 'ethers'

/** The provider's http(s) URL when raw calls can go around it, else null (WebSocket and other providers). */
export function rawHttpUrl(provider: Provider): string | null {
  const url = provider instanceof JsonRpcProvider ? provider._getConnection().url : ''
  return /^https?:\/\//.test(url) ? url : null
}

/** An error answer of the node; `data` is a revert's data when it is one. */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly data: string | undefined,
  ) {
    super(message)
  }
}

/** One JSON-RPC call; credentials in the URL become the Basic header ethers would send (fetch refuses them in the URL). */
export async function rawRpcCall<T>(url: string, method: string, params: unknown[], timeoutMs = 60_000): Promise<T> {
  const u = new URL(url)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (u.username || u.password) {
    // btoa over the UTF-8 bytes: no Buffer.
    headers.authorization = `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`)))}`
    u.username = u.password = ''
  }
  const res = await fetch(u, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }), signal: AbortSignal.timeout(timeoutMs) })
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status}`)
  const body = (await res.json()) as { result?: T; error?: { code: number; message: string; data?: unknown } }
  if (body.error) throw new RpcError(`${method}: ${body.error.message}`, body.error.code, typeof body.error.data === 'string' ? body.error.data : undefined)
  if (body.result === undefined) throw new Error(`${method}: no result`)
  return body.result
}

/** eth_call at a pinned block, returning the raw 0x-hex result. */
export function rawEthCall(url: string, to: string, data: string, blockTag: number): Promise<string> {
  return rawRpcCall<string>(url, 'eth_call', [{ to, data }, `0x${blockTag.toString(16)}`])
}

/** Runs `fn` over `items` with at most `limit` in flight; results in item order. */
export async function pooled<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
