/**
 * The proxy's accountability, wired in one place: the local hash-chained journal (every decision, no
 * payloads), the one durable outbox that owns every chain write (bans, anchors, sensitive reports, denied
 * summaries), and the period reporting that turns decisions into one transaction per period and kind.
 * Nothing here is on the packet path: decisions are queued and written in batches.
 */
import { join } from 'node:path'
import type { FlyTrapClient } from '../chain/client.js'
import type { Logger } from '../proxy/log.js'
import { openJournal, type Journal } from './journal.js'
import { openOutbox, type EnqueueResult, type IntentInput, type Outbox } from '../chain/outbox.js'
import { attachRecorder, type Recorder, type RecorderSource } from './recorder.js'
import { startReporting, type Reporting } from './reporting.js'

/** What the reporting needs of an outbox: the local one, or (in cluster workers) one that forwards over IPC. */
export interface IntentSink {
  enqueue(intent: IntentInput): Promise<EnqueueResult>
}

export interface AccountabilityOptions {
  /** Journal in <dataDir>/journal, outbox in <dataDir>/outbox. */
  dataDir: string
  /** Anchoring/reporting period (whole seconds). */
  periodMs: number
  /** The reporter's contract client (a signer); without it nothing is written on chain. */
  reporter?: FlyTrapClient
  /** Use this sink instead of opening an outbox (cluster workers other than 0). */
  sink?: IntentSink
  countryOf?: (ip: string) => string | null
  logger?: Logger
}

export interface Accountability {
  journal: Journal
  /** The outbox this process owns, if any (pass it to the proxy as its ban reporter). */
  outbox?: Outbox
  /** Starts recording a running proxy's decisions and reporting them per period. */
  attach(proxy: RecorderSource & { on(event: 'decision', l: (e: never) => void): unknown }): Promise<void>
  status(): { recorder?: ReturnType<Recorder['stats']>; outbox?: ReturnType<Outbox['status']>; reporting?: ReturnType<Reporting['status']> }
  stop(): Promise<void>
}

export async function openAccountability(o: AccountabilityOptions): Promise<Accountability> {
  const journal = await openJournal({ dataDir: o.dataDir, periodMs: o.periodMs, logger: o.logger })
  const outbox = o.reporter && !o.sink ? await openOutbox({ dir: join(o.dataDir, 'outbox'), client: o.reporter, logger: o.logger }) : undefined
  const sink: IntentSink | undefined = o.sink ?? outbox
  let recorder: Recorder | undefined
  let reporting: Reporting | undefined
  return {
    journal,
    outbox,
    attach: async (proxy) => {
      recorder = attachRecorder(proxy, journal, { countryOf: o.countryOf, logger: o.logger })
      if (sink) {
        const chain = o.reporter
        const anchorCursor = chain && outbox ? async () => chain.anchorCursor(await outbox.reporterAddress()) : undefined
        // One anchor sequence per reporter key, so one journal per key: cluster workers other than 0 (which
        // share worker 0's key) report their counts but cannot anchor their own journals.
        if (o.sink) o.logger?.warn('this worker\'s journal is not anchored: a reporter key anchors one journal (worker 0\'s); give each worker its own reporter key to anchor all of them')
        reporting = await startReporting({ outbox: sink, journal, anchor: !o.sink, anchorCursor, dir: join(o.dataDir, 'reporting'), periodMs: o.periodMs, logger: o.logger })
        const r = reporting
        proxy.on('decision', ((e: Parameters<Reporting['record']>[0]) => r.record(e)) as (e: never) => void)
      }
    },
    status: () => ({ recorder: recorder?.stats(), outbox: outbox?.status(), reporting: reporting?.status() }),
    stop: async () => {
      await reporting?.stop()
      await recorder?.stop()
      await journal.close()
      if (outbox) {
        await outbox.drain(5_000)
        await outbox.close()
      }
    },
  }
}
