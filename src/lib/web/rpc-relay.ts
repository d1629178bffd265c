/**
 * A read-only JSON-RPC relay to the chain node `audit serve` uses, at POST /api/rpc: the browser's bundle
 * check (`audit check` in the page) asks the same node the server trusts, without the node having to be
 * reachable from the browser or to allow its origin. Only methods that read the chain pass; anything that
 * could sign, send or change the node's state (eth_sendRawTransaction, anvil_*, debug_*, personal_* …) is
 * refused with JSON-RPC error -32601, so exposing the relay gives nobody more than a public node would.
 */

/** The methods a bundle check (and any other reader) needs. */
export const RELAYED_METHODS: ReadonlySet<string> = new Set([
  'eth_chainId',
  'net_version',
  'eth_blockNumber',
  'eth_getBlockByNumber',
  'eth_getBlockByHash',
  'eth_getTransactionByHash',
  'eth_getTransactionReceipt',
  'eth_getLogs',
  'eth_getCode',
  'eth_call',
])

/** At most this many calls per batch and this many bytes per request body. */
export const MAX_BATCH = 100
export const MAX_BODY_BYTES = 256 * 1024

/** Sends one call to the node: resolves with its result, rejects with its error (message and, if any, code). */
export type RpcSend = (method: string, params: unknown[]) => Promise<unknown>

interface RpcCall {
  jsonrpc?: unknown
  id?: unknown
  method?: unknown
  params?: unknown
}

type RpcAnswer = { jsonrpc: '2.0'; id: unknown; result: unknown } | { jsonrpc: '2.0'; id: unknown; error: { code: number; message: string } }

const fail = (id: unknown, code: number, message: string): RpcAnswer => ({ jsonrpc: '2.0', id: id ?? null, error: { code, message } })

async function one(call: unknown, send: RpcSend): Promise<RpcAnswer> {
  if (call === null || typeof call !== 'object' || Array.isArray(call)) return fail(null, -32600, 'invalid request: not a JSON-RPC call object')
  const { id, method, params } = call as RpcCall
  if (typeof method !== 'string') return fail(id, -32600, 'invalid request: "method" must be a string')
  if (!RELAYED_METHODS.has(method)) return fail(id, -32601, `method "${method}" is not relayed: this relay only reads the chain (${[...RELAYED_METHODS].join(', ')})`)
  if (params !== undefined && !Array.isArray(params)) return fail(id, -32602, 'invalid params: "params" must be an array')
  try {
    return { jsonrpc: '2.0', id: id ?? null, result: await send(method, (params as unknown[] | undefined) ?? []) }
  } catch (err) {
    // ethers keeps the node's own error object under .error or .info.error
    type Err = { code?: unknown; message?: unknown }
    const e = err as Err & { error?: Err; info?: { error?: Err } }
    const inner = e.info?.error ?? e.error ?? e
    return fail(id, typeof inner.code === 'number' ? inner.code : -32603, typeof inner.message === 'string' ? inner.message : 'the chain node failed the call')
  }
}

/**
 * Answers one request body (already read, at most MAX_BODY_BYTES): a single call or a batch. Returns the
 * JSON to send; a body that is not JSON gets the JSON-RPC parse error.
 */
export async function relay(body: string, send: RpcSend): Promise<unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return fail(null, -32700, 'parse error: the body is not JSON')
  }
  if (!Array.isArray(parsed)) return one(parsed, send)
  if (parsed.length === 0) return fail(null, -32600, 'invalid request: an empty batch')
  if (parsed.length > MAX_BATCH) return fail(null, -32600, `invalid request: a batch of ${parsed.length} calls (at most ${MAX_BATCH})`)
  return Promise.all(parsed.map((c) => one(c, send)))
}
