/**
 * A bare Node.js TCP relay (`client.pipe(upstream)`, both ways) as a second reference beside HAProxy: what a
 * userspace hop costs in Node itself, so the bench separates Node's cost from what FlyTrap adds on top.
 * Its own process (like the proxy), so it never shares an event loop with the load.
 */
import { spawn } from 'node:child_process'
import { stopChild } from '../dev/anvil.js'
import type { RelayHandle } from './haproxy.js'

const SOURCE = `
const net = require('node:net')
const [host, port] = [process.env.RELAY_HOST, Number(process.env.RELAY_PORT)]
const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ host, port, noDelay: true })
  client.pipe(upstream)
  upstream.pipe(client)
  const end = () => { client.destroy(); upstream.destroy() }
  for (const s of [client, upstream]) { s.on('error', end); s.on('close', end) }
})
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
`

export async function startNodeRelay(backend: { host: string; port: number }): Promise<RelayHandle> {
  const child = spawn(process.execPath, ['-e', SOURCE], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RELAY_HOST: backend.host, RELAY_PORT: String(backend.port) } })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('the Node relay did not start')), 10_000)
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      if (!out.includes('\n')) return
      clearTimeout(timer)
      resolve(Number(out.trim()))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the Node relay exited with ${code}`))
    })
  })
  child.removeAllListeners('exit')
  return { port, process: child, stop: () => stopChild(child, 2_000) }
}
