import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { record, shellQuote } from '../../lib/cli/output.js'
import { DEFAULT_MAX_LIFETIME_SEC, LEGACY_WARNING, signCredential, toEnv, toMosquittoArgs, toUserProperties, toUsernamePassword, type Credential } from '../../lib/auth/index.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { parseDateSec } from '../../lib/parse/units.js'
import { usageError } from '../../lib/errors.js'

export interface DeviceSignResult {
  address: string
  clientId: string
  chainId: number
  contract: string
  /** Unix seconds; null for the legacy form. */
  expiresAt: number | null
  legacy: boolean
  signature: string
  userProperties: Record<string, string> | null
  username: string
  password: string
  mosquittoArgs: string[]
}

export default class DeviceSign extends ChainCommand<typeof DeviceSign> {
  static override description = `Precompute the CONNECT credential a device flashes: bound to this deployment (chain id + contract), the client id and an expiry`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --key 0x59c6…690d --client-id sensor-17 --expires 30d',
    'mosquitto_pub -h 127.0.0.1 -p 1883 $(<%= config.bin %> <%= command.id %> --key $KEY --client-id dev-1 --format mosquitto) -t demo/hello -m hi',
    '<%= config.bin %> <%= command.id %> --key device.json --client-id plc-3 --chain-id 1 --contract 0x5FbD…0aa3 --format env',
  ]
  static override flags = {
    'client-id': Flags.string({ description: 'MQTT client id the device connects with (bound into the signature)' }),
    expires: Flags.string({ description: 'expiry: a duration like 30d, an ISO date, or unix seconds', default: '30d' }),
    format: Flags.string({ description: 'print the credential as JSON, as mosquitto_pub/sub arguments (shell-quoted) or as shell variables [default: a table]', options: ['json', 'mosquitto', 'env'] }),
    'mqtt-version': Flags.string({ description: 'for --format mosquitto: MQTT 5 user properties or 3.1.1 username/password', options: ['5', '3.1.1'], default: '5' }),
    'chain-id': Flags.integer({ description: 'sign offline for this chain id (with --contract; no RPC needed)' }),
    legacy: Flags.boolean({ description: 'the 2020 static form: a signature over the address alone. REPLAYABLE FOREVER by anyone who sees it' }),
  }

  async run(): Promise<DeviceSignResult> {
    const clientId = await this.need(this.flags['client-id'], '--client-id', 'MQTT client id')
    const signer = await this.keyOnly()
    const offline = this.flags['chain-id'] !== undefined && this.flags.contract !== undefined
    const chainId = offline ? this.flags['chain-id']! : (await this.chain()).chainId
    const contract = parseAddress(offline ? this.flags.contract! : await this.contractAddress(), '--contract')
    const version = this.flags['mqtt-version'] === '5' ? 'mqttv5' : 'mqttv311'

    if (this.flags.legacy) {
      process.stderr.write(`warning: ${LEGACY_WARNING}\n`)
      const cred = signCredential({ signer: signer.privateKey, legacy: true })
      const { username, password } = toUsernamePassword(cred)
      const mosquittoArgs = toMosquittoArgs(cred, { clientId, version })
      const result: DeviceSignResult = { address: cred.address, clientId, chainId, contract, expiresAt: null, legacy: true, signature: cred.signature, userProperties: null, username, password, mosquittoArgs }
      this.emit(this.flags.format ?? 'json', mosquittoArgs, toEnv(cred, { clientId }), result)
      return result
    }

    const expiresAt = parseDateSec(this.flags.expires, '--expires', { relative: 'future' })
    const nowSec = Math.floor(Date.now() / 1000)
    if (expiresAt <= nowSec) throw usageError(`--expires ${this.flags.expires} is in the past`)
    // The proxy refuses a credential that lives longer than this (its --max-credential-lifetime default).
    if (expiresAt - nowSec > DEFAULT_MAX_LIFETIME_SEC) {
      throw usageError(`--expires ${this.flags.expires} is more than ${DEFAULT_MAX_LIFETIME_SEC / 86_400} days away: the proxy refuses credentials that live longer`, 'sign for at most 366d and sign again before it expires')
    }
    const cred: Credential = signCredential({ signer: signer.privateKey, chainId: BigInt(chainId), contract, clientId, expiresAt })
    const { username, password } = toUsernamePassword(cred)
    const mosquittoArgs = toMosquittoArgs(cred, { clientId, version })
    const result: DeviceSignResult = { address: cred.address, clientId, chainId, contract, expiresAt, legacy: false, signature: cred.signature, userProperties: toUserProperties(cred), username, password, mosquittoArgs }
    if (this.flags.format === undefined && !this.jsonEnabled()) {
      this.log(
        record([
          ['address', result.address],
          ['client id', clientId],
          ['deployment', `chain ${chainId}, contract ${contract}`],
          ['expires', new Date(expiresAt * 1000).toISOString()],
          ['MQTT 5 user properties', Object.entries(result.userProperties!).map(([k, v]) => `${k}=${v}`).join('\n')],
          ['MQTT 3.1.1 username', username],
          ['MQTT 3.1.1 password', password],
        ]),
      )
    } else this.emit(this.flags.format, mosquittoArgs, toEnv(cred, { clientId }), result)
    return result
  }

  /** mosquitto: one line of arguments for `$(...)`; env: shell-sourceable assignments. */
  private emit(format: string | undefined, args: string[], env: Record<string, string>, result: DeviceSignResult): void {
    if (this.jsonEnabled()) return
    // Shell-quoted, so that pasting the line (or eval) keeps a client id with a space or a quote one argument.
    if (format === 'mosquitto') this.log(args.map(shellQuote).join(' '))
    else if (format === 'env') this.log(Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join('\n'))
    else this.log(JSON.stringify(result, null, 2))
  }
}
