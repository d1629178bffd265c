/**
 * The one description of the contract's events, for every reader (the policy sync, `audit verify`, `audit
 * report`, the auditors' index, and by type the UI): their names and decoded arguments as one typed union,
 * decoding THIS deployment's logs into it, the ban-subject codec, and the one-line human text of each event.
 * Who was a registered reporter at a block is decided in reporters.ts, over these events, never beside it.
 *
 * Pure and isomorphic (ethers and the contract's ABI only, no node: imports): the evidence checker's import
 * graph reaches this module through reporters.ts, and it runs in the browser.
 */
import { AbiCoder, computeHmac, EventFragment, formatEther, getAddress, Interface, toUtf8Bytes, type Log, type Result } from 'ethers'
import { abi } from './artifacts/FlyTrap.js'
import { decodeCountries, formatExpiry, roleNames } from './codec.js'

// ------------------------------------------------------------------ the events

/**
 * Each event's decoded arguments, named as in contracts/FlyTrap.sol. Addresses are EIP-55, bytes and bytes32
 * lower-case 0x-hex; uint8/uint32 and the uint64 times, seqs and counts are numbers; fees, amounts, expiries
 * (compared with FOREVER) and a ban's end (any uint64 a reporter sends) stay bigint.
 */
export interface EventArgs {
  TopicAdded: { topic: string; owner: string; name: string; pubFee: bigint; subFee: bigint; flags: number; period: number; countries: string; reason: string }
  TopicFeesChanged: { topic: string; actor: string; pubFee: bigint; subFee: bigint; period: number; reason: string }
  TopicCountriesChanged: { topic: string; actor: string; countries: string; reason: string }
  TopicFlagsChanged: { topic: string; actor: string; flags: number; reason: string }
  TopicTransferred: { topic: string; from: string; to: string; reason: string }
  TopicRemoved: { topic: string; actor: string; reason: string }
  Granted: { topic: string; client: string; roles: number; expiresAt: bigint; reason: string }
  Revoked: { topic: string; client: string; roles: number; reason: string }
  Joined: { topic: string; client: string; roles: number; paid: bigint; pubExpiresAt: bigint; subExpiresAt: bigint }
  Withdrawn: { owner: string; to: string; amount: bigint }
  AdminTransferStarted: { admin: string; pendingAdmin: string }
  AdminChanged: { previousAdmin: string; newAdmin: string }
  RegistrationFeeChanged: { actor: string; fee: bigint }
  ReporterAdded: { reporter: string; actor: string; reason: string }
  ReporterRemoved: { reporter: string; actor: string; reason: string }
  Banned: { subject: string; reporter: string; until: bigint; reason: string }
  DeniedSummary: { reporter: string; fromTime: number; toTime: number; topics: string[]; counts: number[] }
  SensitiveReport: { topic: string; reporter: string; fromTime: number; toTime: number; publishers: number; published: number; receivers: number; received: number; membersRoot: string }
  SensitiveReportClear: { topic: string; reporter: string; fromTime: number; toTime: number; publishers: string[]; published: number[]; receivers: string[]; received: number[] }
  Anchored: { reporter: string; fromTime: number; toTime: number; firstSeq: number; count: number; root: string; index: string; chain: string }
}

export type EventName = keyof EventArgs

/** Every event name of the contract, in the order of the contract's declarations (the API's `type` filter accepts these). */
export const EVENT_TYPES = [
  'TopicAdded', 'TopicFeesChanged', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved',
  'Granted', 'Revoked', 'Joined', 'Withdrawn', 'AdminTransferStarted', 'AdminChanged', 'RegistrationFeeChanged',
  'ReporterAdded', 'ReporterRemoved', 'Banned', 'DeniedSummary', 'SensitiveReport', 'SensitiveReportClear', 'Anchored',
] as const satisfies readonly EventName[]

/** Events only a registered reporter may write; they count only when their reporter was registered then (reporters.ts). */
export const REPORTER_ONLY: ReadonlySet<EventName> = new Set<EventName>(['Banned', 'DeniedSummary', 'SensitiveReport', 'SensitiveReportClear', 'Anchored'])

/** One decoded log of the contract: its name, its arguments and its place in the chain. */
export type ChainEvent<N extends EventName = EventName> = {
  [K in N]: { name: K; args: EventArgs[K]; block: number; logIndex: number; tx: string }
}[N]

