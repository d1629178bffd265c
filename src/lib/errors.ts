/**
 * Errors a user can fix. Libraries throw these; the CLI base command turns them into a one-line message
 * with the matching exit code (documented in the README), never a stack trace.
 */
export const ExitCode = {
  /** Unexpected failure (a bug): the message still comes without a stack unless DEBUG is set. */
  failure: 1,
  /** Bad flag, argument or input value. */
  usage: 2,
  /** Missing configuration: no contract deployed/recorded, no key given. */
  config: 3,
  /** The chain (RPC endpoint) or another service could not be reached. */
  unreachable: 4,
  /** The contract rejected the transaction or call (revert). */
  reverted: 5,
  /** A key or keystore could not be used (wrong password, bad file). */
  key: 6,
  /** A verification failed (credential, journal, anchor). */
  verification: 7,
  /** A benchmark CI gate failed (`--threshold` or `--baseline`); the result is still printed. */
  threshold: 1,
} as const

export type ExitCodeName = keyof typeof ExitCode

export class FlytrapError extends Error {
  readonly exit: number
  readonly code: string
  readonly suggestions: string[]

  constructor(message: string, opts: { exit?: ExitCodeName; code?: string; suggestions?: string[]; cause?: unknown } = {}) {
    super(message, { cause: opts.cause })
    this.name = 'FlytrapError'
    this.exit = ExitCode[opts.exit ?? 'failure']
    this.code = opts.code ?? `FLYTRAP_${(opts.exit ?? 'failure').toUpperCase()}`
    this.suggestions = opts.suggestions ?? []
  }
}

export function usageError(message: string, suggestion?: string): FlytrapError {
  return new FlytrapError(message, { exit: 'usage', suggestions: suggestion ? [suggestion] : [] })
}
