/**
 * The proxy's accountability, wired in one place: the local hash-chained journal (every decision, no
 * payloads), the one durable outbox that owns every chain write (bans, anchors, sensitive reports, denied
 * summaries), and the period reporting that turns the journal's periods into one transaction per period
 * and kind. Nothing here blocks the packet path: `durable` (pass it to startProxy) journals each decision
 * at once and gives the proxy a promise to hold the decision's acknowledgement on.
 */
import { join } from 'node:path'
import type { FlyTrapClient } from '../chain/client.js'
import type { Logger } from '../log.js'
import { openJournal, type Journal } from './journal.js'
import { openOutbox, type IntentSink, type Outbox } from '../chain/outbox.js'
import type { DecisionEvent, ProxyEventSource } from '../policy/types.js'
import { createRecorder, type JournalDeliveries, type JournalSync, type Recorder } from './recorder.js'
import { startReporting, type Reporting } from './period-reporter.js'

/** What the reporting needs of an outbox: the local one, or (in cluster workers) one that forwards over IPC. */
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
  /** strict (default): nothing is acknowledged before it is durable; relaxed: only while the disk keeps up (≤ 50 ms). */
  sync?: JournalSync
  /** Which allowed deliveries are journaled: 'sensitive' (default) or 'all' (coalesced per receiver/topic/second). */
  deliveries?: JournalDeliveries
  logger?: Logger
}

export interface Accountability {
  journal: Journal
  /** The outbox this process owns, if any (pass it to the proxy as its ban reporter). */
  outbox?: Outbox
  /**
   * The proxy's `durable` option (startProxy): journals a decision and returns what to hold its
   * acknowledgement on. Decisions of a proxy started without it are recorded from its events instead.
   */
  durable(e: DecisionEvent): Promise<unknown> | null
  /** Starts recording a running proxy's session ends and bans, and reporting the journal's periods. */
  attach(proxy: ProxyEventSource & { readonly journaled?: boolean }): Promise<void>
  status(): { recorder?: ReturnType<Recorder['stats']>; outbox?: ReturnType<Outbox['status']>; reporting?: ReturnType<Reporting['status']> }
  stop(): Promise<void>
}

export async function openAccountability(o: AccountabilityOptions): Promise<Accountability> {
  const journal = await openJournal({ dataDir: o.dataDir, periodMs: o.periodMs, logger: o.logger })
  const outbox = o.reporter && !o.sink ? await openOutbox({ dir: join(o.dataDir, 'outbox'), client: o.reporter, logger: o.logger }) : undefined
  const sink: IntentSink | undefined = o.sink ?? outbox
  const recorder: Recorder = createRecorder(journal, { countryOf: o.countryOf, logger: o.logger, sync: o.sync, deliveries: o.deliveries })
  let reporting: Reporting | undefined
  return {
    journal,
    outbox,
    durable: (e) => recorder.decision(e),
    attach: async (proxy) => {
      recorder.listen(proxy, { decisions: proxy.journaled !== true })
      if (sink) {
        const chain = o.reporter
        const anchorCursor = chain && outbox ? async () => chain.anchorCursor(await outbox.reporterAddress()) : undefined
        // One anchor sequence per reporter key, so one journal per key: cluster workers other than 0 (which
        // share worker 0's key) report their counts but cannot anchor their own journals.
        if (o.sink) o.logger?.warn('this worker\'s journal is not anchored: a reporter key anchors one journal (worker 0\'s); give each worker its own reporter key to anchor all of them')
        const publicSensitiveLists = chain ? () => chain.publicSensitiveLists() : undefined
        reporting = await startReporting({ outbox: sink, journal, anchor: !o.sink, anchorCursor, publicSensitiveLists, dir: join(o.dataDir, 'reporting'), periodMs: o.periodMs, logger: o.logger })
      }
    },
    status: () => ({ recorder: recorder.stats(), outbox: outbox?.status(), reporting: reporting?.status() }),
    stop: async () => {
      await reporting?.stop()
      await recorder.stop()
      await journal.close()
      if (outbox) {
        await outbox.drain(5_000)
        await outbox.close()
      }
    },
  }
}
