/**
 * MQTT 5 Topic Alias tables (§3.3.2.3.4). A PUBLISH may carry an empty topic and only an alias; the real
 * topic is whatever that alias was last bound to on the same connection in the same direction. Every
 * authorisation decision must use the resolved topic, never the empty string.
 *
 * Each connection needs two tables: client→broker (bounded by the Topic Alias Maximum the broker announced
 * in CONNACK) and broker→client (bounded by the maximum the client announced in CONNECT). Memory is bounded
 * by maximum × maximum packet size, so the proxy should keep the maxima it lets through modest.
 */
import { ProtocolError, ReasonCode } from './reason-codes.js'

export type AliasDirection = 'client-to-broker' | 'broker-to-client'

/** The part of a PUBLISH an alias table needs (a decoded PublishPacket fits). */
export interface AliasedPublish {
  topic: string
  properties?: { topicAlias?: number }
}

export class TopicAliasTable {
  /** Highest alias the receiver accepts; 0 means aliases are not allowed at all. */
  readonly maximum: number
  readonly direction: AliasDirection
  /** Made at the first binding: most connections never bind one, and a proxy holds tens of thousands of tables. */
  private bindings?: Map<number, string>

  constructor(maximum: number, direction: AliasDirection) {
    if (!Number.isInteger(maximum) || maximum < 0 || maximum > 0xffff) {
      throw new RangeError(`topic alias maximum must be an integer in 0..65535, got ${maximum}`)
    }
    this.maximum = maximum
    this.direction = direction
  }

  /**
   * Returns the topic this PUBLISH is really for, recording a new binding when it carries both a topic and
   * an alias. Record bindings even for publishes that are then refused: the sender's view of the table is
   * what later alias-only publishes mean.
   *
   * Throws ProtocolError: 0x94 for alias 0 or an alias above the maximum, 0x82 for an alias used before it
   * was bound or a PUBLISH with neither topic nor alias.
   */
  resolve(publish: AliasedPublish): string {
    const alias = publish.properties?.topicAlias
    if (alias === undefined) {
      if (publish.topic === '') throw this.error('PUBLISH has neither a topic name nor a topic alias', ReasonCode.ProtocolError)
      return publish.topic
    }
    if (!Number.isInteger(alias) || alias < 1 || alias > this.maximum) {
      throw this.error(`topic alias ${alias} is outside 1..${this.maximum}`, ReasonCode.TopicAliasInvalid)
    }
    if (publish.topic !== '') {
      this.bindings ??= new Map()
      this.bindings.set(alias, publish.topic)
      return publish.topic
    }
    const topic = this.bindings?.get(alias)
    if (topic === undefined) throw this.error(`topic alias ${alias} is used before it was bound`, ReasonCode.ProtocolError)
    return topic
  }

  /** The topic an alias is bound to, without changing anything. */
  lookup(alias: number): string | undefined {
    return this.bindings?.get(alias)
  }

  get size(): number {
    return this.bindings?.size ?? 0
  }

  private error(message: string, reasonCode: number): ProtocolError {
    return new ProtocolError(`${message} (${this.direction})`, reasonCode)
  }
}
