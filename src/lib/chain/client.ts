/**
 * The one contract client every command and the proxy use. Reads are typed views; writes send a
 * transaction, wait for its receipt and return the decoded events. Reverts become FlytrapErrors that
 * name the contract's custom error.
 */
import {
  Contract,
  ContractFactory,
  FetchRequest,
  Interface,
  JsonRpcProvider,
  Network,
  WebSocketProvider,
  isError,
  type ContractRunner,
  type Log,
  type LogDescription,
  type Provider,
  type Signer,
  type TransactionReceipt,
  type TransactionResponse,
} from 'ethers'
import { abi, bytecode } from './artifacts/FlyTrap.js'
import { FOREVER, decodeCountries, topicId, type RoleMask } from './codec.js'
import { FlytrapError } from '../errors.js'
import { rawHttpUrl, rawRpcCall } from './raw-rpc.js'

export { abi }

export interface TopicInfo {
  id: string
  name: string
  owner: string
  pubFee: bigint
  subFee: bigint
  sensitive: boolean
  open: boolean
  /** Seconds of access one join payment buys; 0 = permanent. */
  period: number
  countries: string[]
  generation: number
}

export interface MemberInfo {
  client: string
  /** 0 = none, FOREVER = until revoked, else unix seconds (exclusive). */
  pubExpiry: bigint
  subExpiry: bigint
}

export interface TxResult {
  hash: string
  blockNumber: number
  gasUsed: bigint
  events: { name: string; args: Record<string, unknown> }[]
}

export interface Deployment {
  chainId: number
  address: string
  block: number
  txHash: string
  deployedAt: string
}

const ZERO = '0x0000000000000000000000000000000000000000'

/** What `recordSensitive` puts on chain for one topic and period: counts and a root, no address. */
export interface SensitiveCommitment {
  /** Distinct addresses with allowed publishes / deliveries. */
  publishers: number
  /** Allowed publishes / deliveries in total. */
  published: number
  receivers: number
  received: number
  /** Merkle root of the per-address records (src/lib/audit/sensitive-members.ts). */
  membersRoot: string
}

/**
 * What `anchor()` takes: the journal entries firstSeq..firstSeq+count-1 dated in [fromTime, toTime) (unix
 * seconds), their Merkle root (0x00…00 when count is 0), the root of their scope index (src/lib/audit/
 * scope-index.ts; 0x00…00 when count is 0), the hash-chain value before the first of them (prevChain) and
 * after the last (chain). It must continue the reporter's previous anchor.
 */
export interface AnchorArgs {
  fromTime: number
  toTime: number
  firstSeq: number
  count: number
  root: string
  index: string
  prevChain: string
  chain: string
}

/** The end of a reporter's anchor sequence on chain; `anchors` 0 means it never anchored (chain is then 0). */
export interface AnchorCursor {
  lastSeq: number
  toTime: number
  chain: string
  anchors: number
}

/** AnchorArgs in the contract's parameter order (what an outbox intent carries). */
export function anchorArgs(a: AnchorArgs): [number, number, number, number, string, string, string, string] {
  return [a.fromTime, a.toTime, a.firstSeq, a.count, a.root, a.index, a.prevChain, a.chain]
}

/** A raw JSON-RPC call on an open provider (http or ws): what the web server's read-only relay forwards. */
export function rawRpc(provider: Provider): (method: string, params: unknown[]) => Promise<unknown> {
  const p = provider as Provider & { send?: (method: string, params: unknown[]) => Promise<unknown> }
  if (typeof p.send !== 'function') throw new TypeError('rawRpc: this provider cannot send raw JSON-RPC calls')
  return (method, params) => p.send!(method, params)
}

