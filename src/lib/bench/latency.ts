/**
 * `flytrap bench latency`: per-packet round trips (CONNECT→CONNACK with authentication, SUBSCRIBE→SUBACK,
 * QoS 1 PUBLISH→PUBACK), the paper's whole-session time, steady-state publish round trips and pipelined
 * QoS 1 throughput, for the broker directly, FlyTrap and a plain TCP relay, over TCP and TLS. Targets are
 * interleaved sample by sample (in a shuffled order each round) so drift on the machine hits all alike.
 * What the journal costs: `flytrap` runs the default --journal-sync strict; `flytrap-relaxed` and
 * `flytrap-nojournal`, when given, are the same proxy with relaxed sync and without a journal;
 * `flytrap-alldeliveries` the strict proxy with `--journal-deliveries all` (every allowed delivery journaled,
 * per receiver/topic/second). Deliveries only happen with a subscriber, so the pipelined run is repeated
 * with one subscriber on the topic (`deliveryThroughput`): the publisher's rate while every message is
 * also delivered.
 */
import { signCredential, toUserProperties } from '../auth/index.js'
import { RawClient, type Target } from './raw-client.js'
import { summarize, type Summary } from './stats.js'

export type TargetName = 'direct' | 'flytrap' | 'relay' | 'node-relay' | 'flytrap-relaxed' | 'flytrap-nojournal' | 'flytrap-alldeliveries'
const isFlytrap = (n: TargetName) => n.startsWith('flytrap')
export type Op = 'connect' | 'subscribe' | 'publish' | 'session' | 'publishSteady'
export const OPS: Op[] = ['connect', 'subscribe', 'publish', 'session', 'publishSteady']

export interface LatencyTargets {
  tcp: Partial<Record<TargetName, Target>>
  tls: Partial<Record<TargetName, Target>>
}

export interface LatencyOptions {
  targets: LatencyTargets
  /** Key with publish + subscribe rights on `topic` (for FlyTrap); the credential binds chain + contract. */
  key: string
  chainId: number
  contract: string
  topic: string
  count: number
  warmup: number
  /** Messages per pipelined throughput run (0 = skip). */
  pipeline: number
  window: number
  transports: ('tcp' | 'tls')[]
  onProgress?: (done: number, total: number, what: string) => void
}

export interface LatencyResult {
  count: number
  warmup: number
  /** transport → target → op → summary in microseconds. */
  latency: Record<string, Partial<Record<TargetName, Record<Op, Summary>>>>
  /** transport → target → QoS 1 messages per second with `window` in flight. */
  throughput: Record<string, Partial<Record<TargetName, number>>>
  /** transport → target → the same with one subscriber on the topic (every message also delivered). */
  deliveryThroughput: Record<string, Partial<Record<TargetName, number>>>
  /** transport → op → ratios of p50s and added microseconds over direct. */
  overhead: Record<string, Partial<Record<Op, { flytrapOverDirect: number; relayOverDirect?: number; flytrapAddedUs: number; relayAddedUs?: number; addedVsRelay?: number; nodeRelayAddedUs?: number }>>>
  /**
   * transport → what strict journal sync costs against relaxed and no journal: p50 of a fresh session's
   * QoS 1 round trip and of the steady one (µs), pipelined throughput (messages/s), and the two targets
   * (strict adds ≤ 1 ms p50 to a QoS 1 round trip; keeps ≥ 80 % of relaxed throughput).
   */
  journalSync: Record<string, JournalSyncCost>
}

export type JournalMode = 'strict' | 'relaxed' | 'off' | 'all'

export interface JournalSyncCost {
  /** `all`: strict with --journal-deliveries all. */
  publishP50: Partial<Record<JournalMode, number>>
  publishSteadyP50: Partial<Record<JournalMode, number>>
  throughput: Partial<Record<JournalMode, number>>
  /** Pipelined with one subscriber: what journaling every delivery costs shows here. */
  deliveryThroughput: Partial<Record<JournalMode, number>>
  /** Strict minus relaxed, steady QoS 1 round trip p50 (µs). */
  strictAddedUs?: number
  /** Strict throughput / relaxed throughput. */
  strictThroughputShare?: number
}

