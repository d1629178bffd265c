/**
 * A throw-away certificate authority for dev TLS and tests, made with the `openssl` CLI: a CA, a server
 * certificate for 127.0.0.1, ::1 and localhost, and a client certificate. EC P-256 keys, unencrypted, short
 * lived. Never for production.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { FlytrapError } from '../errors.js'

export interface TestCA {
  dir: string
  /** Paths of the PEM files. */
  caCert: string
  caKey: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
  /** The same files read as PEM text (for Node tls / MQTT.js options). */
  pem: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string }
}

export interface TestCAOptions {
  /** Validity in days [default: 30]. */
  days?: number
  /** Common name of the client certificate [default: flytrap-test-client]. */
  clientName?: string
  /** The openssl binary [default: `openssl` on PATH]. */
  openssl?: string
}

export async function makeTestCA(dir: string, opts: TestCAOptions = {}): Promise<TestCA> {
  const out = resolve(dir)
  mkdirSync(out, { recursive: true, mode: 0o700 })
  const openssl = opts.openssl ?? 'openssl'
  const days = String(opts.days ?? 30)
  const f = (name: string) => join(out, name)
  const run = (args: string[]) => runOpenssl(openssl, args, out)
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  const serial = () => ['-set_serial', `0x${randomBytes(12).toString('hex')}`]

  await run(['req', '-x509', ...newKey, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', days, '-subj', '/CN=FlyTrap Test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])

  writeFileSync(f('server.ext'), ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost', ''].join('\n'))
  await run(['req', ...newKey, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost'])
  await run(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), ...serial(), '-days', days, '-extfile', f('server.ext'), '-out', f('server.crt')])

  writeFileSync(f('client.ext'), ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', ''].join('\n'))
  await run(['req', ...newKey, '-keyout', f('client.key'), '-out', f('client.csr'), '-subj', `/CN=${opts.clientName ?? 'flytrap-test-client'}`])
  await run(['x509', '-req', '-in', f('client.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), ...serial(), '-days', days, '-extfile', f('client.ext'), '-out', f('client.crt')])

  const read = (name: string) => readFileSync(f(name), 'utf8')
  return {
    dir: out,
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
    pem: { ca: read('ca.crt'), serverCert: read('server.crt'), serverKey: read('server.key'), clientCert: read('client.crt'), clientKey: read('client.key') },
  }
}

function runOpenssl(openssl: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile(openssl, args, { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (!err) return resolvePromise()
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new FlytrapError(`the openssl command is not available (${openssl})`, { exit: 'config', code: 'FLYTRAP_NO_OPENSSL', cause: err, suggestions: ['install it: `apt-get install openssl`'] }))
      }
      reject(new FlytrapError(`openssl ${args[0]} failed: ${String(stderr).trim() || err.message}`, { exit: 'failure', cause: err }))
    })
  })
}