/** Opens a provider after one bounded chain-id probe, so a dead endpoint is an error, not an endless retry. */
export async function connect(rpcUrl: string, opts: { timeoutMs?: number; pollingIntervalMs?: number } = {}): Promise<{ provider: Provider & { destroy(): void }; chainId: number }> {
  const timeout = opts.timeoutMs ?? 5_000
  let chainId: number
  if (/^wss?:\/\//.test(rpcUrl)) {
    const ws = new WebSocketProvider(rpcUrl)
    try {
      chainId = Number((await withTimeout(ws.getNetwork(), timeout, rpcUrl)).chainId)
    } catch (err) {
      await ws.destroy()
      throw err
    }
    return { provider: ws, chainId }
  }
  if (!/^https?:\/\//.test(rpcUrl)) {
    throw new FlytrapError(`--rpc "${rpcUrl}" is not an http(s):// or ws(s):// URL`, { exit: 'usage', suggestions: ['e.g. --rpc http://127.0.0.1:8545'] })
  }
  const req = new FetchRequest(rpcUrl)
  req.timeout = timeout
  req.body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] })
  req.setHeader('content-type', 'application/json')
  try {
    const res = await req.send()
    res.assertOk()
    chainId = Number(BigInt((res.bodyJson as { result: string }).result))
  } catch (err) {
    throw new FlytrapError(`cannot reach the chain at ${rpcUrl}`, {
      exit: 'unreachable',
      cause: err,
      suggestions: ['start a node (`flytrap dev` starts anvil) or pass --rpc <url>'],
    })
  }
  const fetchReq = new FetchRequest(rpcUrl)
  fetchReq.timeout = Math.max(timeout, 30_000)
  const provider = new JsonRpcProvider(fetchReq, Network.from(chainId), {
    staticNetwork: true,
    pollingInterval: opts.pollingIntervalMs ?? 1_000,
    batchMaxCount: 1,
    cacheTimeout: -1, // never reuse a cached nonce or block for back-to-back writes
  })
  return { provider, chainId }
}

