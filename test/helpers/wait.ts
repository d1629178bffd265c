/** Waiting in tests: poll a condition with a deadline, or let time pass for "nothing arrives" checks. */

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Resolves after `ms`; for "nothing arrives" checks, which need some time to pass. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
