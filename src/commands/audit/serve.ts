import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { rawRpc } from '../../lib/chain/client.js'
import { deploymentFor } from '../../lib/config/project-dir.js'
import { readReasons } from '../../lib/config/reasons.js'
import { parseDuration } from '../../lib/parse/units.js'
import { FlytrapError } from '../../lib/errors.js'
import { journalDir } from '../../lib/audit/journal-files.js'
import { ChainIndex } from '../../lib/web/chain-index.js'
import { startWebServer } from '../../lib/web/http-server.js'

/** What --json prints, one line, once the server answers. */
export interface AuditServeResult {
  url: string
  contract: string
  chainId: number
}

/** web/dist of this package (the same from src/commands/audit and dist/commands/audit). */
const WEB_DIST = fileURLToPath(new URL('../../../web/dist', import.meta.url))

/** An http(s) URL without its trailing slash; anything else is a usage error. */
function explorerBase(raw: string): string {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new FlytrapError(`--explorer "${raw}" is not a URL`, { exit: 'usage', suggestions: ['pass a base URL such as https://etherscan.io'] })
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new FlytrapError(`--explorer "${raw}" is not an http(s) URL`, { exit: 'usage', suggestions: ['pass a base URL such as https://etherscan.io'] })
  return u.href.replace(/\/+$/, '')
}

export default class AuditServe extends ChainCommand<typeof AuditServe> {
  static override description = `Serve the auditors' web UI and a read-only REST API (documented at /openapi.json) for this deployment.
The server builds an index of the contract's events (only this contract's, reporter records only from
registered reporters) and keeps it in step by polling for new blocks; with --data-dir, anchors are verified
against the proxy's local journal. With --data-dir and --key (the reporter key the proxy anchors with),
GET /api/evidence and the UI's "Download evidence bundle" give signed evidence bundles (as \`audit export\`);
the UI's "Check a bundle" page checks one in the browser against this server's chain node.
Runs until Ctrl-C (SIGINT) or SIGTERM.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --port 8080 --data-dir .flytrap/proxy',
    '<%= config.bin %> <%= command.id %> --data-dir .flytrap/proxy --key $REPORTER_KEY',
    '<%= config.bin %> <%= command.id %> --host 0.0.0.0 --cors https://dashboard.example.org --poll-interval 5s',
  ]

  static override flags = {
    port: Flags.integer({ description: 'port to listen on (0 = any free port)', default: 8080, min: 0, max: 65535 }),
    host: Flags.string({ description: 'address to listen on', default: '127.0.0.1' }),
    'data-dir': Flags.string({ description: "the proxy's data directory: anchors are verified against its journal", env: 'FLYTRAP_DATA_DIR' }),
    cors: Flags.string({ description: 'an origin allowed to call the API from a browser (repeatable; * = any)', multiple: true }),
    'poll-interval': Flags.string({ description: 'how often to look for new blocks', default: '2s' }),
    explorer: Flags.string({ description: 'a block explorer base URL: the UI links transactions to <url>/tx/<hash> and blocks to <url>/block/<n>', env: 'FLYTRAP_EXPLORER' }),
    'from-block': Flags.integer({ description: "the contract's deployment block [default: the recorded deployment, else found on chain]", min: 0, env: 'FLYTRAP_FROM_BLOCK' }),
  }

  private printed = false

  async run(): Promise<AuditServeResult> {
    const f = this.flags
    const pollIntervalMs = parseDuration(f['poll-interval'], '--poll-interval', { min: 100, max: 3_600_000, bare: 's' })
    const explorer = f.explorer === undefined ? undefined : explorerBase(f.explorer)
    let dataDir: string | undefined
    if (f['data-dir']) {
      dataDir = resolve(f['data-dir'])
      if (!existsSync(journalDir(dataDir))) throw new FlytrapError(`no journal in ${journalDir(dataDir)}`, { exit: 'config', suggestions: ["pass the proxy's --data-dir, or leave it out"] })
    }
    // The reporter key signs evidence bundles; without it (or the journal) /api/evidence says what is missing.
    const signer = this.flags.key ? await this.keyOnly() : undefined
    const client = await this.client()
    const { chainId } = await this.chain()
    const recorded = deploymentFor(chainId)
    const deployBlock = f['from-block'] ?? (recorded && recorded.address.toLowerCase() === client.address.toLowerCase() ? recorded.block : undefined)

    const index = await this.spin('Indexing the contract’s events', (s) =>
      ChainIndex.create({ client, deployBlock, dataDir, pollIntervalMs, reasons: readReasons(), onProgress: (text) => (s.text = `Indexing the contract’s events: ${text}`) }),
    )
    const built = existsSync(join(WEB_DIST, 'index.html'))
    let server
    try {
      server = await startWebServer({ index, port: f.port, host: f.host, cors: f.cors, staticDir: WEB_DIST, rpc: rawRpc(client.provider), signer, explorer })
    } catch (err) {
      index.close()
      const code = (err as NodeJS.ErrnoException).code
      // Exit 3 like proxy start and dev: where to listen is configuration, not a typo in a value.
      if (code === 'EADDRINUSE') throw new FlytrapError(`port ${f.port} on ${f.host} is already in use, so the auditor UI cannot listen there`, { exit: 'config', code: 'FLYTRAP_PORT_BUSY', suggestions: [`choose another port with --port <port>, or stop what is using ${f.port}`] })
      if (code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new FlytrapError(`cannot listen on ${f.host}:${f.port} (${code})`, { exit: 'config', suggestions: ['choose another --port or --host'] })
      throw err
    }
    const result: AuditServeResult = { url: server.address, contract: client.address, chainId }
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify(result)}\n`)
      this.printed = true
    } else {
      const st = index.status()
      this.log(`Audit UI and API for ${client.address} (chain ${chainId}) at ${server.address}`)
      this.log(`  ${st.events} events, ${st.topics} topics, ${st.anchors} anchors indexed up to block ${st.block}; polling every ${f['poll-interval']}`)
      if (dataDir) this.log(`  anchors verified against ${journalDir(dataDir)}`)
      this.log(dataDir && signer ? `  evidence bundles signed by ${signer.address} at /api/evidence` : '  evidence bundles need --data-dir and --key (the reporter key): /api/evidence answers 503')
      if (!built) this.log('  the web UI is not built (npm run build:web): the API answers at /api and /openapi.json')
      this.log('  Ctrl-C to stop')
    }

    await new Promise<void>((done) => {
      const stop = () => {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        done()
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    index.close()
    await server.close()
    return result
  }

  /** The result was printed (one line) when the server became ready. */
  protected override logJson(json: unknown): void {
    if (!this.printed) super.logJson(json)
  }
}