async function withTimeout<T>(p: Promise<T>, ms: number, url: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new FlytrapError(`cannot reach the chain at ${url}`, { exit: 'unreachable' })), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Deploys a FlyTrap contract. `publicSensitiveLists` (default off, fixed for the contract's life) lets its
 * reporters name addresses in clear in sensitive reports (recordSensitiveClear): for permissioned chains only.
 */
export async function deployFlyTrap(signer: Signer, opts: { publicSensitiveLists?: boolean } = {}): Promise<Deployment & { gasUsed: bigint }> {
  const factory = new ContractFactory(abi, bytecode, signer)
  try {
    const contract = await factory.deploy(opts.publicSensitiveLists === true)
    const tx = contract.deploymentTransaction()
    const receipt = tx ? await waitForReceipt(tx) : null
    if (!receipt) throw new FlytrapError('deployment transaction was dropped', { exit: 'failure' })
    const network = await signer.provider!.getNetwork()
    return {
      chainId: Number(network.chainId),
      address: await contract.getAddress(),
      block: receipt.blockNumber,
      txHash: receipt.hash,
      deployedAt: new Date().toISOString(),
      gasUsed: receipt.gasUsed,
    }
  } catch (err) {
    throw chainError(err, 'deploy')
  }
}

export class FlyTrapClient {
  readonly contract: Contract
  readonly address: string

  constructor(address: string, runner: ContractRunner) {
    this.address = address
    this.contract = new Contract(address, abi, runner)
  }

  get provider(): Provider {
    const p = this.contract.runner?.provider
    if (!p) throw new Error('contract runner has no provider')
    return p
  }

  /** Fails clearly when nothing (or something else) is deployed at the address. */
  async assertDeployed(): Promise<void> {
    const code = await this.provider.getCode(this.address)
    if (code === '0x') {
      throw new FlytrapError(`no contract at ${this.address} on this chain`, {
        exit: 'config',
        suggestions: ['deploy one with `flytrap contract deploy`, or pass --contract <address>'],
      })
    }
  }

  // ------------------------------------------------------------------ reads

  async info(): Promise<{ admin: string; pendingAdmin: string | null; registrationFee: bigint; topicCount: number }> {
    const [admin, pending, fee, count] = await Promise.all([
      this.call<string>('admin'),
      this.call<string>('pendingAdmin'),
      this.call<bigint>('registrationFee'),
      this.call<bigint>('topicCount'),
    ])
    return { admin, pendingAdmin: pending === ZERO ? null : pending, registrationFee: fee, topicCount: Number(count) }
  }

  /** The topic, or null when it is not registered (or was removed). */
  async topic(name: string): Promise<TopicInfo | null> {
    const t = toTopic(await this.call<RawTopic>('topic', name))
    return t.owner === ZERO ? null : t
  }

  /** Every registered topic, fetched in pages. */
  async topics(pageSize = 100): Promise<TopicInfo[]> {
    const total = Number(await this.call<bigint>('topicCount'))
    const out: TopicInfo[] = []
    for (let offset = 0; offset < total; offset += pageSize) {
      const page = await this.call<RawTopic[]>('topicsPage', offset, pageSize)
      for (const raw of page) {
        const t = toTopic(raw)
        if (t.owner !== ZERO) out.push(t)
      }
    }
    return out
  }

  /** A client's current grant on a topic (zero expiries when it has none). */
  async member(name: string, client: string): Promise<MemberInfo> {
    const [pubExpiry, subExpiry] = await this.call<[bigint, bigint]>('member', name, client)
    return { client, pubExpiry: BigInt(pubExpiry), subExpiry: BigInt(subExpiry) }
  }

  /**
   * Every client that was ever granted or joined a topic, with its current grant. The contract keeps no
   * member list (it would cost gas on every grant), so candidates come from this contract's indexed
   * Granted/Joined events and the current state from member().
   */
  async members(name: string, opts: { fromBlock?: number; chunk?: number } = {}): Promise<MemberInfo[]> {
    const id = topicId(name)
    const iface = this.contract.interface
    const topics = [[iface.getEvent('Granted')!.topicHash, iface.getEvent('Joined')!.topicHash], id]
    const logs = await getLogsChunked(this.provider, { address: this.address, topics }, opts.fromBlock ?? 0, opts.chunk)
    const clients = [...new Set(this.parseLogs(logs).map((e) => String(e.args[1])))]
    return Promise.all(clients.map((c) => this.member(name, c)))
  }

  canAccess(name: string, client: string, role: 1 | 2): Promise<boolean> {
    return this.call<boolean>('canAccess', name, client, role)
  }

  balanceOf(address: string): Promise<bigint> {
    return this.call<bigint>('balanceOf', address)
  }

  /** Whether this deployment lets sensitive reports name addresses in clear (set at deployment, immutable). */
  publicSensitiveLists(): Promise<boolean> {
    return this.call<boolean>('publicSensitiveLists')
  }

  isReporter(address: string): Promise<boolean> {
    return this.call<boolean>('isReporter', address)
  }

  /** Where a reporter's anchor sequence ends: its next anchor must start at (toTime, lastSeq + 1, chain). */
  async anchorCursor(reporter: string): Promise<AnchorCursor> {
    const [lastSeq, toTime, chain, anchors] = await this.call<[bigint, bigint, string, bigint]>('anchorCursor', reporter)
    return { lastSeq: Number(lastSeq), toTime: Number(toTime), chain: String(chain).toLowerCase(), anchors: Number(anchors) }
  }

  // ------------------------------------------------------------------ writes

  addTopic(t: { name: string; pubFee: bigint; subFee: bigint; sensitive: boolean; open: boolean; period: number; countries: string; reason: string; value?: bigint }): Promise<TxResult> {
    const flags = (t.sensitive ? 1 : 0) | (t.open ? 2 : 0)
    return this.send('addTopic', [t.name, t.pubFee, t.subFee, flags, t.period, t.countries, t.reason], t.value)
  }

  setFees(name: string, pubFee: bigint, subFee: bigint, period: number, reason: string): Promise<TxResult> {
    return this.send('setFees', [name, pubFee, subFee, period, reason])
  }

  setCountries(name: string, countries: string, reason: string): Promise<TxResult> {
    return this.send('setCountries', [name, countries, reason])
  }

  setFlags(name: string, flags: { sensitive: boolean; open: boolean }, reason: string): Promise<TxResult> {
    return this.send('setFlags', [name, (flags.sensitive ? 1 : 0) | (flags.open ? 2 : 0), reason])
  }

  transferTopic(name: string, to: string, reason: string): Promise<TxResult> {
    return this.send('transferTopic', [name, to, reason])
  }

  /** Several topics in one transaction (a filter and the names under it can only move together). */
  transferTopics(names: string[], to: string, reason: string): Promise<TxResult> {
    return this.send('transferTopics', [names, to, reason])
  }

  removeTopic(name: string, reason: string): Promise<TxResult> {
    return this.send('removeTopic', [name, reason])
  }

  /** expiresAt in unix seconds; 0 = until revoked. */
  allow(name: string, client: string, roles: RoleMask, expiresAt: number, reason: string): Promise<TxResult> {
    return this.send('allow', [name, client, roles, expiresAt, reason])
  }

  revoke(name: string, client: string, roles: RoleMask, reason: string): Promise<TxResult> {
    return this.send('revoke', [name, client, roles, reason])
  }

  join(name: string, roles: RoleMask, periods: number, value: bigint): Promise<TxResult> {
    return this.send('join', [name, roles, periods], value)
  }

  withdraw(to: string): Promise<TxResult> {
    return this.send('withdraw', [to])
  }

  addReporter(address: string, reason: string): Promise<TxResult> {
    return this.send('addReporter', [address, reason])
  }

  removeReporter(address: string, reason: string): Promise<TxResult> {
    return this.send('removeReporter', [address, reason])
  }

  setRegistrationFee(fee: bigint): Promise<TxResult> {
    return this.send('setRegistrationFee', [fee])
  }

  transferAdmin(to: string): Promise<TxResult> {
    return this.send('transferAdmin', [to])
  }

  acceptAdmin(): Promise<TxResult> {
    return this.send('acceptAdmin', [])
  }

  recordBans(subjects: string[], untils: number[], reason: string): Promise<TxResult> {
    return this.send('recordBans', [subjects, untils, reason])
  }

  recordDenied(fromTime: number, toTime: number, topics: string[], counts: number[]): Promise<TxResult> {
    return this.send('recordDenied', [fromTime, toTime, topics, counts])
  }

  /** A sensitive topic's period as a commitment: distinct publishers/receivers, totals, the members' Merkle root. */
  recordSensitive(topic: string, fromTime: number, toTime: number, c: SensitiveCommitment): Promise<TxResult> {
    return this.send('recordSensitive', [topic, fromTime, toTime, c.publishers, c.published, c.receivers, c.received, c.membersRoot])
  }

  /** The same with addresses in clear; reverts (ClearListsDisabled) unless the deployment chose publicSensitiveLists. */
  recordSensitiveClear(topic: string, fromTime: number, toTime: number, publishers: string[], published: number[], receivers: string[], received: number[]): Promise<TxResult> {
    return this.send('recordSensitiveClear', [topic, fromTime, toTime, publishers, published, receivers, received])
  }

  /** One link of the reporter's anchor sequence (see AnchorArgs and docs/audit.md). */
  anchor(a: AnchorArgs): Promise<TxResult> {
    return this.send('anchor', anchorArgs(a))
  }

  // ------------------------------------------------------------------ events

  /** Decodes logs of this contract; logs from any other address are ignored (they could be forged). */
  parseLogs(logs: readonly Log[]): (LogDescription & { log: Log })[] {
    const out: (LogDescription & { log: Log })[] = []
    for (const log of logs) {
      if (log.address.toLowerCase() !== this.address.toLowerCase()) continue
      const parsed = this.contract.interface.parseLog({ topics: [...log.topics], data: log.data })
      if (parsed) out.push(Object.assign(parsed, { log }))
    }
    return out
  }

  // ------------------------------------------------------------------ plumbing

  private async call<T>(method: string, ...args: unknown[]): Promise<T> {
    try {
      return (await this.contract.getFunction(method).staticCall(...args)) as T
    } catch (err) {
      throw chainError(err, method)
    }
  }

  private async send(method: string, args: unknown[], value?: bigint): Promise<TxResult> {
    let receipt: TransactionReceipt | null
    try {
      const fn = this.contract.getFunction(method)
      const tx = (await fn.send(...args, value ? { value } : {})) as TransactionResponse
      receipt = await waitForReceipt(tx)
    } catch (err) {
      throw chainError(err, method)
    }
    if (!receipt) throw new FlytrapError(`${method}: transaction was dropped`, { exit: 'failure' })
    return {
      hash: receipt.hash,
      blockNumber: receipt.blockNumber,
      gasUsed: receipt.gasUsed,
      events: this.parseLogs(receipt.logs).map((e) => ({ name: e.name, args: argsOf(e) })),
    }
  }
}

/**
 * tx.wait() that cannot miss its receipt. ethers checks the receipt directly only when wait() starts, then on
 * "new block" events, counted from the head its block poller first sees. A block mined between those (a loaded
 * anvil mines in its own task, after answering the send) is the poller's baseline, not news: on an idle
 * automining chain no later block comes and wait() never resolves. Each slice starts with a direct check.
 */
export async function waitForReceipt(tx: TransactionResponse, sliceMs = 2_000): Promise<TransactionReceipt | null> {
  for (;;) {
    try {
      return await tx.wait(1, sliceMs)
    } catch (err) {
      // Only wait()'s own slice timer; an RPC timeout is a real failure.
      if (!(isError(err, 'TIMEOUT') && /wait for transaction timeout/.test(err.message))) throw err
    }
  }
}

/** eth_getLogs over a block range in chunks, so providers that cap the range still answer. */
export async function getLogsChunked(
  provider: Provider,
  filter: { address: string; topics: (string | string[] | null)[] },
  fromBlock: number,
  chunk = 50_000,
  toBlock?: number,
): Promise<Log[]> {
  const last = toBlock ?? (await provider.getBlockNumber())
  const url = rawHttpUrl(provider) ?? ''
  const raw = url !== ''
  const out: Log[] = []
  for (let from = fromBlock; from <= last; from += chunk) {
    const to = Math.min(last, from + chunk - 1)
    try {
      if (raw) for (const l of await rawGetLogs(url, { ...filter, fromBlock: from, toBlock: to })) out.push(l)
      else for (const l of await provider.getLogs({ ...filter, fromBlock: from, toBlock: to })) out.push(l)
    } catch (err) {
      throw chainError(err, 'eth_getLogs')
    }
  }
  return out
}

/**
 * eth_getLogs over HTTP with Node's own fetch and JSON.parse. A cold start reads every log of the contract
 * (100,000 grants: a response of ~100 MB), and ethers' transport concatenates the body chunk by chunk and
 * decodes its UTF-8 in JavaScript, which took seconds and hundreds of MiB there. The logs come back in the
 * shape the decoders read (address, topics, data, block, index, transaction hash).
 */
async function rawGetLogs(url: string, f: { address: string; topics: (string | string[] | null)[]; fromBlock: number; toBlock: number }): Promise<Log[]> {
  return (await rawLogs(url, f)).map((l) => ({ address: l.address, topics: l.topics, data: l.data, blockNumber: Number(l.blockNumber), index: Number(l.logIndex), transactionHash: l.transactionHash, blockHash: l.blockHash, transactionIndex: Number(l.transactionIndex), removed: false }) as unknown as Log)
}

/** eth_getLogs over HTTP as the node answers it (hex numbers), removed logs dropped. */
export async function rawLogs(url: string, f: { address: string; topics: (string | string[] | null)[]; fromBlock: number; toBlock: number }): Promise<RawLog[]> {
  const params = [{ address: f.address, topics: f.topics, fromBlock: `0x${f.fromBlock.toString(16)}`, toBlock: `0x${f.toBlock.toString(16)}` }]
  const result = await rawRpcCall<RawLog[]>(url, 'eth_getLogs', params)
  if (!Array.isArray(result)) throw new Error('eth_getLogs: no result')
  return result.filter((l) => !l.removed)
}

export interface RawLog {
  address: string
  topics: string[]
  data: string
  blockNumber: string
  logIndex: string
  transactionHash: string
  blockHash: string
  transactionIndex: string
  removed?: boolean
}

/** Named event/struct fields as a plain object (ethers' Result is array-like). */
export function argsOf(e: LogDescription): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  e.fragment.inputs.forEach((input, i) => (out[input.name] = e.args[i]))
  return out
}

