// Real clients (mosquitto_pub, MQTT.js) present credentials to a minimal loopback MQTT endpoint that decodes the
// CONNECT with mqtt-packet and verifies it with src/lib/auth: proves the encoders produce what real clients send
// and the enhanced-auth exchange works with a stock client library.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import type { IAuthPacket, IConnectPacket, Packet } from 'mqtt-packet'
import {
  credentialFromConnect,
  signCredential,
  toMosquittoArgs,
  toUserProperties,
  verifyCredential,
} from '../../../src/lib/auth/credential.js'
import {
  AUTH_CONTINUE,
  AUTH_METHOD,
  challengeFromConnect,
  connectAuthData,
  newNonce,
  signChallenge,
  verifyChallenge,
} from '../../../src/lib/auth/challenge.js'
import { type VerifyResult, connackCode } from '../../../src/lib/auth/result.js'

const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const deployment = { chainId: 31337n, contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3' }
const ADDRESS = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'
const hasMosquittoPub = spawnSync('mosquitto_pub', ['--help']).error === undefined

/** One-connection-at-a-time endpoint: authenticates CONNECT (or runs the AUTH exchange) and records results. */
class Endpoint {
  server: Server
  results: VerifyResult[] = []
  port = 0
  private waiters: ((r: VerifyResult) => void)[] = []

  constructor() {
    this.server = createServer((socket) => this.handle(socket))
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
  }

  next(): Promise<VerifyResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no CONNECT within 5 s')), 5000)
      this.waiters.push((r) => {
        clearTimeout(timer)
        resolve(r)
      })
    })
  }

  private record(r: VerifyResult): void {
    this.results.push(r)
    this.waiters.shift()?.(r)
  }

  private handle(socket: Socket): void {
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    let version = 4
    let challenge: { clientId: string; address: string; nonce: Buffer; issuedAtMs: number } | undefined
    const send = (packet: Packet) => socket.write(mqttPacket.generate(packet, { protocolVersion: version }))
    const finish = (r: VerifyResult) => {
      send({ cmd: 'connack', sessionPresent: false, ...(version === 5 ? { reasonCode: connackCode(r, 5) } : { returnCode: connackCode(r, version) }) })
      this.record(r)
    }
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') {
        const p = packet as IConnectPacket
        version = p.protocolVersion ?? 4
        const req = challengeFromConnect({
          clientId: p.clientId,
          authenticationMethod: p.properties?.authenticationMethod,
          authenticationData: p.properties?.authenticationData,
        })
        if ('kind' in req) {
          challenge = { clientId: req.clientId, address: req.address, nonce: newNonce(), issuedAtMs: Date.now() }
          send({ cmd: 'auth', reasonCode: AUTH_CONTINUE, properties: { authenticationMethod: AUTH_METHOD, authenticationData: challenge.nonce } })
          return
        }
        if (req.outcome !== 'missing') return finish(req)
        finish(
          verifyCredential(
            credentialFromConnect({ clientId: p.clientId, username: p.username, password: p.password, userProperties: p.properties?.userProperties }),
            deployment,
          ),
        )
      } else if (packet.cmd === 'auth' && challenge) {
        const state = challenge
        challenge = undefined // single use
        finish(verifyChallenge({ ...state, response: (packet as IAuthPacket).properties?.authenticationData }, deployment))
      } else if (packet.cmd === 'disconnect') {
        socket.end()
      }
    })
    parser.on('error', () => socket.destroy())
    socket.on('data', (d) => parser.parse(d))
    socket.on('error', () => undefined)
  }
}

describe('real clients', () => {
  const endpoint = new Endpoint()
  const expiresAt = Math.floor(Date.now() / 1000) + 3600
  before(() => endpoint.listen())
  after(() => new Promise<void>((resolve) => endpoint.server.close(() => resolve())))

  for (const version of ['mqttv5', 'mqttv311'] as const) {
    it(`mosquitto_pub with toMosquittoArgs (${version})`, { skip: !hasMosquittoPub && 'mosquitto_pub not installed' }, async () => {
      const clientId = `mosq-${version}`
      const cred = signCredential({ signer: KEY, ...deployment, clientId, expiresAt })
      const args = ['-h', '127.0.0.1', '-p', String(endpoint.port), '-t', 't', '-m', 'x', ...toMosquittoArgs(cred, { clientId, version })]
      const child = spawn('mosquitto_pub', args, { stdio: 'ignore' })
      const killer = setTimeout(() => child.kill(), 5000)
      try {
        const r = await endpoint.next()
        assert.equal(r.outcome, 'ok')
        assert.equal(r.ok && r.address, ADDRESS)
        assert.equal(r.ok && r.transport, version === 'mqttv5' ? 'user-properties' : 'username-password')
      } finally {
        clearTimeout(killer)
        child.kill()
      }
    })
  }

  it('mosquitto_pub with a credential for another client id is refused', { skip: !hasMosquittoPub && 'mosquitto_pub not installed' }, async () => {
    const cred = signCredential({ signer: KEY, ...deployment, clientId: 'sensor-1', expiresAt })
    const args = ['-h', '127.0.0.1', '-p', String(endpoint.port), '-t', 't', '-m', 'x', ...toMosquittoArgs(cred, { clientId: 'sensor-1' })]
    args[args.indexOf('-i') + 1] = 'sensor-2'
    const child = spawn('mosquitto_pub', args, { stdio: 'ignore' })
    const killer = setTimeout(() => child.kill(), 5000)
    try {
      assert.equal((await endpoint.next()).outcome, 'bad-signature')
    } finally {
      clearTimeout(killer)
      child.kill()
    }
  })

  it('MQTT.js v5 with user properties', async () => {
    const clientId = 'mqttjs-props'
    const cred = signCredential({ signer: KEY, ...deployment, clientId, expiresAt })
    const client = mqtt.connect({
      host: '127.0.0.1',
      port: endpoint.port,
      protocolVersion: 5,
      clientId,
      reconnectPeriod: 0,
      properties: { userProperties: toUserProperties(cred) },
    })
    try {
      const [r] = await Promise.all([endpoint.next(), new Promise((resolve) => client.once('connect', resolve))])
      assert.equal(r.outcome, 'ok')
    } finally {
      client.end(true)
    }
  })

  it('MQTT.js v5 enhanced authentication FLYTRAP-ETH-V1 (AUTH 0x18 exchange)', async () => {
    const clientId = 'mqttjs-auth'
    const client = mqtt.connect({
      host: '127.0.0.1',
      port: endpoint.port,
      protocolVersion: 5,
      clientId,
      reconnectPeriod: 0,
      properties: { authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(ADDRESS) },
    })
    client.handleAuth = (packet, callback) => {
      const nonce = packet.properties?.authenticationData as Buffer
      const response = signChallenge({ signer: KEY, ...deployment, clientId, nonce })
      callback(undefined, { cmd: 'auth', reasonCode: AUTH_CONTINUE, properties: { authenticationMethod: AUTH_METHOD, authenticationData: response } })
    }
    try {
      const [r] = await Promise.all([endpoint.next(), new Promise((resolve) => client.once('connect', resolve))])
      assert.equal(r.outcome, 'ok')
      assert.equal(r.ok && r.transport, 'enhanced-auth')
    } finally {
      client.end(true)
    }
  })
})
