/**
 * Who was a registered reporter, and when: replayed from the contract's own ReporterAdded/ReporterRemoved
 * events. This is the one place that decides whether a reporter-only record (an anchor, a ban, a report)
 * counts: the policy sync, verification, reports, the auditor UI and the evidence checker all call
 * `registeredAt` / `admits` (or `registeredAtOr` for a history that starts after the deployment). Nothing in a
 * data directory (meta.json, config) can widen it.
 */
import { getLogsChunked, type FlyTrapClient } from './client.js'
import { decodeLogs, eventTopics, REPORTER_ONLY, type ChainEvent } from './events.js'

/** A position in the chain: block number and log index. */
export type ChainPosition = readonly [block: number, logIndex: number]

const before = (a: ChainPosition, b: ChainPosition) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])

export const REPORTER_EVENTS = ['ReporterAdded', 'ReporterRemoved'] as const

/** Replays ReporterAdded/ReporterRemoved: was `who` a registered reporter at a point of the chain? */
export class ReporterHistory {
  private readonly changes = new Map<string, { at: ChainPosition; added: boolean }[]>()

  add(who: string, at: ChainPosition, added: boolean): void {
    const k = who.toLowerCase()
    const list = this.changes.get(k) ?? []
    list.push({ at, added })
    list.sort((x, y) => (before(x.at, y.at) ? -1 : before(y.at, x.at) ? 1 : 0))
    this.changes.set(k, list)
  }

  /** Feeds the ReporterAdded/ReporterRemoved events among decoded events of the contract; others are skipped. */
  addEvents(events: readonly ChainEvent[]): this {
    for (const e of events) {
      if (e.name === 'ReporterAdded' || e.name === 'ReporterRemoved') this.add(e.args.reporter, [e.block, e.logIndex], e.name === 'ReporterAdded')
    }
    return this
  }

  /** Whether an event counts: a reporter-only one (events.ts REPORTER_ONLY) only when its reporter was registered just before it. */
  admits(e: ChainEvent): boolean {
    return !REPORTER_ONLY.has(e.name) || this.registeredAt((e.args as { reporter: string }).reporter, [e.block, e.logIndex])
  }

  /**
   * Registered just before the log at `at` was emitted: the record at that position counts only then. A block
   * number alone (`[block, Infinity]`) asks about the end of that block. Read from the deployment block, an
   * address with no change before `at` was never registered.
   */
  registeredAt(who: string, at: ChainPosition): boolean {
    return this.stateAt(who, at) ?? false
  }

  /** Like registeredAt, but null when no change precedes `at` (a history read from a later block cannot tell). */
  stateAt(who: string, at: ChainPosition): boolean | null {
    let state: boolean | null = null
    for (const c of this.changes.get(who.toLowerCase()) ?? []) {
      if (!before(c.at, at)) break
      state = c.added
    }
    return state
  }

  /**
   * registeredAt for a history read from a block after the deployment: where no change precedes `at`, the
   * state before the history began decides, which `before(who, block)` reads from the contract's own
   * isReporter view at that block (the caller may cache it per address: nothing changed it since).
   */
  async registeredAtOr(who: string, at: ChainPosition, before: (who: string, block: number) => Promise<boolean>): Promise<boolean> {
    return this.stateAt(who, at) ?? (await before(who, at[0]))
  }

  /** Every address that was ever registered (lower case). */
  everRegistered(): string[] {
    return [...this.changes.entries()].filter(([, l]) => l.some((c) => c.added)).map(([k]) => k)
  }
}

/** The reporter history of the client's contract from `fromBlock` (the deployment block) to `toBlock` (default: head). */
export async function loadReporterHistory(client: FlyTrapClient, opts: { fromBlock?: number; toBlock?: number; chunk?: number } = {}): Promise<ReporterHistory> {
  const logs = await getLogsChunked(client.provider, { address: client.address, topics: [eventTopics(REPORTER_EVENTS)] }, opts.fromBlock ?? 0, opts.chunk, opts.toBlock)
  return new ReporterHistory().addEvents(decodeLogs(client.address, logs))
}