/** A TopicInfo struct as the contract's views return it. */
export type RawTopic = { id: string; name: string; owner: string; pubFee: bigint; subFee: bigint; sensitive: boolean; open: boolean; period: bigint; countries: string; gen: bigint }

export function toTopic(r: RawTopic): TopicInfo {
  return {
    id: r.id,
    name: r.name,
    owner: r.owner,
    pubFee: r.pubFee,
    subFee: r.subFee,
    sensitive: r.sensitive,
    open: r.open,
    period: Number(r.period),
    countries: decodeCountries(r.countries),
    generation: Number(r.gen),
  }
}

const iface = new Interface(abi)

function decodeRevert(data: string): { name: string; args: readonly unknown[]; signature: string } | null {
  try {
    const e = iface.parseError(data)
    return e ? { name: e.name, args: [...e.args], signature: e.signature } : null
  } catch {
    return null
  }
}

/** Human explanations of the contract's custom errors. */
const REVERT_HINTS: Record<string, (args: readonly unknown[]) => string> = {
  NotAdmin: () => 'only the contract admin can do this',
  NotPendingAdmin: () => 'only the pending admin can accept the admin role',
  NotReporter: () => 'only a registered reporter (proxy) can record this',
  NotTopicOwner: () => 'only the topic owner can do this',
  TopicExists: () => 'a topic with this name is already registered',
  UnknownTopic: () => 'no such topic',
  InvalidTopicName: (a) => `invalid topic name or filter (at byte ${String(a[0])})`,
  InvalidCountries: () => 'invalid country list',
  InvalidRoles: () => 'invalid role or flag value',
  InvalidAddress: () => 'invalid address',
  InvalidExpiry: () => 'the expiry is in the past',
  InvalidPeriods: () => 'invalid number of periods (a topic without a period sells permanent access: use 1)',
  InvalidFee: () => "a fee must be a whole number of gwei and at most 1,099 ETH",
  NameRetired: () => "this name was removed too many times and is retired",
  WrongPayment: (a) => `wrong payment: the price is ${String(a[0])} wei`,
  NotOpen: () => 'this topic is closed: only its owner can grant access',
  AlreadyMember: () => 'already has permanent access',
  NothingToWithdraw: () => 'nothing to withdraw',
  WithdrawFailed: () => 'the recipient refused the payment',
  LengthMismatch: () => 'array lengths differ',
  NamespaceClaimed: (a) => `${namespaceLabel(a[0])} is claimed by a filter of ${String(a[1])}, which holds this name (first registered wins)`,
  NamespaceOccupied: (a) =>
    `this filter would claim ${namespaceLabel(a[0])}, where ${a[1] === ZERO ? 'other owners hold' : `${String(a[1])} holds`} a registration (first registered wins)`,
  InvalidAnchor: () => 'malformed anchor (empty time range, seq 0, or root/index/chain inconsistent with the count)',
  AnchorGap: (a) => `this reporter's anchors end at ${String(a[0])}: anchoring later would leave a period unanchored`,
  AnchorOverlap: (a) => `this reporter has anchored up to ${String(a[0])} already: a period is anchored only once`,
  AnchorWrongSeq: (a) => `this reporter's next anchor must start at seq ${String(a[0])}`,
  AnchorWrongChain: (a) => `this reporter's next anchor must continue the hash chain from ${String(a[0])}`,
}