export async function runLatencyBench(o: LatencyOptions): Promise<LatencyResult> {
  const result: LatencyResult = { count: o.count, warmup: o.warmup, latency: {}, throughput: {}, deliveryThroughput: {}, overhead: {}, journalSync: {} }
  const payload = Buffer.from('21.5')
  const rounds = o.count + o.warmup
  const work = o.transports.length * rounds + (o.pipeline > 0 ? o.transports.length * 6 : 0)
  let done = 0

  for (const transport of o.transports) {
    const targets = Object.entries(o.targets[transport]).filter(([, t]) => t) as [TargetName, Target][]
    const samples = new Map<TargetName, Record<Op, number[]>>(targets.map(([n]) => [n, { connect: [], subscribe: [], publish: [], session: [], publishSteady: [] }]))
    const credential = (name: TargetName, clientId: string) => (isFlytrap(name) ? flytrapConnect(o, clientId) : { clientId })
    // Signed once per target, outside the timed region (signing is the device's cost, not the proxy's).
    const sessionConnect = new Map(targets.map(([n]) => [n, credential(n, `bench-${n}`)]))

    // One persistent connection per target for steady-state publish round trips and throughput.
    const steady = new Map<TargetName, RawClient>()
    for (const [name, target] of targets) {
      const c = await RawClient.open(target, 5)
      const rc = await c.connect(credential(name, `bench-steady-${name}`))
      if (rc !== 0) throw new Error(`${name} (${transport}) refused the benchmark client: CONNACK 0x${rc.toString(16)}`)
      steady.set(name, c)
    }
    const template = (name: TargetName) => steady.get(name)!.publishTemplate(o.topic, payload)
    const templates = new Map(targets.map(([n]) => [n, template(n)]))

    for (let round = 0; round < rounds; round++) {
      for (const [name, target] of shuffle(targets)) {
        const s = samples.get(name)!
        const t0 = process.hrtime.bigint()
        const c = await RawClient.open(target, 5)
        const tc = process.hrtime.bigint()
        const rc = await c.connect(sessionConnect.get(name)!)
        const t1 = process.hrtime.bigint()
        if (rc !== 0) throw new Error(`${name} (${transport}) refused CONNECT: 0x${rc.toString(16)}`)
        await c.subscribe(o.topic)
        const t2 = process.hrtime.bigint()
        const pub = await c.publishRtt(c.publishTemplate(o.topic, payload))
        await c.disconnect()
        const t3 = process.hrtime.bigint()
        const steadyRtt = await steady.get(name)!.publishRtt(templates.get(name)!)
        if (round >= o.warmup) {
          s.connect.push(Number(t1 - tc) / 1000)
          s.subscribe.push(Number(t2 - t1) / 1000)
          s.publish.push(pub)
          s.session.push(Number(t3 - t0) / 1000)
          s.publishSteady.push(steadyRtt)
        }
      }
      o.onProgress?.(++done, work, `${transport} round ${round + 1}/${rounds}`)
    }

    result.latency[transport] = Object.fromEntries([...samples].map(([n, s]) => [n, Object.fromEntries(OPS.map((op) => [op, summarize(s[op])])) as Record<Op, Summary>]))

    if (o.pipeline > 0) {
      const best = new Map<TargetName, number>()
      for (let r = 0; r < 3; r++) {
        for (const [name] of shuffle(targets)) {
          const rate = await steady.get(name)!.pipelined(templates.get(name)!, o.pipeline, o.window)
          best.set(name, Math.max(best.get(name) ?? 0, rate))
        }
        o.onProgress?.(++done, work, `${transport} throughput run ${r + 1}/3`)
      }
      result.throughput[transport] = Object.fromEntries(best)
      // The same with one subscriber per target on the topic: each message is also delivered (and, with
      // --journal-deliveries all, journaled for the receiver).
      const subscribers = new Map<TargetName, RawClient>()
      for (const [name, target] of targets) {
        const c = await RawClient.open(target, 5)
        const rc = await c.connect(credential(name, `bench-sub-${name}`))
        if (rc !== 0) throw new Error(`${name} (${transport}) refused the benchmark subscriber: CONNACK 0x${rc.toString(16)}`)
        await c.subscribe(o.topic)
        subscribers.set(name, c)
      }
      const withSub = new Map<TargetName, number>()
      for (let r = 0; r < 3; r++) {
        for (const [name] of shuffle(targets)) {
          const rate = await steady.get(name)!.pipelined(templates.get(name)!, o.pipeline, o.window)
          withSub.set(name, Math.max(withSub.get(name) ?? 0, rate))
        }
        o.onProgress?.(++done, work, `${transport} throughput run with a subscriber ${r + 1}/3`)
      }
      for (const c of subscribers.values()) await c.disconnect()
      result.deliveryThroughput[transport] = Object.fromEntries(withSub)
    }
    for (const c of steady.values()) await c.disconnect()

    const lat = result.latency[transport]!
    if (lat['flytrap-relaxed'] || lat['flytrap-nojournal'] || lat['flytrap-alldeliveries']) {
      const modes = { strict: 'flytrap', relaxed: 'flytrap-relaxed', off: 'flytrap-nojournal', all: 'flytrap-alldeliveries' } as const
      const cost: JournalSyncCost = { publishP50: {}, publishSteadyP50: {}, throughput: {}, deliveryThroughput: {} }
      for (const [mode, name] of Object.entries(modes) as [JournalMode, TargetName][]) {
        if (lat[name]) {
          cost.publishP50[mode] = lat[name]!.publish.p50
          cost.publishSteadyP50[mode] = lat[name]!.publishSteady.p50
        }
        const thr = result.throughput[transport]?.[name]
        if (thr !== undefined) cost.throughput[mode] = thr
        const dthr = result.deliveryThroughput[transport]?.[name]
        if (dthr !== undefined) cost.deliveryThroughput[mode] = dthr
      }
      if (cost.publishSteadyP50.strict !== undefined && cost.publishSteadyP50.relaxed !== undefined) cost.strictAddedUs = cost.publishSteadyP50.strict - cost.publishSteadyP50.relaxed
      if (cost.throughput.strict && cost.throughput.relaxed) cost.strictThroughputShare = cost.throughput.strict / cost.throughput.relaxed
      result.journalSync[transport] = cost
    }
    result.overhead[transport] = Object.fromEntries(
      (lat.direct && lat.flytrap ? OPS : []).map((op) => {
        const d = lat.direct![op].p50
        const f = lat.flytrap![op].p50
        const r = lat.relay?.[op].p50
        const n = lat['node-relay']?.[op].p50
        return [
          op,
          {
            flytrapOverDirect: f / d,
            relayOverDirect: r !== undefined ? r / d : undefined,
            flytrapAddedUs: f - d,
            relayAddedUs: r !== undefined ? r - d : undefined,
            addedVsRelay: r !== undefined && r - d > 0 ? (f - d) / (r - d) : undefined,
            nodeRelayAddedUs: n !== undefined ? n - d : undefined,
          },
        ]
      }),
    )
  }
  return result
}

/** The CONNECT fields for FlyTrap: the v1 credential in MQTT 5 user properties. */
function flytrapConnect(o: LatencyOptions, clientId: string): { clientId: string; properties: { userProperties: Record<string, string> } } {
  const cred = signCredential({ signer: o.key, chainId: BigInt(o.chainId), contract: o.contract, clientId, expiresAt: Math.floor(Date.now() / 1000) + 86_400 })
  return { clientId, properties: { userProperties: toUserProperties(cred) } }
}

function shuffle<T>(items: T[]): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j]!, a[i]!]
  }
  return a
}
