/**
 * Signature-recovery throughput, one core, for each way FlyTrap could check a CONNECT credential.
 * Usage: npx tsx scripts/bench-verify.ts [--seconds 1] [--json]
 *
 * Every candidate recovers the same N distinct (message, signature) pairs and must return the right address,
 * so a fast-but-wrong backend fails loudly instead of winning. Optional candidates that are not installed are
 * reported as skipped. Run on an idle machine: other processes on the same cores skew the numbers.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { SigningKey, Wallet, computeAddress, getBytes, hashMessage, keccak256, verifyMessage } from 'ethers'
import { eip191Digest, recoverBackend, recoverMessageSigner, useRecoverBackend, nativeBackendError } from '../src/lib/auth/recover.js'
import { credentialFromConnect, signCredential, toUsernamePassword, verifyCredential } from '../src/lib/auth/credential.js'

const args = process.argv.slice(2)
const seconds = Number(args[args.indexOf('--seconds') + 1]) || 1
const asJson = args.includes('--json')

const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const wallet = new Wallet(KEY)
const ADDRESS = wallet.address.toLowerCase()
const deployment = { chainId: 31337n, contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3' }
const NOW = 1_800_000_000
const N = 256

const creds = Array.from({ length: N }, (_, i) =>
  signCredential({ signer: wallet, ...deployment, clientId: `sensor-${i}`, expiresAt: NOW + 3600 }),
)
const messages = creds.map((c, i) => `FlyTrap MQTT credential v1\nchain: 31337\ncontract: ${deployment.contract}\nclient: sensor-${i}\nexpires: ${c.expiresAt}`)
const sigHex = creds.map((c) => c.signature)
const sigBytes = sigHex.map((s) => getBytes(s))
const digests = messages.map((m) => getBytes(hashMessage(m)))
const connects = creds.map((c, i) => {
  const { username, password } = toUsernamePassword(c)
  return { clientId: `sensor-${i}`, username, password: Buffer.from(password) }
})

interface Row {
  name: string
  perSec?: number
  note?: string
}
const rows: Row[] = []

function run(name: string, fn: (i: number) => string | null, note?: string): void {
  for (let i = 0; i < N; i++) {
    const got = fn(i)
    if (got?.toLowerCase() !== ADDRESS) throw new Error(`${name}: wrong address ${got} for sample ${i}`)
  }
  // Warm-up then timed loop: batches of N, until `seconds` have passed.
  const warmEnd = performance.now() + Math.min(300, seconds * 300)
  while (performance.now() < warmEnd) for (let i = 0; i < 16; i++) fn(i)
  let count = 0
  const start = performance.now()
  const end = start + seconds * 1000
  let now = start
  while (now < end) {
    for (let i = 0; i < 32; i++) fn((count + i) % N)
    count += 32
    now = performance.now()
  }
  rows.push({ name, perSec: Math.round(count / ((now - start) / 1000)), note })
}

function skip(name: string, note: string): void {
  rows.push({ name, note })
}

const addrFromPub = (pub65: Uint8Array): string => '0x' + keccak256(pub65.subarray(1)).slice(-40)

// 1. ethers verifyMessage: hashes the message, recovers, checksums.
run('ethers verifyMessage(message, sig)', (i) => verifyMessage(messages[i] as string, sigHex[i] as string))

// 2. ethers SigningKey.recoverPublicKey on a precomputed digest.
run('ethers SigningKey.recoverPublicKey(digest)', (i) =>
  computeAddress(SigningKey.recoverPublicKey(digests[i] as Uint8Array, sigHex[i] as string)),
)

// 3. @noble/curves as ethers depends on it (not a direct dependency of FlyTrap: measured, not used directly).
interface NobleV1 {
  secp256k1: {
    Signature: {
      fromCompact(b: Uint8Array): {
        addRecoveryBit(r: number): { recoverPublicKey(h: Uint8Array): { toRawBytes(c: boolean): Uint8Array } }
      }
    }
  }
}
try {
  const spec = '@noble/curves/secp256k1'
  const noble = (await import(spec)) as NobleV1
  const entry = createRequire(import.meta.url).resolve('@noble/curves/secp256k1')
  const pkg = join(entry.slice(0, entry.lastIndexOf('/node_modules/@noble/curves/') + 27), 'package.json')
  const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version
  run(`@noble/curves ${version} recoverPublicKey(digest)`, (i) => {
    const b = sigBytes[i] as Uint8Array
    const sig = noble.secp256k1.Signature.fromCompact(b.subarray(0, 64)).addRecoveryBit((b[64] as number) - 27)
    return addrFromPub(sig.recoverPublicKey(digests[i] as Uint8Array).toRawBytes(false))
  }, 'via ethers')
} catch (err) {
  skip('@noble/curves (1.x API)', `skipped: ${(err as Error).message.split('\n')[0]}`)
}

// 4. Native libsecp256k1 (`secp256k1` package, prebuilt N-API binary, no install script needed).
interface NativeSecp {
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array
}
try {
  const require = createRequire(import.meta.url)
  const native = require('secp256k1/bindings') as NativeSecp
  const version = (require('secp256k1/package.json') as { version: string }).version
  run(`secp256k1 ${version} (native) ecdsaRecover(digest)`, (i) => {
    const b = sigBytes[i] as Uint8Array
    return addrFromPub(native.ecdsaRecover(b.subarray(0, 64), (b[64] as number) - 27, digests[i] as Uint8Array, false))
  })
} catch (err) {
  skip('secp256k1 (native)', `skipped: ${(err as Error).message.split('\n')[0]}`)
}

// 5. What FlyTrap ships: src/lib/auth/recover.ts (hash + parse + recover), both backends, and the whole
//    decode + verify path the proxy runs per CONNECT.
for (const backend of ['native', 'js'] as const) {
  try {
    useRecoverBackend(backend)
  } catch (err) {
    skip(`recoverMessageSigner [${backend}]`, `skipped: ${(err as Error).message}`)
    continue
  }
  run(`recoverMessageSigner(message) [${backend}]`, (i) => recoverMessageSigner(messages[i] as string, sigHex[i] as string))
  run(`credentialFromConnect+verifyCredential [${backend}]`, (i) => {
    const r = verifyCredential(credentialFromConnect(connects[i] as (typeof connects)[number]), { ...deployment, now: NOW })
    return r.ok ? r.address : null
  })
}
useRecoverBackend('auto')

// Hashing alone, for scale.
const hashRows: Row[] = []
{
  const before = rows.length
  run('eip191Digest(message) only (keccak)', (i) => {
    eip191Digest(messages[i] as string)
    return ADDRESS
  })
  hashRows.push(...rows.splice(before))
}
rows.push(...hashRows)

if (asJson) {
  console.log(JSON.stringify({ seconds, backend: recoverBackend(), nativeError: nativeBackendError() ?? null, rows }, null, 2))
} else {
  console.log(`per-core throughput, ${seconds} s per candidate, Node ${process.version}; default backend: ${recoverBackend()}`)
  const width = Math.max(...rows.map((r) => r.name.length))
  for (const r of rows) {
    console.log(`${r.name.padEnd(width)}  ${r.perSec === undefined ? '' : `${r.perSec.toLocaleString('en-US').padStart(8)} /s`}${r.note ? `  (${r.note})` : ''}`)
  }
}
