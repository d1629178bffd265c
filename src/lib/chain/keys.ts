/**
 * Loads the signing key from `--key`: a hex private key, or a path to an encrypted JSON keystore whose
 * password comes from FLYTRAP_KEY_PASSWORD or the caller's prompt. The key itself is never printed.
 */
import { readFileSync, existsSync } from 'node:fs'
import { Wallet, type HDNodeWallet, type Provider } from 'ethers'
import { FlytrapError } from '../errors.js'

export type PasswordSource = () => Promise<string | undefined>

export function isHexKey(value: string): boolean {
  return /^(0x)?[0-9a-fA-F]{64}$/.test(value.trim())
}

export async function loadWallet(key: string, opts: { provider?: Provider; password?: PasswordSource } = {}): Promise<Wallet | HDNodeWallet> {
  const value = key.trim()
  if (isHexKey(value)) {
    try {
      return new Wallet(value.startsWith('0x') ? value : `0x${value}`, opts.provider)
    } catch (err) {
      throw new FlytrapError('--key is not a valid secp256k1 private key', { exit: 'key', cause: err })
    }
  }
  if (!existsSync(value)) {
    throw new FlytrapError('--key is neither a hex private key nor a keystore file', {
      exit: 'key',
      suggestions: ['pass 0x followed by 64 hex digits, or the path of a keystore from `flytrap device keygen --out`'],
    })
  }
  const json = readFileSync(value, 'utf8')
  const password = process.env.FLYTRAP_KEY_PASSWORD ?? (await opts.password?.())
  if (password === undefined) {
    throw new FlytrapError(`keystore ${value} needs a password`, { exit: 'key', suggestions: ['set FLYTRAP_KEY_PASSWORD, or run in a terminal to be asked'] })
  }
  try {
    const wallet = await Wallet.fromEncryptedJson(json, password)
    return opts.provider ? wallet.connect(opts.provider) : wallet
  } catch (err) {
    const msg = err instanceof Error && /password/i.test(err.message) ? 'wrong password for keystore' : 'cannot read keystore'
    throw new FlytrapError(`${msg} ${value}`, { exit: 'key', cause: err })
  }
}
