/** Validation of a topic name/filter typed by a user, as the contract will see it, so users get the error before paying gas. */
import { usageError } from '../errors.js'
import { validateTopicFilter } from './filter.js'

export function checkTopicName(name: string): string {
  if (name.startsWith('$share/')) throw usageError(`"${name}" is a shared subscription`, 'register the inner filter; $share/<group>/ is stripped before every decision')
  const problem = validateTopicFilter(name)
  if (problem) throw usageError(`"${name}" is not a valid MQTT topic or filter: ${problem}`, "'+' and '#' must fill a whole level and '#' must be last, e.g. sensors/+/temp or sensors/#")
  if (Buffer.byteLength(name, 'utf8') > 1024) throw usageError('topic names are limited to 1024 UTF-8 bytes on chain')
  return name
}
