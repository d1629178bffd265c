import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Flags } from '@oclif/core'
import { Wallet } from 'ethers'
import { BaseCommand } from '../../lib/cli/base.js'
import { flytrapDir } from '../../lib/config/project-dir.js'
import { FlytrapError } from '../../lib/errors.js'

export interface DeviceKeygenResult {
  address: string
  keystore: string
}

export default class DeviceKeygen extends BaseCommand<typeof DeviceKeygen> {
  static override description = 'Create a device key, stored only as an encrypted JSON keystore (password from FLYTRAP_KEY_PASSWORD or a prompt)'
  static override examples = ['<%= config.bin %> <%= command.id %> --out sensor-17.json', 'FLYTRAP_KEY_PASSWORD=… <%= config.bin %> <%= command.id %> --json']
  static override flags = {
    out: Flags.string({ description: 'keystore file to write [default: .flytrap/keys/<address>.json]' }),
    force: Flags.boolean({ description: 'overwrite an existing file' }),
  }

  async run(): Promise<DeviceKeygenResult> {
    const password = process.env.FLYTRAP_KEY_PASSWORD ?? (await this.newPassword())
    const wallet = Wallet.createRandom()
    const file = resolve(this.flags.out ?? join(flytrapDir(), 'keys', `${wallet.address}.json`))
    if (existsSync(file) && !this.flags.force) throw new FlytrapError(`${file} exists`, { exit: 'usage', suggestions: ['choose another --out, or pass --force'] })
    const json = await this.spin('Encrypting key (scrypt)', () => wallet.encrypt(password))
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, json, { mode: 0o600 })
    this.say(`device address ${wallet.address}\nkeystore       ${file}`)
    return { address: wallet.address, keystore: file }
  }

  /** On a terminal a too-short or mistyped password asks again (three tries), as passwd and ssh-keygen do. */
  private async newPassword(): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const first = await this.askPassword('Keystore password (at least 8 characters)')
      if (first === undefined) {
        throw new FlytrapError('a keystore password is needed', { exit: 'config', suggestions: ['set FLYTRAP_KEY_PASSWORD, or run in a terminal to be asked'] })
      }
      const problem = first.length < 8 ? 'use a password of at least 8 characters' : (await this.askPassword('Repeat password')) !== first ? 'the passwords differ' : undefined
      if (problem === undefined) return first
      if (attempt === 3) throw new FlytrapError(problem, { exit: 'usage' })
      process.stderr.write(`${problem}: try again\n`)
    }
  }
}
