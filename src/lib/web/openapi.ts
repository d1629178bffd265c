/**
 * The OpenAPI 3.1 document of the audit API, generated from code so it is served at /openapi.json and
 * written to docs/openapi.json (a test keeps the two identical).
 */
import { EVENT_TYPES } from '../chain/events.js'
import { DEFAULT_LIMIT, MAX_LIMIT } from './api.js'

type Schema = Record<string, unknown>

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` })
const str = (description?: string, extra: Schema = {}): Schema => ({ type: 'string', ...(description ? { description } : {}), ...extra })
const int = (description?: string): Schema => ({ type: 'integer', ...(description ? { description } : {}) })
const bool = (description?: string): Schema => ({ type: 'boolean', ...(description ? { description } : {}) })
const nullable = (s: Schema): Schema => ({ ...s, type: [s.type as string, 'null'] })
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({ type: 'object', properties, required })
const arr = (items: Schema): Schema => ({ type: 'array', items })
const address = str('EIP-55 checksummed address', { pattern: '^0x[0-9a-fA-F]{40}$' })
const time = str('ISO 8601, UTC', { format: 'date-time' })
const position = { time, block: int('block number'), logIndex: int('log index in the block'), tx: str('transaction hash') }

const param = (name: string, description: string, schema: Schema = { type: 'string' }, where: 'query' | 'path' = 'query'): Schema => ({ name, in: where, required: where === 'path', description, schema })
const timeParams = [
  param('from', 'start (inclusive): ISO date or time, unix seconds, "now" or an age like 7d'),
  param('to', 'end (exclusive; a bare date means the end of that day): same forms as from'),
]
const pageParams = [
  param('limit', `page size, 1 to ${MAX_LIMIT}`, { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT }),
  param('cursor', 'nextCursor of the previous page'),
  param('order', 'desc = newest first', { type: 'string', enum: ['asc', 'desc'], default: 'desc' }),
]
const errors = {
  '400': { description: 'a malformed parameter', content: { 'application/json': { schema: ref('Error') } } },
}
const json = (schema: Schema, description = 'OK') => ({ description, content: { 'application/json': { schema } } })
const get = (summary: string, parameters: Schema[], response: Schema, more: Record<string, unknown> = {}) => ({
  get: { summary, parameters, responses: { '200': json(response), ...errors, ...more } },
})
const page = (key: string, item: string) => obj({ [key]: arr(ref(item)), nextCursor: nullable(str('pass as cursor for the next page; null on the last page')) })

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'FlyTrap audit API',
      version: '1.0.0',
      description:
        'Read-only view of one FlyTrap deployment, served by `flytrap audit serve` from an index of the contract’s events (kept in step with new blocks). Only events of this contract count, and reporter-only events (bans, summaries, reports, anchors) only from addresses that were registered reporters at the time. Lists are paginated with limit and cursor; bad parameters are 400 with an Error body.',
    },
    paths: {
      '/api/status': get('Index and chain status', [], ref('Status')),
      '/api/topics': get('Every registered topic', [], obj({ topics: arr(ref('Topic')) })),
      '/api/topics/{name}': get(
        'One topic: policy, members, change history (newest first, at most 500), sensitive-topic reports',
        [param('name', 'the topic name, URL-encoded (plant%2Fvalve)', { type: 'string' }, 'path')],
        obj({ topic: { oneOf: [ref('Topic'), { type: 'null' }], description: 'null when the topic was removed' }, members: arr(ref('Member')), history: arr(ref('Event')), historyTotal: int(), sensitiveReports: arr(ref('SensitiveReport')) }),
        { '404': json(ref('Error'), 'never registered in this deployment') },
      ),
      '/api/clients/{address}': get(
        'One client: its rights on every topic and its history (newest first, at most 500)',
        [param('address', 'the client address', address, 'path')],
        obj({
          address,
          rights: arr({ allOf: [obj({ topic: str() }), ref('Member')] }),
          history: arr(ref('Event')),
          historyTotal: int(),
          refusals: { ...arr(ref('ClientRefusal')), type: ['array', 'null'], description: 'its refused attempts in the proxy journal, newest first (at most 500); null when the server has no journal (--data-dir)' },
          refusalsTotal: int('refused attempts in the journal in all'),
        }),
      ),
      '/api/events': get(
        'Contract events, filtered and paginated',
        [...timeParams, param('topic', 'exact topic name'), param('client', 'events naming this address (client, actor, subject)', address), param('type', 'comma-separated event types', { type: 'string' }), ...pageParams],
        page('events', 'Event'),
      ),
      '/api/bans': get('Bans recorded by registered reporters', [...timeParams, param('client', 'only bans of this address', address), ...pageParams], page('bans', 'Ban')),
      '/api/denied': get('Denied-attempt summaries', [...timeParams, ...pageParams], page('denied', 'DeniedSummary')),
      '/api/sensitive': get('Sensitive-topic reports', [...timeParams, param('topic', 'exact topic name'), ...pageParams], page('sensitive', 'SensitiveReport')),
      '/api/anchors': get(
        'Journal anchors with their verification status against the local journal',
        [...timeParams, param('status', 'only anchors with this status', { type: 'string', enum: ['verified', 'mismatch', 'unchecked'] }), ...pageParams],
        page('anchors', 'Anchor'),
      ),
      '/api/traffic': get(
        'Traffic over time: allowed accesses, refusals by reason and sensitive deliveries per bucket, with totals by reason, refused topics and sensitive access per topic. From the proxy journal when the server has one (reasons are the proxy’s decision codes), else from the chain’s period summaries (refusals only as "connect" or "topic", accesses null)',
        [...timeParams, param('bucket', 'bucket size (default: hour for ranges up to 3 days, else day)', { type: 'string', enum: ['hour', 'day'] }), param('source', 'default: journal when the server has one, else chain', { type: 'string', enum: ['journal', 'chain'] })],
        ref('Traffic'),
        { '503': json(ref('Error'), 'unavailable: source=journal but the server has no journal (--data-dir)') },
      ),
      '/api/activity': get(
        'Event counts per type and refusals per topic (from denied summaries, at the start of their period) in time buckets',
        [...timeParams, param('bucket', 'bucket size (default: hour for ranges up to 3 days, else day)', { type: 'string', enum: ['hour', 'day'] })],
        obj({ from: time, to: time, bucket: str(undefined, { enum: ['hour', 'day'] }), buckets: arr(obj({ start: time, counts: { type: 'object', additionalProperties: { type: 'integer' } }, refusals: { type: 'object', additionalProperties: { type: 'integer' } } })) }),
      ),
      '/api/report': {
        get: {
          summary: 'The rows of `flytrap audit report` for a range, topic and client (chain events merged with the local journal)',
          parameters: [...timeParams, param('topic', 'a topic name or filter'), param('client', 'rows naming this address', address), param('format', 'json or csv (an attachment)', { type: 'string', enum: ['json', 'csv'], default: 'json' })],
          responses: {
            '200': { description: 'OK', content: { 'application/json': { schema: ref('Report') }, 'text/csv': { schema: { type: 'string' } } } },
            ...errors,
            '502': json(ref('Error'), 'the chain did not answer'),
          },
        },
      },
      '/api/evidence': {
        get: {
          summary:
            'A signed evidence bundle (docs/evidence.md, as `flytrap audit export` writes it) for a range and optionally one topic or one client, as a JSON attachment; the range is rounded out to whole anchored periods. Needs the server started with --data-dir and --key (the reporter key); check it with `flytrap audit check` or the UI page #/check',
          parameters: [...timeParams, param('topic', 'a topic name or filter (not with client)'), param('client', 'one client address (not with topic)', address)],
          responses: {
            '200': { description: 'the bundle (content-disposition: attachment)', content: { 'application/json': { schema: { type: 'object', description: 'an evidence bundle, format flytrap-evidence (docs/evidence.md)' } } } },
            ...errors,
            '404': json(ref('Error'), 'no_evidence: no anchored period overlaps the range'),
            '409': json(ref('Error'), 'journal_mismatch: a period of the journal no longer matches its anchor'),
            '502': json(ref('Error'), 'the chain did not answer'),
            '503': json(ref('Error'), 'unavailable: the server has no journal (--data-dir) or no reporter key (--key)'),
          },
        },
      },
      '/api/rpc': {
        post: {
          summary: 'A read-only JSON-RPC relay to the chain node this server reads (what the bundle check page uses): one call or a batch of up to 100; only eth_chainId, net_version, eth_blockNumber, eth_getBlockByNumber, eth_getBlockByHash, eth_getTransactionByHash, eth_getTransactionReceipt, eth_getLogs, eth_getCode and eth_call pass, any other method is answered with JSON-RPC error -32601',
          requestBody: { required: true, content: { 'application/json': { schema: { oneOf: [ref('RpcCall'), arr(ref('RpcCall'))] } } } },
          responses: { '200': json({ description: 'the JSON-RPC answer or answers, in order' }), '404': json(ref('Error'), 'no chain node configured'), '405': json(ref('Error'), 'not a POST'), '413': json(ref('Error'), 'body above 256 KiB') },
        },
      },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': json({ type: 'object' }) } } },
    },
    components: {
      schemas: {
        RpcCall: obj({ jsonrpc: str(undefined, { enum: ['2.0'] }), id: { oneOf: [{ type: 'integer' }, { type: 'string' }] }, method: str(), params: { type: 'array' } }, ['method']),
        Error: obj({ error: obj({ code: str('bad_request, not_found, no_evidence, method_not_allowed, journal_mismatch, chain_error, unavailable, internal'), message: str() }) }),
        Status: obj({
          chainId: int(),
          contract: address,
          deployBlock: int(),
          block: int('last block indexed'),
          synced: bool('the last poll reached the head'),
          evidence: bool('GET /api/evidence can build bundles (the server has the journal and the reporter key)'),
          explorer: nullable(str('block explorer base URL (audit serve --explorer): tx at <explorer>/tx/<hash>, block at <explorer>/block/<n>')),
          lastSyncAt: nullable(time),
          lastError: nullable(str()),
          topics: int(),
          members: int('current rights holders, summed over topics'),
          events: int(),
          bans: int(),
          anchors: int(),
          ignored: int('reporter-only events from unregistered addresses'),
          journal: nullable(str('local journal directory anchors are verified against')),
        }),
        Topic: obj({
          name: str(),
          id: str('keccak256 of the name'),
          owner: address,
          pubFeeEth: str('publish fee in ETH, decimal'),
          subFeeEth: str('subscribe fee in ETH, decimal'),
          sensitive: bool(),
          open: bool('anyone may join by paying'),
          periodSeconds: int('access one join buys; 0 = permanent'),
          countries: arr(str('ISO 3166-1 alpha-2; empty = anywhere')),
          members: int('clients with a right valid now'),
        }),
        Member: obj({
          client: address,
          publish: bool('may publish now'),
          subscribe: bool('may subscribe now'),
          pubExpiry: nullable(str('null = none, "never" = until revoked, else ISO time')),
          subExpiry: nullable(str('null = none, "never" = until revoked, else ISO time')),
          status: str('active: a right is valid now; expired: a right has lapsed; revoked: no right left', { enum: ['active', 'expired', 'revoked'] }),
        }),
        ClientRefusal: obj({
          time,
          seq: int('journal seq'),
          kind: str('connect, publish, subscribe or will'),
          reason: str('the proxy’s decision code: no-grant, expired, country, unregistered, bad-signature…'),
          topic: nullable(str()),
          clientId: nullable(str()),
          unverified: bool('the address was only claimed by a credential that did not verify'),
          count: int('identical decisions coalesced into the entry'),
        }),
        Traffic: obj({
          source: str(undefined, { enum: ['journal', 'chain'] }),
          from: time,
          to: time,
          bucket: str(undefined, { enum: ['hour', 'day'] }),
          buckets: arr(obj({ start: time, accesses: nullable(int('allowed connects, publishes and subscribes; null from the chain')), refusals: { type: 'object', additionalProperties: { type: 'integer' }, description: 'by reason code' }, sensitive: int('deliveries allowed on sensitive topics') })),
          refusalsByReason: { type: 'object', additionalProperties: { type: 'integer' } },
          refusedTopics: arr(obj({ topic: str('a topic, $connect, $other, or (registered false) the id of a topic the chain cannot name'), count: int(), registered: bool() })),
          sensitiveByTopic: arr(obj({ topic: str(), published: int(), delivered: int(), publishers: int(), receivers: int() })),
        }),
        Event: obj(
          {
            ...position,
            type: str('contract event name', { enum: [...EVENT_TYPES] }),
            topic: str(),
            client: address,
            actor: str('the transaction sender (policy changes) or the reporter'),
            reason: str('as on chain; a committed reason (`commit:0x…` on chain) as "[committed 0x…; not disclosed]", or its disclosed text marked as checked'),
            reasonCommitment: str('a committed reason: the commitment keccak256(0x07 || salt || utf8(reason))'),
            reasonDisclosed: bool('a committed reason whose text the server holds and which opens the commitment'),
            detail: str('one line summing up the other fields'),
          },
          ['time', 'block', 'logIndex', 'tx', 'type'],
        ),
        Ban: obj({ ...position, subject: str('32-byte subject'), client: nullable(address), until: time, reason: str(), reporter: address }),
        DeniedSummary: obj({ ...position, reporter: address, fromTime: time, toTime: time, total: int(), counts: arr(obj({ topic: str(), topicId: str(), count: int() })) }),
        SensitiveReport: obj({
          ...position,
          reporter: address,
          topic: str(),
          fromTime: time,
          toTime: time,
          form: str('committed: counts and the members root only (the default); clear: addresses listed (a deployment with publicSensitiveLists)', { enum: ['committed', 'clear'] }),
          publisherCount: int('distinct publishers'),
          published: int('allowed publishes in total'),
          receiverCount: int('distinct receivers'),
          received: int('allowed deliveries in total'),
          membersRoot: nullable(str('committed: Merkle root of the per-address records (docs/evidence.md); clear: null')),
          publishers: arr(obj({ client: address, count: int() })),
          receivers: arr(obj({ client: address, count: int() })),
        }),
        Anchor: obj({ ...position, firstSeq: int('first journal seq it pins'), root: str(), index: str('root of its scope index (0x00…00 for an empty period)'), count: int('journal entries (0: an empty period)'), chain: str('hash-chain value after its last entry'), fromTime: time, toTime: time, reporter: address, status: str('against the local journal', { enum: ['verified', 'mismatch', 'unchecked'] }) }),
        Report: {
          type: 'object',
          description: 'as `flytrap audit report --format json` (docs/audit-report.md)',
          properties: {
            version: { const: 1 },
            contract: address,
            chainId: int(),
            from: time,
            to: time,
            rows: arr(
              obj({
                time,
                block: nullable(int()),
                source: str(undefined, { enum: ['chain', 'journal'] }),
                event: str(),
                topic: nullable(str()),
                client: nullable(str()),
                actor: nullable(str()),
                reason: nullable(str()),
                detail: nullable(str()),
                txHash: nullable(str()),
                proven: nullable(bool()),
              }),
            ),
          },
          required: ['version', 'contract', 'chainId', 'from', 'to', 'rows'],
        },
      },
    },
  }
}
