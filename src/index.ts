/**
 * FlyTrap as a library (`import { startProxy } from 'flytrap'`): the same proxy, contract client, journal,
 * verification and dev stack the `flytrap` commands use. Only what a program embedding FlyTrap needs is
 * exported here; everything else stays internal and may change between releases.
 */
import { fileURLToPath } from 'node:url'

// The enforcing proxy
export { startProxy, type ProxyHandle, type ProxyAddress } from './lib/proxy/server.js'
export { DEFAULTS as PROXY_DEFAULTS, type ProxyOptions, type ListenerOptions, type UpstreamOptions, type BanOptions } from './lib/proxy/options.js'
export type { Decision, DecisionEvent, DecisionKind, DecisionReason } from './lib/policy/types.js'

// The accountability trail: journal, outbox-backed reporting and anchoring, verification, evidence
export { openAccountability, type Accountability, type AccountabilityOptions } from './lib/audit/accountability.js'
export { openJournal, JOURNAL_DEFAULTS, type Journal, type JournalOptions } from './lib/audit/journal.js'
export { verifyJournal, verifyEntry, fetchAnchors, type VerifyOptions, type VerifyReport, type PeriodCheck, type AnchorRecord } from './lib/audit/verify.js'
export { exportBundle, type ExportOptions, type ExportSummary } from './lib/audit/evidence/export.js'
export { checkBundle, type CheckOptions, type CheckResult } from './lib/audit/evidence/check.js'
export { buildReport, toCsv, toJson, type AuditReport, type ReportOptions, type ReportRow } from './lib/audit/report.js'

// The chain: the one contract client, deployment, the durable chain-write outbox
export { FlyTrapClient, connect, deployFlyTrap, type Deployment, type TopicInfo, type MemberInfo, type TxResult } from './lib/chain/client.js'
export { openOutbox, type Outbox, type OutboxOptions, type IntentSink } from './lib/chain/outbox.js'

// Device credentials (docs/protocol.md)
export {
  signCredential,
  verifyCredential,
  credentialFromConnect,
  toUserProperties,
  toUsernamePassword,
  toMosquittoArgs,
  signChallenge,
  verifyChallenge,
  AUTH_METHOD,
  type Credential,
  type Deployment as CredentialDeployment,
} from './lib/auth/index.js'

// The local stack of `flytrap dev`: anvil, a broker (mosquitto or the embedded aedes), the proxy
export { startDevStack, DEMO_TOPIC, DEV_KEYS, type DevStack, type DevStackOptions } from './lib/dev/dev-stack.js'
export { startAnvil, ANVIL_DEV_KEYS, type AnvilHandle, type AnvilOptions } from './lib/dev/anvil.js'
export { startMosquitto, findMosquitto, type MosquittoHandle, type MosquittoOptions } from './lib/dev/mosquitto.js'
export { startEmbeddedBroker, EMBEDDED_BROKER_VERSION, EMBEDDED_BROKER_LACKS, type EmbeddedBrokerHandle } from './lib/dev/embedded-broker.js'

// Shared ground
export { FlytrapError, ExitCode } from './lib/errors.js'
export { jsonLogger, silentLogger, type Logger, type Level } from './lib/log.js'

/** The built auditor UI (web/dist of this package), for serving it beside the REST API. */
export const WEB_DIST: string = fileURLToPath(new URL('../web/dist', import.meta.url))
