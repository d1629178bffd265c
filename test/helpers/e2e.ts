/**
 * Index of the end-to-end helpers, kept so older imports keep working; new tests import the module by role:
 * stack.ts (anvil + mosquitto + proxy), mqtt.ts (MQTT.js clients), mqtt-raw.ts (the raw client), taps.ts,
 * cli.ts (the built binary), wait.ts.
 */
export * from './stack.js'
export * from './mqtt.js'
export * from './mqtt-raw.js'
export * from './taps.js'
export { spawnCli, startCliProxy, type CliProxy, type LongCli } from './cli.js'
export * from './wait.js'
