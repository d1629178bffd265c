import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { TopicAliasTable } from '../../../src/lib/mqtt/aliases.js'
import { decodePacket, type PublishPacket } from '../../../src/lib/mqtt/packets.js'
import { ProtocolError } from '../../../src/lib/mqtt/reason-codes.js'

const pub = (topic: string, topicAlias?: number) => (topicAlias === undefined ? { topic } : { topic, properties: { topicAlias } })

function protocolError(reasonCode: number, message: string) {
  return (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`)
    assert.equal(err.reasonCode, reasonCode)
    assert.equal(err.message, message)
    return true
  }
}

describe('TopicAliasTable', () => {
  test('a topic without alias is returned as is and binds nothing', () => {
    const t = new TopicAliasTable(10, 'client-to-broker')
    assert.equal(t.resolve(pub('a/b')), 'a/b')
    assert.equal(t.size, 0)
  })

  test('topic + alias binds; alias alone resolves to the bound topic', () => {
    const t = new TopicAliasTable(10, 'client-to-broker')
    assert.equal(t.resolve(pub('allowed/x', 1)), 'allowed/x')
    assert.equal(t.resolve(pub('', 1)), 'allowed/x')
    assert.equal(t.lookup(1), 'allowed/x')
  })

  test('rebinding replaces the topic: the alias means the latest binding', () => {
    const t = new TopicAliasTable(10, 'client-to-broker')
    t.resolve(pub('allowed/x', 1))
    assert.equal(t.resolve(pub('secret/y', 1)), 'secret/y')
    assert.equal(t.resolve(pub('', 1)), 'secret/y')
  })

  test('an alias used before it was bound is a protocol error (0x82)', () => {
    const t = new TopicAliasTable(10, 'client-to-broker')
    assert.throws(() => t.resolve(pub('', 3)), protocolError(0x82, 'topic alias 3 is used before it was bound (client-to-broker)'))
  })

  test('alias 0 is Topic Alias invalid (0x94)', () => {
    const t = new TopicAliasTable(10, 'client-to-broker')
    assert.throws(() => t.resolve(pub('a', 0)), protocolError(0x94, 'topic alias 0 is outside 1..10 (client-to-broker)'))
    assert.equal(t.size, 0, 'a refused binding is not recorded')
  })

  test('an alias above the maximum is Topic Alias invalid (0x94), bound or not', () => {
    const t = new TopicAliasTable(2, 'broker-to-client')
    assert.equal(t.resolve(pub('a', 2)), 'a')
    assert.throws(() => t.resolve(pub('a', 3)), protocolError(0x94, 'topic alias 3 is outside 1..2 (broker-to-client)'))
    assert.throws(() => t.resolve(pub('', 3)), protocolError(0x94, 'topic alias 3 is outside 1..2 (broker-to-client)'))
  })

  test('with maximum 0 every alias is invalid', () => {
    const t = new TopicAliasTable(0, 'client-to-broker')
    assert.throws(() => t.resolve(pub('a', 1)), protocolError(0x94, 'topic alias 1 is outside 1..0 (client-to-broker)'))
  })

  test('an empty topic without alias is a protocol error, never the empty topic', () => {
    const t = new TopicAliasTable(10, 'client-to-broker')
    assert.throws(() => t.resolve(pub('')), protocolError(0x82, 'PUBLISH has neither a topic name nor a topic alias (client-to-broker)'))
  })

  test('the two directions are separate tables', () => {
    const up = new TopicAliasTable(10, 'client-to-broker')
    const down = new TopicAliasTable(10, 'broker-to-client')
    up.resolve(pub('client/topic', 1))
    down.resolve(pub('broker/topic', 1))
    assert.equal(up.resolve(pub('', 1)), 'client/topic')
    assert.equal(down.resolve(pub('', 1)), 'broker/topic')
    const fresh = new TopicAliasTable(10, 'broker-to-client')
    up.resolve(pub('client/other', 2))
    assert.throws(() => fresh.resolve(pub('', 2)), ProtocolError)
  })

  test('works on decoded PUBLISH packets', () => {
    const t = new TopicAliasTable(5, 'client-to-broker')
    const bind = decodePacket(Buffer.from([0x30, 11, 0x00, 0x03, 0x61, 0x2f, 0x62, 3, 0x23, 0x00, 0x01, 0x68, 0x69]), 5) as PublishPacket
    const use = decodePacket(Buffer.from([0x30, 8, 0x00, 0x00, 3, 0x23, 0x00, 0x01, 0x68, 0x69]), 5) as PublishPacket
    assert.equal(use.topic, '')
    assert.equal(t.resolve(bind), 'a/b')
    assert.equal(t.resolve(use), 'a/b')
  })

  test('rejects an invalid maximum', () => {
    for (const max of [-1, 65_536, 1.5]) assert.throws(() => new TopicAliasTable(max, 'client-to-broker'), RangeError)
  })
})
