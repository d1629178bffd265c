/**
 * What each idle authenticated session costs the proxy's heap, by constructor (issue 14's ≤ 4 KiB target).
 * Usage: node --import tsx scripts/session-heap.ts [--sessions 5000] [--keep-snapshots] [--json]
 *
 * Starts anvil + contract + mosquitto and the proxy alone in a child with --expose-gc (test/helpers/
 * memory-proxy.ts); warms it up with 200 sessions (closed again), then reads the heap after GC and writes a
 * heap snapshot, opens N idle sessions, and does both again. Prints heap/external/RSS per session and the
 * snapshot diff grouped by constructor (self sizes): what one session retains. One process holds two file
 * descriptors per session, so N is bounded by `ulimit -n` / 2.
 */
import { readFileSync, rmSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startMosquitto } from '../src/lib/dev/mosquitto.js'
import { chainFixture } from '../test/helpers/chain.js'
import { closeSessions, openIdleSessions, startMemoryProxy, type ProxyMemory } from '../test/helpers/memory-proxy.js'

const args = process.argv.slice(2)
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined)
const N = Number(opt('--sessions') ?? 5000)
const asJson = args.includes('--json')
const keep = args.includes('--keep-snapshots')

interface Group {
  count: number
  bytes: number
}

/** A node's class: objects by constructor, closures by function name, the rest by type. */
function classOf(type: string, name: string): string {
  return type === 'object' || type === 'native' ? name : type === 'closure' ? `(closure ${name || 'anonymous'})` : `(${type})`
}

/**
 * Self size and count per node class, and per (class ← the class and edge that hold it): an array or closure
 * says little alone, what holds it (`Socket._events`, `Session.pendingSubacks`…) says which code to change.
 */
export function summariseSnapshot(path: string): { byClass: Map<string, Group>; byHolder: Map<string, Group> } {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } }
    nodes: number[]
    edges: number[]
    strings: string[]
  }
  const { node_fields: nf, node_types: nt, edge_fields: ef, edge_types: et } = snap.snapshot.meta
  const width = nf.length
  const ew = ef.length
  const [iType, iName, iSize, iEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f)) as [number, number, number, number]
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => ef.indexOf(f)) as [number, number, number]
  const nodes = snap.nodes
  const count = nodes.length / width
  const cls = new Array<string>(count)
  for (let n = 0; n < count; n++) cls[n] = classOf(nt[0][nodes[n * width + iType]!]!, snap.strings[nodes[n * width + iName]!]!)
  const add = (m: Map<string, Group>, key: string, bytes: number) => {
    const g = m.get(key) ?? { count: 0, bytes: 0 }
    g.count++
    g.bytes += bytes
    m.set(key, g)
  }
  const byClass = new Map<string, Group>()
  for (let n = 0; n < count; n++) add(byClass, cls[n]!, nodes[n * width + iSize]!)
  // The first strong holder of each node (weak edges are skipped): enough to name who allocates it.
  const holder = new Array<string | undefined>(count)
  let e = 0
  for (let n = 0; n < count; n++) {
    const edges = nodes[n * width + iEdges]!
    for (let k = 0; k < edges; k++, e += ew) {
      const type = et[0][snap.edges[e + eType]!]!
      if (type === 'weak' || type === 'shortcut') continue
      const to = snap.edges[e + eTo]! / width
      if (holder[to] !== undefined) continue
      const raw = snap.edges[e + eName]!
      const edge = type === 'element' || type === 'hidden' ? `[${type}]` : snap.strings[raw]!
      holder[to] = `${cls[n]}.${edge}`
    }
  }
  const byHolder = new Map<string, Group>()
  for (let n = 0; n < count; n++) add(byHolder, `${cls[n]} ← ${holder[n] ?? '(root)'}`, nodes[n * width + iSize]!)
  return { byClass, byHolder }
}

/** Per-session difference of two summaries, largest first. */
function perSession(a: Map<string, Group>, b: Map<string, Group>, n: number): { name: string; perSession: number; bytesPerSession: number }[] {
  return [...a]
    .map(([name, g]) => ({ name, perSession: Number(((g.count - (b.get(name)?.count ?? 0)) / n).toFixed(2)), bytesPerSession: Math.round((g.bytes - (b.get(name)?.bytes ?? 0)) / n) }))
    .filter((r) => Math.abs(r.bytesPerSession) >= 8)
    .sort((x, y) => y.bytesPerSession - x.bytesPerSession)
}

const dir = mkdtempSync(join(tmpdir(), 'flytrap-heap-'))
const chain = await chainFixture()
const mosquitto = await startMosquitto()
const proxy = await startMemoryProxy({ rpcUrl: chain.rpcUrl, contract: chain.address, chainId: chain.chainId, fromBlock: chain.deployBlock, brokerUrl: mosquitto.url })
try {
  const deployment = { chainId: chain.chainId, contract: chain.address }
  await closeSessions(await openIdleSessions(proxy.port, deployment, 200, { tag: 'warm' }))
  await new Promise((r) => setTimeout(r, 1_500)) // lingering sockets of the warm-up go
  const before = await proxy.memory()
  const snapBefore = await proxy.snapshot(join(dir, 'before.heapsnapshot'))
  const t0 = Date.now()
  const clients = await openIdleSessions(proxy.port, deployment, N)
  const openSeconds = (Date.now() - t0) / 1000
  await new Promise((r) => setTimeout(r, 1_000))
  const after = await proxy.memory()
  const snapAfter = await proxy.snapshot(join(dir, 'after.heapsnapshot'))
  const n = after.sessions - before.sessions
  const per = (k: keyof ProxyMemory) => (after[k] - before[k]) / n / 1024
  const a = summariseSnapshot(snapAfter)
  const b = summariseSnapshot(snapBefore)
  const byClass = perSession(a.byClass, b.byClass, n)
  const result = {
    sessions: n,
    openSeconds,
    perSessionKiB: { heapUsed: per('heapUsed'), heapTotal: per('heapTotal'), external: per('external'), arrayBuffers: per('arrayBuffers'), rss: per('rss') },
    snapshotBytesPerSession: byClass.reduce((s, r) => s + r.bytesPerSession, 0),
    byConstructor: byClass.slice(0, 40),
    byHolder: perSession(a.byHolder, b.byHolder, n).slice(0, 60),
    snapshots: keep ? [snapBefore, snapAfter] : undefined,
  }
  if (asJson) console.log(JSON.stringify(result, null, 2))
  else {
    console.log(`${n} idle sessions opened in ${openSeconds.toFixed(1)} s`)
    console.log(`per session: heap ${result.perSessionKiB.heapUsed.toFixed(2)} KiB (committed ${result.perSessionKiB.heapTotal.toFixed(2)}), external ${result.perSessionKiB.external.toFixed(2)} KiB, RSS ${result.perSessionKiB.rss.toFixed(2)} KiB (after GC)`)
    console.log(`heap snapshot diff: ${(result.snapshotBytesPerSession / 1024).toFixed(2)} KiB per session`)
    const line = (r: { name: string; perSession: number; bytesPerSession: number }) => console.log(`${String(r.bytesPerSession).padStart(7)} B  ${r.perSession.toFixed(2).padStart(6)} ×  ${r.name}`)
    console.log('by constructor:')
    result.byConstructor.forEach(line)
    console.log('by holder (class ← holder.edge):')
    result.byHolder.forEach(line)
  }
  await closeSessions(clients)
} finally {
  await proxy.close()
  await mosquitto.stop()
  await chain.close()
  if (!keep) rmSync(dir, { recursive: true, force: true })
}
