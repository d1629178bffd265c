/**
 * MQTT reason codes (MQTT 5 §2.4) and 3.1.1 CONNACK return codes, plus the typed errors that carry one.
 *
 * A protocol error ends exactly one connection; the error's `reasonCode` is what the proxy puts in the
 * DISCONNECT (MQTT 5) or uses to pick the CONNACK refusal. 3.1.1 has no DISCONNECT reason, so there the
 * proxy just closes the socket.
 */

/** MQTT 5 reason codes. Several values have a different name per packet type (0x00, 0x01, 0x02). */
export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  GrantedQoS0: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWillMessage: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const

export type ReasonCodeValue = (typeof ReasonCode)[keyof typeof ReasonCode]

/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3): the only refusal vocabulary a 3.1.1 client understands. */
export const ConnackReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const

export type ConnackReturnCodeValue = (typeof ConnackReturnCode)[keyof typeof ConnackReturnCode]

/** 3.1.1 SUBACK knows a single failure code (§3.9.3). */
export const SUBACK_FAILURE_V4 = 0x80

/** Base of every per-connection protocol failure; `reasonCode` is the MQTT 5 code to report. */
export class MqttProtocolError extends Error {
  readonly reasonCode: number

  constructor(message: string, reasonCode: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MqttProtocolError'
    this.reasonCode = reasonCode
  }
}

/** The bytes are not a well-formed MQTT packet (0x81). */
export class MalformedPacketError extends MqttProtocolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ReasonCode.MalformedPacket, options)
    this.name = 'MalformedPacketError'
  }
}

/** The declared packet size exceeds the configured maximum (0x95); raised before the body is buffered. */
export class PacketTooLargeError extends MqttProtocolError {
  readonly declaredSize: number
  readonly maxPacketSize: number

  constructor(declaredSize: number, maxPacketSize: number) {
    super(`packet of ${declaredSize} bytes exceeds the maximum packet size of ${maxPacketSize}`, ReasonCode.PacketTooLarge)
    this.name = 'PacketTooLargeError'
    this.declaredSize = declaredSize
    this.maxPacketSize = maxPacketSize
  }
}

/**
 * Well-formed bytes that break a protocol rule: 0x82 by default, or a more specific code such as
 * 0x94 (Topic Alias invalid) or 0x84 (unsupported protocol version).
 */
export class ProtocolError extends MqttProtocolError {
  constructor(message: string, reasonCode: number = ReasonCode.ProtocolError, options?: { cause?: unknown }) {
    super(message, reasonCode, options)
    this.name = 'ProtocolError'
  }
}
