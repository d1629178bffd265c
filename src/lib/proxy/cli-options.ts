/**
 * `flytrap proxy start` flags → ProxyOptions. Pure parsing and validation (plain values in, plain values out;
 * files are read through an injectable reader) so every accepted and refused spelling is unit-tested, and the
 * command stays a thin shell. Every refusal is a usage error naming the flag and showing a valid example.
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { usageError } from '../errors.js'
import { checkRange, parseDuration, parseSize } from '../parse/units.js'
import { DEFAULTS, type ListenerOptions, type ProxyOptions, type UpstreamOptions } from './options.js'
import { compileAddressList } from '../net/ip.js'
import { parseWsRpcUrl } from '../chain/log-source.js'
import type { Level } from '../log.js'

/** The flags as the command received them (strings for anything with units, so parsing happens here). */
export interface ProxyCliInput {
  /** --listen, repeatable [default: 0.0.0.0:1883]. */
  listen?: string[]
  tlsListen?: string
  tlsCert?: string
  tlsKey?: string
  tlsClientCa?: string
  tlsRequireClientCert?: boolean
  /** --broker, repeatable: new sessions go to the first healthy one. */
  broker: string | string[]
  brokerCa?: string
  brokerInsecure?: boolean
  brokerServername?: string
  /** The proxy's own identity towards the broker(s). */
  brokerUsername?: string
  brokerPassword?: string
  brokerPasswordFile?: string
  brokerCert?: string
  brokerKey?: string
  proxyProtocol?: boolean
  trustedProxy?: string[]
  metrics?: string
  pollInterval?: string
  /** --rpc-ws: a ws(s):// RPC for log subscriptions. */
  rpcWs?: string
  /** The resolved --rpc: a ws(s):// one serves the log subscription too when --rpc-ws is not given. */
  rpc?: string
  unregistered?: string
  failOpen?: boolean
  allowLegacyCredentials?: boolean
  usernameFromAddress?: boolean
  maxCredentialLifetime?: string
  banThreshold?: string
  banWindow?: string
  banDuration?: string
  banKey?: string
  banReportInterval?: string
  maxPacketSize?: string
  connectTimeout?: string
  drainTimeout?: string
  maxConnections?: string
  maxConnectionsPerIp?: string
  logLevel?: string
}

/** ProxyOptions without what needs the chain (clients, chain id, start block) or a logger. */
export type ProxyCliOptions = Omit<ProxyOptions, 'contract' | 'reporter' | 'chainId' | 'fromBlock' | 'logger'>

export interface ParsedProxyCli {
  options: ProxyCliOptions
  logLevel: Level
  /** Settings that weaken security or look like mistakes: the command shows them at start. */
  warnings: string[]
}

export const DEFAULT_LISTEN = '0.0.0.0:1883'
/** The largest MQTT packet: 1 type byte + 4 length bytes + 268,435,455 bytes. */
export const MQTT_MAX_PACKET = 268_435_460
const LOG_LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error']

