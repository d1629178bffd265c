/**
 * Explains a registration or transfer the contract refused under the namespace model (NamespaceClaimed,
 * NamespaceOccupied): which registrations it overlaps, and their owners. The refusal itself comes from the
 * contract's check, run by gas estimation before anything is signed, so nothing was sent or paid for.
 */
import { FlytrapError } from '../errors.js'
import { namespaceConflicts } from './namespace.js'
import type { Signer } from 'ethers'
import type { FlyTrapClient } from '../chain/client.js'

const NAMESPACE_ERRORS = new Set(['NamespaceClaimed', 'NamespaceOccupied'])
const SHOWN = 10

/** The address a writing client sends from. */
export function senderOf(client: FlyTrapClient): Promise<string> {
  return (client.contract.runner as Signer).getAddress()
}

export function isNamespaceRefusal(err: unknown): err is FlytrapError {
  return err instanceof FlytrapError && NAMESPACE_ERRORS.has(err.code)
}

/** A FlytrapError (exit 5, the contract's error code) naming the overlapping registrations; `err` when none are found. */
export async function explainNamespaceRefusal(client: FlyTrapClient, what: string, names: readonly string[], owner: string, err: FlytrapError): Promise<FlytrapError> {
  let conflicts
  try {
    conflicts = namespaceConflicts(names, owner, await client.topics())
  } catch {
    return err // the contract's own message still says which namespace and owner
  }
  const docs = 'see "Namespaces" in the README: a filter claims every topic under its levels before the first wildcard'
  if (conflicts.length === 0) {
    // The contract is more conservative than the listing: a path several owners used stays shared until it empties.
    return new FlytrapError(err.message, { exit: 'reverted', code: err.code, cause: err, suggestions: [docs, 'a path that several owners have used can be claimed by a filter only once it is empty'] })
  }
  const lines = conflicts.slice(0, SHOWN).map((c) => `  ${c.name}  (owner ${c.owner})`)
  if (conflicts.length > SHOWN) lines.push(`  … and ${conflicts.length - SHOWN} more`)
  const n = conflicts.length
  return new FlytrapError(`${what} refused: ${names.map((x) => `"${x}"`).join(', ')} would overlap ${n === 1 ? 'a registration' : `${n} registrations`} of another owner (first registered wins):\n${lines.join('\n')}`, {
    exit: 'reverted',
    code: err.code,
    cause: err,
    suggestions: ['choose a name outside those namespaces, or ask their owner to transfer them to you', docs],
  })
}
