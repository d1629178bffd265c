/** Waiting in tests: poll a condition with a deadline, or let time pass for "nothing arrives" checks. */

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * `p`, or a rejection naming what was awaited once `ms` pass: a lost acknowledgement fails the test by name
 * instead of leaving it waiting forever (the runner's per-test timeout only says which test).
 */
export function within<T>(p: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Resolves after `ms`; for "nothing arrives" checks, which need some time to pass. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
