/** Credential formats devices use to prove their Ethereum key in MQTT CONNECT (docs/protocol.md). */
export * from './result.js'
export {
  type Deployment,
  type NormalizedDeployment,
  type CredentialSigner,
  normalizeDeployment,
  parseAddress,
  clientIdProblem,
  signerAddress,
} from './binding.js'
export * from './credential.js'
export * from './challenge.js'
export {
  type RecoverBackend,
  type ParsedSignature,
  eip191Digest,
  parseSignature,
  recoverAddress,
  recoverMessageSigner,
  recoverBackend,
  nativeBackendError,
  useRecoverBackend,
} from './recover.js'
