/**
 * compose.yaml, without a Docker engine: parsed by PyYAML (Debian's python3-yaml; anchors and `<<` merges
 * resolved as compose resolves them), then checked against the parts of the Compose specification it uses
 * (top-level keys, service keys, depends_on conditions, port and volume syntax, healthchecks) and against
 * what the stack promises: state on named volumes (anvil's chain; the proxy's journal and outbox), an
 * `audit serve` service on the proxy's data, a healthcheck on every long-running service.
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { ON_CI, PYTHON } from '../helpers/python.js'

const run = promisify(execFile)
const FILE = new URL('../../compose.yaml', import.meta.url).pathname

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Service = Record<string, Json> & {
  image?: string
  build?: Json
  command?: Json
  entrypoint?: Json
  depends_on?: Record<string, { condition: string }> | string[]
  ports?: string[]
  volumes?: string[]
  healthcheck?: { test: string[]; interval?: string; retries?: number; start_period?: string; timeout?: string }
  restart?: string
  configs?: { source: string; target: string }[]
}

// The Compose specification's keys this project may use (a typo is an error; compose ignores nothing silently).
const TOP = new Set(['name', 'services', 'volumes', 'configs', 'networks', 'secrets'])
const SERVICE = new Set(['build', 'image', 'platform', 'environment', 'entrypoint', 'command', 'ports', 'volumes', 'depends_on', 'healthcheck', 'restart', 'stop_grace_period', 'configs', 'user', 'working_dir', 'networks', 'expose', 'secrets', 'init', 'read_only', 'tmpfs', 'env_file', 'labels', 'logging', 'ulimits', 'cap_drop', 'security_opt'])
const HEALTH = new Set(['test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable'])
const CONDITIONS = new Set(['service_started', 'service_healthy', 'service_completed_successfully'])
const RESTART = /^(no|always|on-failure(:\d+)?|unless-stopped)$/
const DURATION = /^(\d+(\.\d+)?(us|ms|s|m|h))+$/
const PORT = /^((\d{1,3}\.){3}\d{1,3}:)?\d{1,5}(:\d{1,5})?(\/(tcp|udp))?$/

let parsed: { name: string; services: Record<string, Service>; volumes?: Record<string, Json>; configs?: Record<string, Json> } & Record<string, Json>

describe('compose.yaml', () => {
  before(async () => {
    const script = 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))'
    try {
      const { stdout } = await run(PYTHON, ['-c', script, FILE])
      parsed = JSON.parse(stdout) as typeof parsed
    } catch (err) {
      if (!ON_CI && /No module named 'yaml'|ENOENT/.test(String((err as { stderr?: string }).stderr ?? err))) return
      throw err
    }
  })

  const need = (t: { skip(m: string): void }): boolean => {
    if (parsed) return true
    t.skip(`${PYTHON} with python3-yaml is needed to parse compose.yaml (.ci/run installs it)`)
    return false
  }

  test('follows the Compose specification for every key it uses', (t) => {
    if (!need(t)) return
    for (const k of Object.keys(parsed)) assert.ok(TOP.has(k) || k.startsWith('x-'), `top-level key ${k}`)
    const volumes = new Set(Object.keys(parsed.volumes ?? {}))
    const configs = new Set(Object.keys(parsed.configs ?? {}))
    for (const [name, s] of Object.entries(parsed.services)) {
      for (const k of Object.keys(s)) assert.ok(SERVICE.has(k), `services.${name}.${k} is not a Compose service key`)
      assert.ok(s.image || s.build, `services.${name} has an image or a build`)
      for (const k of ['command', 'entrypoint'] as const) if (s[k] !== undefined) assert.ok(Array.isArray(s[k]) && (s[k] as Json[]).every((w) => typeof w === 'string'), `services.${name}.${k} is a list of strings (exec form)`)
      const deps = s.depends_on ?? {}
      for (const [dep, v] of Object.entries(Array.isArray(deps) ? Object.fromEntries(deps.map((d) => [d, { condition: 'service_started' }])) : deps)) {
        assert.ok(parsed.services[dep], `services.${name} depends on unknown service ${dep}`)
        assert.ok(CONDITIONS.has(v.condition), `services.${name}.depends_on.${dep}.condition ${v.condition}`)
        if (v.condition === 'service_healthy') assert.ok(parsed.services[dep]!.healthcheck, `${name} waits for ${dep} to be healthy, so ${dep} needs a healthcheck`)
      }
      for (const p of s.ports ?? []) assert.match(String(p), PORT, `services.${name}.ports ${p}`)
      for (const v of s.volumes ?? []) {
        const [source, target, mode, ...rest] = String(v).split(':')
        assert.equal(rest.length, 0, `services.${name}.volumes ${v}`)
        assert.ok(target?.startsWith('/'), `services.${name}.volumes ${v}: the target is an absolute path`)
        assert.ok(mode === undefined || mode === 'ro' || mode === 'rw', `services.${name}.volumes ${v}: mode`)
        if (!source!.startsWith('.') && !source!.startsWith('/')) assert.ok(volumes.has(source!), `services.${name} mounts volume ${source}, which is not declared under volumes:`)
      }
      for (const c of s.configs ?? []) assert.ok(configs.has(c.source), `services.${name} uses config ${c.source}, which is not declared`)
      if (s.restart !== undefined) assert.match(String(s.restart), RESTART, `services.${name}.restart`)
      if (s.healthcheck) {
        for (const k of Object.keys(s.healthcheck)) assert.ok(HEALTH.has(k), `services.${name}.healthcheck.${k}`)
        assert.ok(Array.isArray(s.healthcheck.test) && ['CMD', 'CMD-SHELL', 'NONE'].includes(s.healthcheck.test[0]!), `services.${name}.healthcheck.test starts with CMD, CMD-SHELL or NONE`)
        for (const k of ['interval', 'timeout', 'start_period'] as const) if (s.healthcheck[k] !== undefined) assert.match(String(s.healthcheck[k]), DURATION, `services.${name}.healthcheck.${k}`)
        if (s.healthcheck.retries !== undefined) assert.ok(Number.isInteger(s.healthcheck.retries) && s.healthcheck.retries > 0)
      }
    }
  })

  test('every long-running service has a healthcheck; the one-shot setup does not restart', (t) => {
    if (!need(t)) return
    for (const [name, s] of Object.entries(parsed.services)) {
      if (s.restart === 'no') continue
      assert.ok(s.healthcheck, `services.${name} has a healthcheck`)
    }
    assert.equal(parsed.services.setup?.restart, 'no')
  })

  test('state lives on named volumes: the chain (anvil --state), the journal and outbox (proxy --data-dir)', (t) => {
    if (!need(t)) return
    const mountOf = (s: Service, path: string) => (s.volumes ?? []).map((v) => String(v).split(':')).find(([src, target]) => !src!.startsWith('/') && !src!.startsWith('.') && (path === target || path.startsWith(`${target}/`)))
    const flagValue = (words: Json | undefined, flag: string) => {
      const w = (words ?? []) as string[]
      const i = w.indexOf(flag)
      return i >= 0 ? w[i + 1] : undefined
    }
    const anvil = parsed.services.anvil!
    const state = flagValue(anvil.entrypoint, '--state')
    assert.ok(state, 'anvil runs with --state <file>')
    assert.ok(mountOf(anvil, state), `anvil's ${state} is on a named volume`)
    const proxy = parsed.services.proxy!
    const dataDir = flagValue(proxy.command, '--data-dir')
    assert.ok(dataDir, 'the proxy names its --data-dir')
    assert.ok(mountOf(proxy, dataDir), `the proxy's ${dataDir} is on a named volume`)
    assert.ok(!(proxy.command as string[]).includes('--no-journal'))
  })

  test('an audit serve service reads the proxy\'s journal from the same volume and publishes its UI on loopback', (t) => {
    if (!need(t)) return
    const entry = Object.entries(parsed.services).find(([, s]) => Array.isArray(s.command) && s.command[0] === 'audit' && s.command[1] === 'serve')
    assert.ok(entry, 'a service runs `audit serve`')
    const [name, audit] = entry
    const words = audit.command as string[]
    const proxyWords = parsed.services.proxy!.command as string[]
    assert.equal(words[words.indexOf('--data-dir') + 1], proxyWords[proxyWords.indexOf('--data-dir') + 1], `${name} verifies anchors against the proxy's journal`)
    const volume = (s: Service) => (s.volumes ?? []).map((v) => String(v).split(':')[0])
    assert.ok(volume(audit).some((v) => volume(parsed.services.proxy!).includes(v)), `${name} mounts the proxy's data volume`)
    assert.ok(words.includes('--host') && words[words.indexOf('--host') + 1] === '0.0.0.0', 'listens on all interfaces inside the container')
    assert.ok((audit.ports ?? []).some((p) => String(p).startsWith('127.0.0.1:')), 'published on loopback only')
  })

  test('the broker is reachable only through the proxy', (t) => {
    if (!need(t)) return
    assert.equal(parsed.services.mosquitto?.ports, undefined, 'mosquitto publishes no port')
    assert.ok((parsed.services.proxy!.command as string[]).includes('mqtt://mosquitto:1883'))
  })

  test('the file itself: every service named in the header comment exists', (t) => {
    if (!need(t)) return
    const header = readFileSync(FILE, 'utf8').split('\n').filter((l) => l.startsWith('#')).join('\n')
    assert.match(header, /audit serve/)
    for (const s of ['anvil', 'mosquitto', 'setup', 'proxy']) assert.ok(parsed.services[s], s)
  })
})
