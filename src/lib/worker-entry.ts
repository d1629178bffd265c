/**
 * Worker-thread entry points next to the calling module: `.js` once built, `.ts` when run from source.
 * Node does not apply the tsx loader to a worker's entry module, so from source the worker starts with a
 * one-line bootstrap that registers tsx and then imports the real entry.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads'

export function siblingWorker(callerUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const ext = callerUrl.slice(callerUrl.lastIndexOf('.'))
  const entry = new URL(`./${name}${ext}`, callerUrl)
  if (ext !== '.ts') return new Worker(entry, options)
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}) })`
  return new Worker(bootstrap, { ...options, eval: true })
}
