/**
 * How the proxy ends a socket: a last packet (or a bare FIN), then a bounded wait for the peer to close.
 * No socket outlives its session by more than LINGER_MS.
 */
import type { Socket } from 'node:net'

/** How long an ended socket may wait for its peer to read the last packet and close, before it is destroyed. */
export const LINGER_MS = 1_000

/** A FIN with no last packet (3.1.1 has no reason code to send). */
export const FIN = Buffer.alloc(0)

/**
 * Ends `socket` after `last` and destroys it once the peer has closed its side too, or after LINGER_MS; reading
 * resumes (a paused socket never sees the peer's FIN). Without `last` the socket is destroyed at once.
 */
export function endSocket(socket: Socket, last: Buffer | undefined): void {
  if (socket.destroyed) return
  if (last === undefined) {
    socket.destroy()
    return
  }
  if (!socket.writableEnded) socket.end(last)
  socket.resume()
  const timer = setTimeout(() => socket.destroy(), LINGER_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