/** Narrows an event to some names (filter((e) => isEvent(e, 'Anchored')) gives typed args). */
export const isEvent = <N extends EventName>(e: ChainEvent, ...names: N[]): e is Extract<ChainEvent, { name: N }> => (names as EventName[]).includes(e.name)

const IFACE = new Interface(abi)
/** uint64 fields kept as bigint: a ban's end is whatever a reporter sent, not a time Number() can hold. */
const BIGINT_UINT64 = new Set(['Banned.until'])

/** The topic hash (topics[0]) of each named event, for eth_getLogs filters. */
export function eventTopics(names: readonly EventName[]): string[] {
  return names.map((n) => IFACE.getEvent(n)!.topicHash)
}

function convert(type: string, v: unknown, keepBig: boolean): unknown {
  if (type.endsWith('[]')) return [...(v as Result)].map((x) => convert(type.slice(0, -2), x, keepBig))
  if (type === 'address') return getAddress(String(v))
  if (type === 'bool') return Boolean(v)
  if (type === 'string') return String(v)
  if (type.startsWith('bytes')) return String(v).toLowerCase()
  if (type === 'uint8' || type === 'uint32' || (type === 'uint64' && !keepBig)) return Number(v)
  return BigInt(v as bigint)
}

/**
 * Decodes one log of the contract: null for a log that is none of its events; data that does not decode as
 * the event its topic names throws (ethers). The address is not checked here: decodeLogs does.
 */
export function decodeLog(log: Log): ChainEvent | null {
  // By topic0 from a table made once: ethers' parseLog hashes every event signature again for each log, which
  // dominated a cold start's decoding (100,000 logs). The contract's indexed inputs are all value types, so
  // each is its topic ABI-decoded; the data holds the others, in order. Same checks: a wrong topic count or
  // data that does not decode throws.
  const ev = BY_TOPIC.get(log.topics[0] ?? '')
  if (!ev) return null
  if (log.topics.length !== ev.indexed.length + 1) throw new Error(`${ev.name}: ${log.topics.length - 1} indexed topics, expected ${ev.indexed.length}`)
  const data = CODER.decode(ev.dataTypes, log.data)
  const args: Record<string, unknown> = {}
  let d = 0
  let t = 1
  for (const input of ev.inputs) {
    const raw = input.indexed ? CODER.decode([input], log.topics[t++]!)[0] : data[d++]
    args[input.name] = convert(input.type, raw, BIGINT_UINT64.has(`${ev.name}.${input.name}`))
  }
  return { name: ev.name, args, block: log.blockNumber, logIndex: log.index, tx: log.transactionHash } as ChainEvent
}

const CODER = AbiCoder.defaultAbiCoder()
/** topic0 → the event's name, inputs in declaration order, indexed ones and the data's types. */
const BY_TOPIC = new Map(
  IFACE.fragments
    .filter((f): f is EventFragment => f.type === 'event')
    .map((f) => {
      // An indexed string/bytes/array is only its hash in the topic: none of the contract's is, and none may become one unnoticed.
      for (const i of f.inputs) if (i.indexed && (i.type === 'string' || i.type === 'bytes' || i.type.endsWith(']') || i.type.startsWith('tuple'))) throw new Error(`${f.name}.${i.name}: an indexed ${i.type} cannot be decoded from its topic`)
      return f
    })
    .map((f) => [f.topicHash, { name: f.name as EventName, inputs: f.inputs, indexed: f.inputs.filter((i) => i.indexed), dataTypes: f.inputs.filter((i) => !i.indexed) }] as const),
)

/** Decodes the logs of the contract at `address`, in chain order; logs of any other address are dropped (they could be forged). */
export function decodeLogs(address: string, logs: readonly Log[]): ChainEvent[] {
  const own = address.toLowerCase()
  const out: ChainEvent[] = []
  for (const log of logs) {
    if (log.address.toLowerCase() !== own) continue
    const e = decodeLog(log)
    if (e) out.push(e)
  }
  return out.sort(chainOrder)
}

/** Sort order of events: block, then log index. */
export const chainOrder = (a: { block: number; logIndex: number }, b: { block: number; logIndex: number }): number => a.block - b.block || a.logIndex - b.logIndex

/** The event's place in the chain, as reporters.ts takes it. */
export const positionOf = (e: { block: number; logIndex: number }): readonly [number, number] => [e.block, e.logIndex]

// ------------------------------------------------------------------ ban subjects

