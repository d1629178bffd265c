/**
 * Network taps put between two parties on loopback: a recording TCP tap (what the proxy sent upstream) and
 * a PROXY-protocol relay that stands in for a load balancer.
 */
import net from 'node:net'
import { encodeProxyV1, encodeProxyV2 } from '../../src/lib/proxy/proxy-protocol.js'

/** One connection through a tap: what the client side sent towards the broker. */
export interface TapConnection {
  toBroker: Buffer[]
  bytes(): Buffer
}

/**
 * A recording TCP tap: listens on a free loopback port, forwards every connection to `target` (mqtt://host:port)
 * and keeps a copy of the bytes sent towards the target. Put it between the proxy and mosquitto.
 */
export async function recordingTcpTap(target: string): Promise<{ url: string; port: number; connections: TapConnection[]; close(): Promise<void> }> {
  const t = new URL(target)
  const connections: TapConnection[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((inbound) => {
    const conn: TapConnection = { toBroker: [], bytes: () => Buffer.concat(conn.toBroker) }
    connections.push(conn)
    const outbound = net.connect({ host: t.hostname, port: Number(t.port) })
    sockets.add(inbound).add(outbound)
    inbound.on('data', (chunk: Buffer) => {
      conn.toBroker.push(Buffer.from(chunk))
      outbound.write(chunk)
    })
    outbound.on('data', (chunk: Buffer) => inbound.write(chunk))
    const done = () => {
      inbound.destroy()
      outbound.destroy()
      sockets.delete(inbound)
      sockets.delete(outbound)
    }
    for (const s of [inbound, outbound]) {
      s.on('error', done)
      s.on('close', done)
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

export interface ProxyProtocolRelay {
  port: number
  url: string
  /** Connections accepted so far. */
  connections: number
  close(): Promise<void>
}

/**
 * A local TCP relay standing in for a load balancer: every connection to it is forwarded to `target` behind
 * a PROXY protocol header naming `source` as the client address (v1 text or v2 binary).
 */
export async function proxyProtocolRelay(target: { host?: string; port: number }, source: string, version: 1 | 2 = 1): Promise<ProxyProtocolRelay> {
  const sockets = new Set<net.Socket>()
  const relay: ProxyProtocolRelay = { port: 0, url: '', connections: 0, close: async () => {} }
  const server = net.createServer((down) => {
    relay.connections++
    const up = net.connect({ host: target.host ?? '127.0.0.1', port: target.port })
    sockets.add(down)
    sockets.add(up)
    const src = { address: source, port: down.remotePort ?? 40_000 }
    const dst = { address: target.host ?? '127.0.0.1', port: target.port }
    up.write(version === 1 ? encodeProxyV1(src, dst) : encodeProxyV2(src, dst))
    down.pipe(up)
    up.pipe(down)
    // Like a load balancer: a FIN is passed on after the data before it (pipe ends the other side); errors reset both.
    const kill = () => {
      down.destroy()
      up.destroy()
    }
    down.on('error', kill)
    up.on('error', kill)
    for (const [a, b] of [[down, up], [up, down]] as const) {
      a.on('close', () => {
        sockets.delete(a)
        if (!b.destroyed) b.end()
        setTimeout(() => b.destroy(), 1_000).unref()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  relay.port = (server.address() as { port: number }).port
  relay.url = `mqtt://127.0.0.1:${relay.port}`
  relay.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  return relay
}
