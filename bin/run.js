#!/usr/bin/env node
// Production entry point: runs the compiled commands in dist/ (built by `npm run build`).
import { existsSync } from 'node:fs'
import { execute } from '@oclif/core'

if (!existsSync(new URL('../dist/commands', import.meta.url))) {
  console.error('flytrap is not built yet: run `npm run build` (or `npm ci`, which builds) in ' + new URL('..', import.meta.url).pathname)
  process.exit(1)
}
await execute({ dir: import.meta.url })