/**
 * A ban's bytes32 subject has two forms: an address left-padded with zeros, or a keyed hash of an IP
 * (HMAC-SHA256(key, IP_BAN_TAG + normalised IP), so only proxies that share the key can tell which IP).
 */
export type BanSubject = { kind: 'address'; address: string } | { kind: 'ip-hash'; hash: string }

/** Domain tag of IP ban subjects (version 1). */
export const IP_BAN_TAG = 'flytrap/ban/ip/v1:'

const BYTES32 = /^0x[0-9a-f]{64}$/
const PADDED_ADDRESS = /^0x0{24}([0-9a-f]{40})$/

/** The subject of an address ban: the address left-padded to 32 bytes (lower case). */
export function banSubjectForAddress(address: string): string {
  // Checked on every CONNECT: a pattern, not getAddress (whose EIP-55 keccak the lower-cased result drops).
  const lower = String(address).toLowerCase()
  if (!HEX_ADDRESS.test(lower)) throw new TypeError(`invalid address: ${JSON.stringify(address)}`)
  return '0x000000000000000000000000' + lower.slice(2)
}

const HEX_ADDRESS = /^0x[0-9a-f]{40}$/

/** The subject of an IP ban, from an IP already normalised (net/ip.ts normalizeIp) and the subject key (UTF-8 text or bytes). */
export function ipBanSubject(normalisedIp: string, key: string | Uint8Array): string {
  return computeHmac('sha256', typeof key === 'string' ? toUtf8Bytes(key) : key, toUtf8Bytes(IP_BAN_TAG + normalisedIp)).toLowerCase()
}

export function encodeBanSubject(s: BanSubject): string {
  if (s.kind === 'address') return banSubjectForAddress(s.address)
  const h = s.hash.toLowerCase()
  if (!BYTES32.test(h) || PADDED_ADDRESS.test(h)) throw new RangeError(`not a keyed IP hash: ${JSON.stringify(s.hash)}`)
  return h
}

/** Reads a subject (any case); a RangeError for anything that is not 32 bytes of 0x-hex. */
export function decodeBanSubject(subject: string): BanSubject {
  const s = String(subject).toLowerCase()
  if (!BYTES32.test(s)) throw new RangeError(`not a ban subject (32 bytes of 0x-hex): ${JSON.stringify(subject)}`)
  const m = PADDED_ADDRESS.exec(s)
  return m ? { kind: 'address', address: getAddress(`0x${m[1]}`) } : { kind: 'ip-hash', hash: s }
}

/** The banned address when `subject` is an address subject; null for an IP hash or anything malformed (as a journal file may hold). */
export function bannedAddress(subject: string): string | null {
  try {
    const s = decodeBanSubject(subject)
    return s.kind === 'address' ? s.address : null
  } catch {
    return null
  }
}

// ------------------------------------------------------------------ human text

/** Unix seconds as ISO 8601 UTC, to the second (`2027-01-31T12:00:00Z`): the one time format of event text. */
export function isoSeconds(sec: number | bigint): string {
  return isoFromMs(Number(sec) * 1000).replace('.000Z', 'Z')
}

/**
 * Milliseconds since the epoch as ISO 8601 UTC. Times on chain are uint64s anyone with a topic or a reporter
 * key chooses (a grant's expiry, a ban's end): one past the calendar's end (year 275760) is written as its
 * number of seconds, never thrown on, so one such event cannot stop a report or the auditors' index.
 */
export function isoFromMs(ms: number): string {
  const d = new Date(ms)
  return Number.isFinite(d.getTime()) ? d.toISOString() : `${(ms / 1000).toExponential(6)} s after 1970 (past the calendar's end)`
}

/** Wei as "0.01 ETH". */
export const ethText = (wei: bigint): string => `${formatEther(wei).replace(/\.0$/, '')} ETH`

const flagText = (f: number) => [f & 1 ? 'sensitive' : '', f & 2 ? 'open' : ''].filter(Boolean).join(',') || 'none'
const periodText = (p: number) => (p ? `${p} s` : 'permanent')
const rolesText = (r: number) => roleNames(r).join(',')

function countriesText(packed: string): string {
  try {
    return decodeCountries(packed).join(' ') || 'anywhere'
  } catch {
    return packed
  }
}

/** "[from, to)" of a period, in event-text time. */
export const spanText = (fromTime: number, toTime: number): string => `[${isoSeconds(fromTime)}, ${isoSeconds(toTime)})`

