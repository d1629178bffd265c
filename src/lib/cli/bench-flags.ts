/**
 * The CI-gate flags both `bench latency` and `bench scale` take (README "flytrap bench in CI"); what they
 * mean is computed in src/lib/bench/gate.ts, thresholds.ts and summary.ts.
 */
import { Flags } from '@oclif/core'

export const benchGateFlags = {
  threshold: Flags.string({ description: 'fail (exit 1) unless this holds, e.g. "connect.addedMs.p50<0.5" (repeatable; a metric name or a raw JSON path, op < <= > >= == !=, a number)', multiple: true }),
  baseline: Flags.string({ description: 'a saved --json result of the same command: fail when a metric regresses beyond --tolerance' }),
  tolerance: Flags.string({ description: 'allowed regression against --baseline, in the metric\'s bad direction', default: '10%' }),
  summary: Flags.string({ description: 'also write a CI summary: Markdown table or JUnit XML (to --summary-file, else stdout after the human output)', options: ['markdown', 'junit'] }),
  'summary-file': Flags.string({ description: 'where --summary goes (e.g. $GITHUB_STEP_SUMMARY); required with --json' }),
  profile: Flags.string({ description: 'preset sizes: ci = a run of about a minute on 2 cores, stack included (explicit flags override it)', options: ['ci'] }),
}

/** Flags the user gave on the command line (not filled in from defaults), from oclif's parse metadata. */
export function givenFlags(metadata: { flags: Record<string, { setFromDefault?: boolean } | undefined> }, flags: Record<string, unknown>): Set<string> {
  return new Set(Object.keys(flags).filter((k) => flags[k] !== undefined && !metadata.flags[k]?.setFromDefault))
}
