/**
 * Durable files, written once for everyone who keeps state on disk (journal, outbox, period reporter, forget):
 * atomic replacement that survives a crash (temporary file, fsync, rename, fsync of the directory), a
 * directory fsync for new files, and a pid lock so that one process at a time writes a directory.
 * Shared ground: imports nothing of the project but the error type.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { open, rename, type FileHandle } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { FlytrapError } from '../errors.js'

/** fsyncs a directory, so that a file created or renamed in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined
  try {
    fh = await open(dir, 'r')
    await fh.sync()
  } catch {
    // not every platform can fsync a directory; the rename is still atomic
  } finally {
    await fh?.close()
  }
}

/**
 * Replaces `path` with `data` atomically: after a crash the file holds either the old or the new content,
 * never a mix, and once this resolves the new content survives a power cut.
 */
export async function replaceFile(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  await syncDir(dirname(path))
}

/** Locks taken by this process (a second open in the same process is a bug, not a stale lock). */
const heldHere = new Set<string>()

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the pid lock file `path` for this process and returns its release. A lock whose process is gone is
 * taken over; a live holder (or this process, twice) is refused with a FlytrapError naming `what`.
 */
export function takePidLock(path: string, what: string, suggestion: string): () => void {
  const file = resolve(path)
  if (heldHere.has(file)) throw new FlytrapError(`${what} is already open in this process (in use by process ${process.pid})`, { exit: 'config', suggestions: [suggestion] })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600)
      writeFileSync(fd, `${process.pid}\n`)
      closeSync(fd)
      heldHere.add(file)
      return () => {
        heldHere.delete(file)
        try {
          if (Number(readFileSync(file, 'utf8').trim()) === process.pid) unlinkSync(file)
        } catch {
          // already gone
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let pid = NaN
      try {
        pid = Number(readFileSync(file, 'utf8').trim())
      } catch {
        // vanished between the two calls: try again
      }
      // A recycled pid (ours, say, after a container restart) is not a holder unless this process took it.
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new FlytrapError(`${what} is in use by process ${pid}`, { exit: 'config', suggestions: [suggestion] })
      }
      try {
        unlinkSync(file)
      } catch {
        // taken over by someone else meanwhile: the next attempt says so
      }
    }
  }
  throw new FlytrapError(`cannot lock ${what}`, { exit: 'config', suggestions: [suggestion] })
}