/** "seq 5..8 (4 entries)", or that the anchored period was empty. */
export function anchoredSeqs(a: { firstSeq: number; count: number }): string {
  return a.count === 0 ? 'no entries (empty period)' : `seq ${a.firstSeq}..${a.firstSeq + a.count - 1} (${a.count} entries)`
}

/** One topic's line of a DeniedSummary (a reader that shows a row per topic). */
export const deniedCountText = (count: number, fromTime: number, toTime: number): string => `${count} refused in ${spanText(fromTime, toTime)}`

/** One member of a sensitive report (a reader that shows a row per member): in clear on chain, or opened from a committed root. */
export const sensitiveMemberText = (role: 'publisher' | 'receiver', count: number, fromTime: number, toTime: number, committed: boolean): string =>
  `${role === 'publisher' ? 'published' : 'received'} ${count} in ${spanText(fromTime, toTime)}${committed ? ' (member record, in the committed root)' : ''}`

/**
 * The one-line human text of an event (its specifics; the topic, client, actor and reason are the readers'
 * own columns), or null when it has none. `topicName` names a topic id (DeniedSummary lists ids).
 */
export function eventText(e: ChainEvent, topicName: (id: string) => string = (id) => id): string | null {
  switch (e.name) {
    case 'TopicAdded': {
      const a = e.args
      return `owner ${a.owner}; pubFee ${ethText(a.pubFee)}; subFee ${ethText(a.subFee)}; flags ${flagText(a.flags)}; period ${periodText(a.period)}; countries ${countriesText(a.countries)}`
    }
    case 'TopicFeesChanged':
      return `pubFee ${ethText(e.args.pubFee)}; subFee ${ethText(e.args.subFee)}; period ${periodText(e.args.period)}`
    case 'TopicCountriesChanged':
      return `countries ${countriesText(e.args.countries)}`
    case 'TopicFlagsChanged':
      return `flags ${flagText(e.args.flags)}`
    case 'TopicTransferred':
      return `from ${e.args.from} to ${e.args.to}`
    case 'TopicRemoved':
      return null
    case 'Granted':
      return `roles ${rolesText(e.args.roles)}; until ${formatExpiry(e.args.expiresAt)}`
    case 'Revoked':
      return `roles ${rolesText(e.args.roles)}`
    case 'Joined': {
      const a = e.args
      return `paid ${ethText(a.paid)}; roles ${rolesText(a.roles)}; publish until ${formatExpiry(a.pubExpiresAt)}; subscribe until ${formatExpiry(a.subExpiresAt)}`
    }
    case 'Withdrawn':
      return `${ethText(e.args.amount)} to ${e.args.to}`
    case 'AdminTransferStarted':
      return `pending admin ${e.args.pendingAdmin}`
    case 'AdminChanged':
      return `admin ${e.args.previousAdmin} → ${e.args.newAdmin}`
    case 'RegistrationFeeChanged':
      return `registration fee ${ethText(e.args.fee)}`
    case 'ReporterAdded':
    case 'ReporterRemoved':
      return `reporter ${e.args.reporter}`
    case 'Banned': {
      const until = `until ${isoSeconds(e.args.until)}`
      return bannedAddress(e.args.subject) ? until : `keyed IP hash ${e.args.subject}; ${until}`
    }
    case 'DeniedSummary': {
      const a = e.args
      return `${a.topics.map((t, i) => `${topicName(t)}: ${a.counts[i]}`).join('; ')} refused in ${spanText(a.fromTime, a.toTime)}`
    }
    case 'SensitiveReport': {
      const a = e.args
      return `publishers ${a.publishers} (published ${a.published}), receivers ${a.receivers} (received ${a.received}) in ${spanText(a.fromTime, a.toTime)}; members committed, root ${a.membersRoot}`
    }
    case 'SensitiveReportClear': {
      const a = e.args
      const sum = (xs: number[]) => xs.reduce((s, n) => s + n, 0)
      return `publishers ${a.publishers.length} (published ${sum(a.published)}), receivers ${a.receivers.length} (received ${sum(a.received)}) in ${spanText(a.fromTime, a.toTime)}; members in clear`
    }
    case 'Anchored': {
      const a = e.args
      return `anchor: ${anchoredSeqs(a)} in ${spanText(a.fromTime, a.toTime)}; root ${a.root}, index ${a.index}, chain ${a.chain}`
    }
  }
}
