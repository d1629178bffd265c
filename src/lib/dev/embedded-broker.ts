/**
 * The broker `flytrap dev` runs in its own process when mosquitto is not installed: aedes (pure JavaScript,
 * from npm, pinned to the MQTT 5 beta) on a loopback port. Loaded lazily, so the library and every other
 * command work without it. What it lacks compared with mosquitto is said once, in EMBEDDED_BROKER_LACKS.
 */
import { timingSafeEqual } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { FlytrapError } from '../errors.js'

/** The exact aedes release this code is written and tested against (package.json pins the same). */
export const EMBEDDED_BROKER_VERSION = '2.0.0-beta.1'

/** What a developer gives up with the embedded broker, for `flytrap dev`'s output and the docs. */
export const EMBEDDED_BROKER_LACKS = [
  'shared subscriptions ($share/… is refused with 0x9E)',
  'persistence (sessions and retained messages are lost when dev stops)',
  'a TLS listener',
] as const

export interface EmbeddedBrokerOptions {
  /** Port to listen on [default: 0, any free one]. */
  port?: number
  /** Address to bind [default: 127.0.0.1]: only the proxy, on this machine, should reach it. */
  host?: string
  /** Admit only a client presenting this username and password (the proxy), as a locked mosquitto does. */
  locked?: { username: string; password: string }
}

export interface EmbeddedBrokerHandle {
  /** mqtt://host:port */
  url: string
  host: string
  port: number
  /** e.g. "aedes 2.0.0-beta.1" */
  name: string
  lacks: readonly string[]
  /** Closes the listener, every client connection and the broker. Safe to call twice. */
  stop(): Promise<void>
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions = {}): Promise<EmbeddedBrokerHandle> {
  const host = opts.host ?? '127.0.0.1'
  let Aedes: typeof import('aedes').Aedes
  try {
    ;({ Aedes } = await import('aedes'))
  } catch (err) {
    throw new FlytrapError('the embedded broker (the npm package aedes) is not installed', {
      exit: 'config',
      code: 'FLYTRAP_NO_BROKER',
      cause: err,
      suggestions: ['run `npm ci` in the flytrap directory (aedes is one of its dependencies)', 'or install mosquitto (`apt-get install mosquitto`), or pass --broker mqtt://host:port'],
    })
  }
  // heartbeatInterval: no $SYS heartbeat timer keeping the event loop awake between messages.
  const broker = await Aedes.createBroker({ heartbeatInterval: 3_600_000 })
  const locked = opts.locked
  if (locked) {
    const want = Buffer.from(locked.password)
    broker.authenticate = (_client, username, password, done) => {
      const ok = username === locked.username && password !== undefined && password.length === want.length && timingSafeEqual(password, want)
      // Bad user name or password (3.1.1 return code 4; aedes answers a v5 client with its v5 equivalent).
      done(ok ? null : Object.assign(new Error('not the proxy'), { returnCode: 4 }), ok)
    }
  }
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    broker.handle(socket)
  })
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    await new Promise<void>((r) => broker.close(() => r()))
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new FlytrapError(`port ${opts.port} on ${host} is already in use, so the embedded broker cannot listen there`, { exit: 'config', code: 'FLYTRAP_PORT_BUSY', cause: err })
    }
    throw err
  }
  const port = (server.address() as { port: number }).port
  let stopping: Promise<void> | undefined
  const stop = async () => {
    const closed = new Promise<void>((r) => server.close(() => r()))
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => broker.close(() => r()))
    await closed
  }
  return {
    url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    name: `aedes ${EMBEDDED_BROKER_VERSION}`,
    lacks: EMBEDDED_BROKER_LACKS,
    stop: () => (stopping ??= stop()),
  }
}