export function parseProxyCli(input: ProxyCliInput, io: { readFile?: (path: string) => Buffer } = {}): ParsedProxyCli {
  const readFile = io.readFile ?? ((p: string) => readFileSync(p))
  const warnings: string[] = []
  const read = (path: string, flag: string, what = 'a PEM file'): Buffer => {
    try {
      return readFile(path)
    } catch (err) {
      throw usageError(`${flag} ${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, `pass the path of ${what}`)
    }
  }

  // ---- listeners
  const trusted = input.trustedProxy ?? []
  if (trusted.length && !input.proxyProtocol) throw usageError('--trusted-proxy only makes sense with --proxy-protocol', 'add --proxy-protocol, or drop --trusted-proxy')
  if (input.proxyProtocol && !trusted.length) throw usageError('--proxy-protocol needs at least one --trusted-proxy', 'name the load balancers allowed to send PROXY headers, e.g. --trusted-proxy 10.0.0.0/8')
  compileAddressList(trusted) // throws a usage error naming a bad entry
  const proxyProtocol = input.proxyProtocol ? { proxyProtocol: true, trustedProxies: [...trusted] } : {}

  const listen = input.listen?.length ? input.listen : [DEFAULT_LISTEN]
  const listeners: ListenerOptions[] = listen.map((l) => ({ listen: parseHostPort(l, '--listen'), ...proxyProtocol }))

  const tlsGiven = input.tlsCert !== undefined || input.tlsKey !== undefined || input.tlsClientCa !== undefined || Boolean(input.tlsRequireClientCert)
  if (input.tlsListen === undefined && tlsGiven) throw usageError('--tls-cert, --tls-key, --tls-client-ca and --tls-require-client-cert need --tls-listen', 'e.g. --tls-listen 0.0.0.0:8883 --tls-cert server.crt --tls-key server.key')
  if (input.tlsListen !== undefined) {
    if (input.tlsCert === undefined || input.tlsKey === undefined) throw usageError('--tls-listen needs --tls-cert and --tls-key', 'e.g. --tls-cert server.crt --tls-key server.key (PEM files)')
    if (input.tlsRequireClientCert && input.tlsClientCa === undefined) throw usageError('--tls-require-client-cert needs --tls-client-ca', 'pass the CA bundle that signed the client certificates')
    listeners.push({
      listen: parseHostPort(input.tlsListen, '--tls-listen'),
      tls: {
        cert: read(input.tlsCert, '--tls-cert'),
        key: read(input.tlsKey, '--tls-key'),
        ...(input.tlsClientCa !== undefined ? { ca: read(input.tlsClientCa, '--tls-client-ca') } : {}),
        requireClientCert: Boolean(input.tlsRequireClientCert),
      },
      ...proxyProtocol,
    })
  }
  const seen = new Set<string>()
  for (const l of listeners) {
    if (seen.has(l.listen) && !l.listen.endsWith(':0')) throw usageError(`${l.listen} is given twice`, 'each --listen / --tls-listen needs its own address or port')
    seen.add(l.listen)
  }

  // ---- upstream broker(s) and the proxy's identity towards them
  const upstream = parseUpstreams(input, read, warnings, Boolean(input.usernameFromAddress))

  // ---- policy and credentials
  const unregistered = input.unregistered ?? DEFAULTS.unregisteredTopics
  if (unregistered !== 'deny' && unregistered !== 'allow') throw usageError(`--unregistered "${unregistered}" is not deny or allow`, 'deny (default): topics no registered name covers are refused')
  if (unregistered === 'allow') warnings.push('--unregistered allow: topics no registered name or filter covers are open to every authenticated client')
  if (input.failOpen) warnings.push('--fail-open: until the first policy sync succeeds, nothing is refused for lack of policy')
  if (input.allowLegacyCredentials) warnings.push('--allow-legacy-credentials: replayable legacy passwords (a signature over the address alone) are accepted')

  const logLevel = (input.logLevel ?? 'info') as Level
  if (!LOG_LEVELS.includes(logLevel)) throw usageError(`--log-level "${input.logLevel}" is not one of ${LOG_LEVELS.join(', ')}`)

  const banKey = input.banKey
  if (banKey !== undefined && banKey.length < 16) throw usageError('--ban-key is shorter than 16 characters', 'IP hashes keyed with a short secret can be reversed: use e.g. `openssl rand -hex 32`')

  // Log subscriptions: --rpc-ws, else a ws:// --rpc itself (validated here, before any network call).
  const rpcWs = input.rpcWs !== undefined ? parseWsRpcUrl(input.rpcWs, '--rpc-ws') : input.rpc !== undefined && /^wss?:\/\//i.test(input.rpc.trim()) ? parseWsRpcUrl(input.rpc, '--rpc') : undefined

  const options: ProxyCliOptions = {
    listeners,
    upstream: upstream.length === 1 ? upstream[0]! : upstream,
    pollIntervalMs: opt(input.pollInterval, DEFAULTS.pollIntervalMs, (v) => parseDuration(v, '--poll-interval', { min: 50, max: 3_600_000, bare: 'ms' })),
    ...(rpcWs !== undefined ? { rpcWs } : {}),
    unregisteredTopics: unregistered,
    failOpen: Boolean(input.failOpen),
    allowLegacyCredentials: Boolean(input.allowLegacyCredentials),
    usernameFromAddress: Boolean(input.usernameFromAddress),
    maxCredentialLifetimeSec: opt(input.maxCredentialLifetime, DEFAULTS.maxCredentialLifetimeSec, (v) => Math.floor(parseDuration(v, '--max-credential-lifetime', { min: 60_000, max: 100 * 366 * 86_400_000, bare: 'ms' }) / 1000)),
    bans: {
      threshold: opt(input.banThreshold, DEFAULTS.bans.threshold, (v) => parseCount(v, '--ban-threshold', { min: 1 })),
      windowMs: opt(input.banWindow, DEFAULTS.bans.windowMs, (v) => parseDuration(v, '--ban-window', { min: 1_000, bare: 'ms' })),
      durationMs: opt(input.banDuration, DEFAULTS.bans.durationMs, (v) => parseDuration(v, '--ban-duration', { min: 1_000, bare: 'ms' })),
      ...(banKey !== undefined ? { subjectKey: banKey } : {}),
      reportIntervalMs: opt(input.banReportInterval, DEFAULTS.bans.reportIntervalMs, (v) => parseDuration(v, '--ban-report-interval', { min: 1_000, bare: 'ms' })),
      reportBatchMax: DEFAULTS.bans.reportBatchMax,
    },
    limits: {
      maxPacketSize: opt(input.maxPacketSize, DEFAULTS.limits.maxPacketSize, (v) => parseSize(v, '--max-packet-size', { min: 64, max: MQTT_MAX_PACKET })),
      connectTimeoutMs: opt(input.connectTimeout, DEFAULTS.limits.connectTimeoutMs, (v) => parseDuration(v, '--connect-timeout', { min: 100, bare: 'ms' })),
      maxConnections: opt(input.maxConnections, DEFAULTS.limits.maxConnections, (v) => parseCount(v, '--max-connections', { min: 1 })),
      maxConnectionsPerIp: opt(input.maxConnectionsPerIp, DEFAULTS.limits.maxConnectionsPerIp, (v) => parseCount(v, '--max-connections-per-ip', { min: 1 })),
      drainTimeoutMs: opt(input.drainTimeout, DEFAULTS.limits.drainTimeoutMs, (v) => parseDuration(v, '--drain-timeout', { min: 100, bare: 'ms' })),
    },
    ...(input.metrics !== undefined ? { metrics: parseHostPort(input.metrics, '--metrics') } : {}),
  }
  if (options.limits.maxConnectionsPerIp > options.limits.maxConnections) {
    throw usageError(`--max-connections-per-ip ${options.limits.maxConnectionsPerIp} is above --max-connections ${options.limits.maxConnections}`)
  }
  return { options, logLevel, warnings }
}

/** --broker (repeatable) with the TLS and identity flags, which apply to every broker given. */
function parseUpstreams(input: ProxyCliInput, read: (path: string, flag: string, what?: string) => Buffer, warnings: string[], usernameFromAddress: boolean): UpstreamOptions[] {
  const urls = (Array.isArray(input.broker) ? input.broker : [input.broker]).map(parseBrokerUrl)
  if (urls.length === 0) throw usageError('--broker is required', 'e.g. --broker mqtt://127.0.0.1:1884')
  const dup = urls.find((u, i) => urls.indexOf(u) !== i)
  if (dup) throw usageError(`--broker ${dup} is given twice`)
  const anySecure = urls.some((u) => u.startsWith('mqtts://'))
  const tlsOnly = input.brokerCa !== undefined || input.brokerInsecure || input.brokerServername !== undefined || input.brokerCert !== undefined || input.brokerKey !== undefined
  if (tlsOnly && !anySecure) throw usageError('--broker-ca, --broker-insecure, --broker-servername, --broker-cert and --broker-key apply to an mqtts:// broker', `--broker ${urls.join(' ')} is plain TCP`)
  if (input.brokerCa !== undefined && input.brokerInsecure) throw usageError('--broker-ca and --broker-insecure contradict each other', 'verify against --broker-ca (preferred), or skip verification with --broker-insecure')
  if ((input.brokerCert === undefined) !== (input.brokerKey === undefined)) throw usageError('--broker-cert and --broker-key go together', 'e.g. --broker-cert proxy.crt --broker-key proxy.key (the proxy\'s client certificate for the broker)')
  if (input.brokerPassword !== undefined && input.brokerPasswordFile !== undefined) throw usageError('--broker-password and --broker-password-file are alternatives', 'keep --broker-password-file (a password on the command line shows in `ps`)')
  let password: Buffer | undefined
  if (input.brokerPassword !== undefined) password = Buffer.from(input.brokerPassword, 'utf8')
  if (input.brokerPasswordFile !== undefined) {
    // The file's first line is the password (a trailing newline from `echo` is not part of it).
    const text = read(input.brokerPasswordFile, '--broker-password-file', 'a file holding the password').toString('utf8')
    password = Buffer.from(text.split(/\r?\n/)[0]!, 'utf8')
    if (password.length === 0) throw usageError(`--broker-password-file ${input.brokerPasswordFile} is empty`, 'put the password on its first line')
  }
  if (password !== undefined && input.brokerUsername === undefined && !usernameFromAddress) {
    throw usageError('--broker-password needs --broker-username (or --username-from-address)', 'MQTT 3.1.1 sends no password without a username: e.g. --broker-username flytrap --broker-password-file broker.pass')
  }
  const identity: Partial<UpstreamOptions> = {
    ...(input.brokerUsername !== undefined ? { username: input.brokerUsername } : {}),
    ...(password !== undefined ? { password } : {}),
  }
  const tls: Partial<UpstreamOptions> = {
    ...(input.brokerCa !== undefined ? { ca: read(input.brokerCa, '--broker-ca') } : {}),
    ...(input.brokerInsecure ? { insecure: true } : {}),
    ...(input.brokerServername !== undefined ? { servername: input.brokerServername } : {}),
    ...(input.brokerCert !== undefined ? { cert: read(input.brokerCert, '--broker-cert'), key: read(input.brokerKey!, '--broker-key') } : {}),
  }
  if (input.brokerInsecure) warnings.push('--broker-insecure: the broker certificate is not verified')
  if (password !== undefined && !anySecure) warnings.push('--broker-password over mqtt://: the proxy\'s password crosses the network in clear (use mqtts://, or keep the broker on a private network)')
  return urls.map((url) => ({ url, ...identity, ...(url.startsWith('mqtts://') ? tls : {}) }))
}

function opt<T>(value: string | undefined, fallback: T, parse: (v: string) => T): T {
  return value === undefined ? fallback : parse(value)
}

// ------------------------------------------------------------------ value parsers (exported for tests)

/** A positive whole number ("5", "10000", "10_000", "10,000"). */
export function parseCount(value: string, flag: string, range: { min?: number; max?: number } = {}): number {
  const text = value.trim().replace(/[_,](?=\d{3}(\D|$))/g, '')
  if (!/^\d+$/.test(text)) throw usageError(`${flag} "${value}" is not a whole number`, `e.g. ${flag} 100`)
  const n = Number(text)
  checkRange(n, flag, value, { max: Number.MAX_SAFE_INTEGER, ...range }, String)
  return n
}

/**
 * "0.0.0.0:1883", "[::]:1883", "localhost:1883", ":1883" (all IPv4 interfaces) or "1883" → a normalised
 * "host:port" / "[v6]:port". Port 0 picks a free port.
 */
export function parseHostPort(value: string, flag: string): string {
  const text = value.trim()
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s]*):(\d{1,5})$/.exec(text) ?? /^()(\d{1,5})$/.exec(text)
  const example = `e.g. ${flag} 0.0.0.0:1883, ${flag} [::]:1883 or ${flag} 127.0.0.1:0`
  if (!m) throw usageError(`${flag} "${value}" is not host:port`, `${example} (IPv6 addresses in brackets)`)
  const host = m[1] || '0.0.0.0'
  const port = Number(m[2])
  if (port > 65_535) throw usageError(`${flag} "${value}": port ${port} is above 65535`, example)
  const bracketed = text.startsWith('[')
  if (bracketed && isIP(host) !== 6) throw usageError(`${flag} "${value}": ${host} is not an IPv6 address`, example)
  if (!bracketed && !isIP(host) && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host)) {
    throw usageError(`${flag} "${value}": "${host}" is not an IP address or host name`, example)
  }
  return bracketed ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * The upstream broker: mqtt://host[:1883] or mqtts://host[:8883] (tcp:// and ssl:// / tls:// are accepted as
 * their aliases). Normalised to mqtt(s)://host:port. No credentials or paths: the proxy owns authentication.
 */
export function parseBrokerUrl(value: string): string {
  const example = 'e.g. --broker mqtt://127.0.0.1:1884 or --broker mqtts://broker.internal:8883'
  let url: URL
  try {
    url = new URL(value.trim())
  } catch {
    throw usageError(`--broker "${value}" is not a URL`, example)
  }
  const scheme = { 'mqtt:': 'mqtt', 'tcp:': 'mqtt', 'mqtts:': 'mqtts', 'ssl:': 'mqtts', 'tls:': 'mqtts' }[url.protocol]
  if (!scheme) throw usageError(`--broker "${value}": ${url.protocol.replace(/:$/, '')}:// is not supported (use mqtt:// or mqtts://)`, example)
  if (!url.hostname) throw usageError(`--broker "${value}" has no host`, example)
  if (url.username || url.password) throw usageError('--broker must not carry credentials', 'the proxy connects on behalf of authenticated devices; configure the broker to trust the proxy instead')
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) throw usageError(`--broker "${value}" has a path or query`, example)
  const port = url.port || (scheme === 'mqtts' ? '8883' : '1883')
  return `${scheme}://${url.hostname}:${port}`
}