/** "everything under a/b" for a claim path, "every topic" for the root. */
function namespaceLabel(prefix: unknown): string {
  const p = String(prefix)
  return p === '' ? 'every topic (the whole namespace)' : `"${p}" and everything under it`
}

/** Maps anything ethers throws to a FlytrapError with the right exit code and the contract's reason. */
export function chainError(err: unknown, action: string): FlytrapError {
  if (err instanceof FlytrapError) return err
  if (isError(err, 'CALL_EXCEPTION')) {
    // ethers decodes custom errors on calls but not on estimateGas for sends: decode the revert data here.
    const revert = err.revert ?? (err.data ? decodeRevert(err.data) : null)
    if (revert) {
      const hint = REVERT_HINTS[revert.name]?.(revert.args) ?? revert.signature
      return new FlytrapError(`${action} reverted: ${hint} (${revert.name})`, { exit: 'reverted', code: revert.name, cause: err })
    }
    return new FlytrapError(`${action} reverted${err.reason ? `: ${err.reason}` : ''}`, { exit: 'reverted', cause: err })
  }
  if (isError(err, 'INSUFFICIENT_FUNDS')) return new FlytrapError(`${action}: the sending account cannot pay for this transaction`, { exit: 'reverted', cause: err })
  if (isError(err, 'NETWORK_ERROR') || isError(err, 'TIMEOUT') || isError(err, 'SERVER_ERROR')) {
    return new FlytrapError(`${action}: the chain did not answer (${err.shortMessage})`, { exit: 'unreachable', cause: err })
  }
  const message = err instanceof Error ? ((err as { shortMessage?: string }).shortMessage ?? err.message) : String(err)
  if (/ECONNREFUSED|fetch failed|socket hang up/.test(message)) return new FlytrapError(`${action}: the chain did not answer`, { exit: 'unreachable', cause: err })
  return new FlytrapError(`${action} failed: ${message}`, { exit: 'failure', cause: err })
}

export { FOREVER, topicId }
