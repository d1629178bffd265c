/**
 * Worker thread: verifies batches of CONNECT credentials (signature recovery is the CPU cost of a CONNECT),
 * so the proxy's main thread keeps relaying packets while new devices authenticate.
 */
import { parentPort } from 'node:worker_threads'
import { authenticateFields, type AuthConfig, type CredentialFields } from './authenticate.js'

interface Batch {
  id: number
  cfg: AuthConfig
  items: CredentialFields[]
}

// Ready once the verification code is loaded: until then the pool verifies inline.
parentPort!.postMessage({ ready: true })

parentPort!.on('message', (batch: Batch) => {
  const results = batch.items.map((fields) => authenticateFields(fields, batch.cfg))
  parentPort!.postMessage({ id: batch.id, results })
})
