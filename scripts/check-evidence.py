#!/usr/bin/python3
"""An independent checker of FlyTrap evidence bundles (format `flytrap-evidence`, version 1).

Written from docs/evidence.md (and docs/audit.md for the journal's hashes) alone, not from the TypeScript
code, to prove that the recipe there is complete: Debian's python3 and python3-pycryptodome (keccak256 from
`Cryptodome.Hash.keccak`); everything else, secp256k1 public-key recovery and ABI decoding included, is
written here in plain Python.

    /usr/bin/python3 scripts/check-evidence.py <bundle.json> --rpc <url> [--json]
    /usr/bin/python3 scripts/check-evidence.py <bundle.json> --offline [--json]

Exit 0 when every step holds (offline: every offline step), 7 naming the first failing record, 4 when the
node cannot be reached, 2 for bad usage or an unreadable file. Member records, reason openings and grants
(docs/evidence.md §3.7–3.9, §4.6, steps 4b–4d) are checked offline; each cited `ref.time` against its block's
timestamp with --rpc. A committed reason without an opening is a warning ("committed, not disclosed").
"""
import json
import re
import sys
import urllib.request
from datetime import datetime, timezone

try:
    from Cryptodome.Hash import keccak as _keccak
except ImportError:  # pragma: no cover
    sys.stderr.write("Error: needs Debian's python3-pycryptodome (module Cryptodome)\n")
    sys.exit(2)


def keccak(*parts):
    h = _keccak.new(digest_bits=256)
    for p in parts:
        h.update(p)
    return h.digest()


def hx(b):
    return '0x' + b.hex()


def unhex(s):
    return bytes.fromhex(s[2:])


ZERO32 = b'\x00' * 32

# ---------------------------------------------------------------- §2 encodings


def canonical_json(v):
    return json.dumps(v, sort_keys=True, separators=(',', ':'), ensure_ascii=False)


def utf8(s):
    return s.encode('utf-8')


def u64be(n):
    return n.to_bytes(8, 'big')


def iso_s(sec):
    return datetime.fromtimestamp(sec, timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# ---------------------------------------------------------------- §4 hashes and proofs


def entry_leaf(salt_hex, entry):
    return keccak(b'\x00', unhex(salt_hex), utf8(canonical_json(entry)))


def node(left, right):
    return keccak(b'\x01', left, right)


def walk(leaf, index, count, siblings, root):
    """§4.2: True iff the path of `leaf` at `index` in a tree of `count` leaves leads to `root`."""
    if not (0 <= index < count):
        return False
    h, i, n, s = leaf, index, count, 0
    while n > 1:
        if i % 2 == 1:
            if s >= len(siblings):
                return False
            h = node(unhex(siblings[s]), h)
            s += 1
        elif i + 1 < n:
            if s >= len(siblings):
                return False
            h = node(h, unhex(siblings[s]))
            s += 1
        i //= 2
        n = (n + 1) // 2
    return s == len(siblings) and h == root


def key_hash(k):
    return keccak(b'\x03', utf8(k))


def seqs_digest(seqs):
    return keccak(*[u64be(s) for s in seqs])


def index_leaf_of(kh, sd):
    return keccak(b'\x02', kh, sd)


def membership_holds(op, root):
    seqs = op['seqs']
    if not seqs or any(b <= a for a, b in zip(seqs, seqs[1:])) or root == ZERO32:
        return False
    return walk(index_leaf_of(key_hash(op['key']), seqs_digest(seqs)), op['index'], op['count'], op['siblings'], root)


def absence_holds(op, root):
    h = int.from_bytes(key_hash(op['key']), 'big')
    left, right = op['left'], op['right']
    if left is None and right is None:
        return root == ZERO32
    for nb in (left, right):
        if nb is not None and not walk(index_leaf_of(unhex(nb['keyHash']), unhex(nb['seqsDigest'])), nb['index'], nb['count'], nb['siblings'], root):
            return False
    kh = lambda nb: int(nb['keyHash'], 16)
    if left is not None and right is not None:
        return left['count'] == right['count'] and right['index'] == left['index'] + 1 and kh(left) < h < kh(right)
    if right is not None:
        return right['index'] == 0 and h < kh(right)
    return left['index'] == left['count'] - 1 and kh(left) < h


# ---------------------------------------------------------------- §4.4 / §4.5 keys and topics


def literal_levels(levels):
    out = []
    for lv in levels:
        if lv in ('+', '#'):
            break
        out.append(lv)
    return out


def has_wild(levels):
    return any(lv in ('+', '#') for lv in levels)


def scope_keys(entry):
    keys = []
    if entry.get('address') is not None:
        keys.append('client:' + entry['address'].lower())
    t = entry.get('topic')
    if t is not None:
        levels = t.split('/')
        lit = literal_levels(levels)
        keys.append('topic:' + t)
        for k in range(1, min(len(lit), len(levels) - 1) + 1):
            keys.append('under:' + ''.join(l + '/' for l in lit[:k]))
        if has_wild(levels):
            keys.append('wild:' + ''.join(l + '/' for l in lit))
    return keys


def keys_to_open(scope):
    """§4.4: the keys a scope opens, or None when it discloses every entry of every period."""
    if scope['client'] is not None:
        return ['client:' + scope['client']]
    x = scope['topic']
    if x is None:
        return None
    levels = x.split('/')
    lit = literal_levels(levels)
    k = len(lit)
    wild = has_wild(levels)
    if wild and k == 0:
        return None
    keys = ['topic:' + x]
    if wild:
        keys.append('under:' + ''.join(l + '/' for l in lit))
        if levels[k] == '#':
            keys.append('topic:' + '/'.join(lit))
    keys.append('wild:')
    for j in range(1, k + 1):
        keys.append('wild:' + ''.join(l + '/' for l in lit[:j]))
    return keys


def overlap(a, b):
    """§4.5: some topic name matches both strings (`+`/`#` as wildcards on either side)."""
    la, lb = a.split('/'), b.split('/')
    i = 0
    while True:
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x == '#' or y == '#':
            other, other_levels = (y, lb) if x == '#' else (x, la)
            if i == 0 and other is not None and other not in ('+', '#') and other.startswith('$'):
                return False
            if i == 1 and other is None and other_levels[0] == '':
                return False
            return True
        if x is None and y is None:
            return True
        if x is None or y is None:
            return False
        if x == '+' or y == '+':
            other = y if x == '+' else x
            if i == 0 and other != '+' and other.startswith('$'):
                return False
        elif x != y:
            return False
        i += 1


def in_scope(entry, scope):
    if scope['client'] is not None:
        return entry.get('address') is not None and entry['address'].lower() == scope['client'].lower()
    if scope['topic'] is not None:
        return entry.get('topic') is not None and overlap(entry['topic'], scope['topic'])
    return True


# ---------------------------------------------------------------- secp256k1 recovery, §5 signatures

P = 2 ** 256 - 2 ** 32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)


def ec_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        lam = 3 * x1 * x1 * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return (x3, (lam * (x1 - x3) - y1) % P)


def ec_mul(k, pt):
    acc = None
    while k:
        if k & 1:
            acc = ec_add(acc, pt)
        pt = ec_add(pt, pt)
        k >>= 1
    return acc


def recover_address(msg_hash, sig):
    """The address whose key made the 65-byte r||s||v signature over the 32-byte hash, or None."""
    if len(sig) != 65:
        return None
    r, s, v = int.from_bytes(sig[:32], 'big'), int.from_bytes(sig[32:64], 'big'), sig[64]
    if v not in (27, 28) or not (1 <= r < N) or not (1 <= s < N) or r >= P:
        return None
    y2 = (pow(r, 3, P) + 7) % P
    y = pow(y2, (P + 1) // 4, P)
    if y * y % P != y2:
        return None
    if y % 2 != v - 27:
        y = P - y
    e = int.from_bytes(msg_hash, 'big') % N
    rinv = pow(r, -1, N)
    q = ec_add(ec_mul(s * rinv % N, (r, y)), ec_mul((-e * rinv) % N, G))
    if q is None:
        return None
    pub = q[0].to_bytes(32, 'big') + q[1].to_bytes(32, 'big')
    return hx(keccak(pub)[12:])


def personal_recover(digest, sig_hex):
    return recover_address(keccak(b'\x19Ethereum Signed Message:\n32', digest), unhex(sig_hex))


def bundle_digest(bundle):
    body = {k: v for k, v in bundle.items() if k != 'signature'}
    return keccak(utf8('FlyTrap evidence bundle v1\n'), utf8(canonical_json(body)))


def erasure_digest(body):
    rest = {k: v for k, v in body.items() if k != 'signature'}
    return keccak(utf8('FlyTrap erasure record v1\n'), utf8(canonical_json(rest)))


# ---------------------------------------------------------------- §3 structure


class Bad(Exception):
    def __init__(self, record, why=''):
        super().__init__(f'{record}: {why}' if why else record)
        self.record, self.why = record, why


RE_H32 = re.compile(r'^0x[0-9a-f]{64}$')
RE_ADDR = re.compile(r'^0x[0-9a-fA-F]{40}$')
RE_LADDR = re.compile(r'^0x[0-9a-f]{40}$')
RE_SIG = re.compile(r'^0x[0-9a-f]{130}$')
RE_COMMIT = re.compile(r'^commit:0x[0-9a-f]{64}$')


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def t_int(v):
    return is_int(v) and v >= 0


def t_h32(v):
    return isinstance(v, str) and RE_H32.match(v) is not None


def t_addr(v):
    return isinstance(v, str) and RE_ADDR.match(v) is not None


def t_laddr(v):
    return isinstance(v, str) and RE_LADDR.match(v) is not None


def t_str(v):
    return isinstance(v, str)


def nullable(t):
    return lambda v: v is None or t(v)


def t_list(t):
    return lambda v: isinstance(v, list) and all(t(x) for x in v)


def obj(record, v, fields, nested=None, value_record=None):
    """A JSON object with exactly these fields. An unknown or missing field names `record` (for a nested object:
    `nested[field]`); a bad value names `value_record` (default `record`; for a nested object: the parent's)."""
    if not isinstance(v, dict):
        raise Bad(record, 'not an object')
    for k in v:
        if k not in fields:
            raise Bad(record, f'unexpected field "{k}"')
    for k in fields:
        if k not in v:
            raise Bad(record, f'missing field "{k}"')
    for k, t in fields.items():
        if isinstance(t, dict):
            obj((nested or {}).get(k, record), v[k], t, None, value_record or record)
        elif not t(v[k]):
            raise Bad(value_record or record, f'bad {k}')


REF = {'txHash': t_h32, 'blockNumber': t_int, 'blockHash': t_h32, 'logIndex': t_int, 'time': t_int}
ANCHOR = {'reporter': t_addr, 'fromTime': t_int, 'toTime': t_int, 'firstSeq': t_int, 'count': t_int, 'root': t_h32,
          'index': nullable(t_h32), 'chain': t_h32, 'ref': REF}
# The erasure body (docs/audit.md "Erasure"), checked in step 4.
ERASURE_BODY = {'v': lambda v: v == 1, 'at': t_int, 'requestedBy': t_str, 'basis': t_str, 'subject': t_h32,
                'redacts': t_list(lambda r: isinstance(r, list) and len(r) == 3 and t_int(r[0]) and t_int(r[1]) and t_h32(r[2])),
                'signer': t_addr, 'signature': lambda v: isinstance(v, str) and RE_SIG.match(v) is not None}


def t_json_value(v):
    if isinstance(v, (bool, str)) or is_int(v):
        return True
    if isinstance(v, list):
        return all(t_json_value(x) for x in v)
    return False


def t_args(a):
    return isinstance(a, dict) and all(t_json_value(x) for x in a.values())


def t_entry_of(seq):
    """The journal entry itself is covered by its leaf: structurally only an object whose seq is the entry's and whose t is an integer."""
    return lambda e: isinstance(e, dict) and e.get('seq') == seq and t_int(e.get('t'))


def check_structure(b):
    """§6.1 step 1 (the types): raises Bad(record, why) on the first problem."""
    if not isinstance(b, dict):
        raise Bad('bundle', 'not a JSON object')
    if b.get('format') != 'flytrap-evidence':
        raise Bad('bundle', 'not a flytrap-evidence bundle')
    if b.get('version') != 1:
        raise Bad('bundle', f'version {b.get("version")!r} is not supported (this checker reads version 1)')
    lst = lambda v: isinstance(v, list)
    top = {'format': t_str, 'version': t_int, 'createdAt': t_int, 'deployment': lambda v: True, 'scope': lambda v: True,
           'periods': lst, 'erasures': lst, 'policy': lst, 'summaries': lst, 'members': lst, 'reasons': lst, 'grants': lst,
           'signer': lambda v: True, 'signature': lambda v: True}
    obj('bundle', b, top)
    if not b['periods']:
        raise Bad('bundle', 'no periods')
    obj('deployment', b['deployment'], {'chainId': t_int, 'contract': t_addr, 'deploymentBlock': t_int,
                                        'asOf': {'blockNumber': t_int, 'blockHash': t_h32}, 'reporters': lst}, {'asOf': 'deployment.asOf'})
    obj('scope', b['scope'], {'requested': {'fromMs': t_int, 'toMs': t_int}, 'fromMs': t_int, 'toMs': t_int, 'topic': nullable(t_str),
                              'client': nullable(lambda v: isinstance(v, str) and RE_LADDR.match(v) is not None)})
    if b['scope']['topic'] is not None and b['scope']['client'] is not None:
        raise Bad('scope', 'a bundle is for one topic or one client, not both')
    neighbour = {'keyHash': t_h32, 'seqsDigest': t_h32, 'index': t_int, 'count': t_int, 'siblings': t_list(t_h32)}
    for i, p in enumerate(b['periods']):
        w = f'period {i}'
        obj(w, p, {'anchor': lambda v: True, 'entries': lst, 'openings': lst})
        obj(f'anchor of {w}', p['anchor'], ANCHOR, {'ref': f'anchor of {w} (ref)'})
        for j, d in enumerate(p['entries']):
            wj = f'{w} entry {j}'
            if isinstance(d, dict) and 'redacted' in d:
                obj(wj, d, {'seq': t_int, 'redacted': lambda v: v is True, 't': t_int, 'leaf': t_h32, 'redactedAt': t_int,
                            'erasure': nullable(t_int), 'siblings': t_list(t_h32)})
            else:
                obj(wj, d, {'seq': t_int, 'entry': lambda v: True, 'salt': t_h32, 'siblings': t_list(t_h32)})
                if not t_entry_of(d['seq'])(d['entry']):
                    raise Bad(wj, 'bad entry (an object whose seq is the entry seq, with an integer t)')
        for j, o in enumerate(p['openings']):
            wj = f'{w} opening {j}'
            if isinstance(o, dict) and 'absent' in o:
                obj(wj, o, {'key': t_str, 'absent': lambda v: v is True, 'left': lambda v: True, 'right': lambda v: True})
                for side in ('left', 'right'):
                    if o[side] is not None:
                        obj(wj, o[side], neighbour)
            else:
                obj(wj, o, {'key': t_str, 'seqs': t_list(t_int), 'index': t_int, 'count': t_int, 'siblings': t_list(t_h32)})
    for i, e in enumerate(b['erasures']):
        w = f'erasure record {i}'
        obj(w, e, {'seq': t_int, 'entry': lambda v: True, 'salt': t_h32, 'anchor': lambda v: True, 'siblings': t_list(t_h32)})
        if not t_entry_of(e['seq'])(e['entry']):
            raise Bad(w, 'bad entry (an object whose seq is the entry seq, with an integer t)')
        if e['anchor'] is not None:
            obj(w, e['anchor'], ANCHOR)
    for label, evs in (('policy event', b['policy']), ('summary', b['summaries']), ('reporter event', b['deployment']['reporters'])):
        for i, ev in enumerate(evs):
            obj(f'{label} {i}', ev, {'event': t_str, 'args': t_args, 'ref': REF}, {'ref': f'{label} {i} (ref)'})
    for i, m in enumerate(b['members']):
        obj(f'member {i}', m, {'summary': t_int, 'record': {'address': t_laddr, 'role': t_str, 'count': t_int}, 'salt': t_h32,
                               'proof': {'index': t_int, 'count': t_int, 'siblings': t_list(t_h32)}})
    for i, r in enumerate(b['reasons']):
        obj(f'reason {i}', r, {'commitment': t_str, 'salt': t_h32, 'text': t_str})
    for i, g in enumerate(b['grants']):
        obj(f'grant {i}', g, {'seq': t_int, 'policy': nullable(t_int)})
    if not t_addr(b['signer']):
        raise Bad('signature', 'bad signer (an address)')
    if not (isinstance(b['signature'], str) and RE_SIG.match(b['signature'].lower())):
        raise Bad('signature', 'bad signature (0x and 130 hex digits)')


# ---------------------------------------------------------------- the check


STEPS = ['structure', 'entries', 'completeness', 'redactions', 'members', 'reasons', 'grants', 'signature', 'deployment', 'anchors', 'policy', 'summaries']


class Result:
    def __init__(self):
        self.failures = []  # (order, record, message)
        self.steps = {s: {'status': 'ok', 'checked': 0} for s in STEPS}

    def fail(self, step, record, why, order=None):
        # the order of §6: structure, entries, completeness, redactions, the chain steps, the signature last
        if order is None:
            order = STEPS.index(step) if step != 'signature' else 99
        self.failures.append((order, len(self.failures), record, f'{record}: {why}'))
        self.steps[step]['status'] = 'failed'

    def first(self):
        return min(self.failures)[2:] if self.failures else None


def period_label(a):
    return f'{iso_s(a["fromTime"])}..{iso_s(a["toTime"])}'


def entry_record(seq, a):
    return f'entry seq {seq} (period {period_label(a)})'


def anchor_record(a):
    return f'anchor of {period_label(a)} (tx {a["ref"]["txHash"]}, log {a["ref"]["logIndex"]})'


def check_offline(b, res):
    """§6.1 steps 1–5. Returns (inScope, redacted)."""
    scope = b['scope']
    periods = b['periods']
    # 1. the run of periods
    a0 = periods[0]['anchor']
    for i in range(1, len(periods)):
        prev, a = periods[i - 1]['anchor'], periods[i]['anchor']
        if a['fromTime'] != prev['toTime'] or a['firstSeq'] != prev['firstSeq'] + prev['count'] or a['reporter'] != a0['reporter']:
            res.fail('structure', anchor_record(a), 'does not continue the anchor before it: the periods must be one gap-free run of one reporter')
    if scope['fromMs'] != a0['fromTime'] * 1000 or scope['toMs'] != periods[-1]['anchor']['toTime'] * 1000:
        res.fail('structure', 'scope', 'fromMs/toMs are not the anchored range the periods cover')
    res.steps['structure']['checked'] = 1

    # 2. entries
    good = {}  # seq -> full entry whose leaf walks
    redactions = {}
    for p in periods:
        a = p['anchor']
        last = None
        for d in p['entries']:
            seq = d['seq']
            rec = entry_record(seq, a)
            res.steps['entries']['checked'] += 1
            if last is not None and seq <= last:
                res.fail('entries', rec, 'seqs do not strictly increase')
                continue
            last = seq
            if not (a['firstSeq'] <= seq < a['firstSeq'] + a['count']):
                res.fail('entries', rec, 'is outside the anchored seq range')
                continue
            red = 'redacted' in d
            t = d['t'] if red else d['entry']['t']
            if not (a['fromTime'] * 1000 <= t < a['toTime'] * 1000):
                res.fail('entries', rec, 'its time is outside the anchored period')
                continue
            leaf = unhex(d['leaf']) if red else entry_leaf(d['salt'], d['entry'])
            if not walk(leaf, seq - a['firstSeq'], a['count'], d['siblings'], unhex(a['root'])):
                res.fail('entries', rec, 'its content, salt and path do not lead to the anchored root (altered)')
                continue
            (redactions if red else good)[seq] = (d, a)

    # 3. completeness
    to_open = keys_to_open(scope)
    for p in periods:
        a = p['anchor']
        res.steps['completeness']['checked'] += 1
        disclosed = {d['seq'] for d in p['entries']}
        if to_open is None:
            if p['openings']:
                res.fail('completeness', f'period {period_label(a)}', 'a bundle that discloses every entry carries no index openings')
            for seq in range(a['firstSeq'], a['firstSeq'] + a['count']):
                if seq not in disclosed:
                    res.fail('completeness', entry_record(seq, a), 'is left out: the scope discloses every entry of the period')
                    break
            continue
        if a['index'] is None:
            res.fail('completeness', anchor_record(a), 'commits to no scope index: completeness cannot be proven')
            continue
        root = unhex(a['index'])
        opened = {}
        for o in p['openings']:
            k = o['key']
            lbl = f'index key {json.dumps(k, ensure_ascii=False)} (period {period_label(a)})'
            if k not in to_open:
                continue  # an opening of a key the scope does not open proves nothing and is not used
            if k in opened:
                res.fail('completeness', lbl, 'is opened more than once')
            else:
                opened[k] = o
        listed = {}
        for k in to_open:
            lbl = f'index key {json.dumps(k, ensure_ascii=False)} (period {period_label(a)})'
            o = opened.get(k)
            if o is None:
                res.fail('completeness', lbl, 'is not opened')
                continue
            ok = absence_holds(o, root) if o.get('absent') else membership_holds(o, root)
            if not ok:
                res.fail('completeness', lbl, 'its opening does not hold against the anchored index')
                continue
            listed[k] = set() if o.get('absent') else set(o['seqs'])
        for k, seqs in listed.items():
            for seq in sorted(seqs):
                if seq not in disclosed:
                    res.fail('completeness', entry_record(seq, a), f'is left out: the index lists it under {k}')
        for d in p['entries']:
            if 'redacted' in d:
                continue
            keys = scope_keys(d['entry'])
            for k, seqs in listed.items():
                if d['seq'] in seqs and k not in keys:
                    res.fail('completeness', entry_record(d['seq'], a), f'is listed under {k} but does not have that key')
                if k in keys and d['seq'] not in seqs:
                    res.fail('completeness', entry_record(d['seq'], a), f'has the key {k} but the index does not list it')

    # 4. redactions
    erasures = {}
    for e in b['erasures']:
        rec = f'erasure record seq {e["seq"]}'
        res.steps['redactions']['checked'] += 1
        body = e['entry'].get('erasure')
        try:
            if e['entry'].get('kind') != 'erasure' or e['entry']['seq'] != e['seq'] or body is None:
                raise Bad('is not an erasure record')
            obj('erasure', body, ERASURE_BODY)
            seqs = [r[0] for r in body['redacts']]
            if any(y <= x for x, y in zip(seqs, seqs[1:])):
                raise Bad('its redacts are not in seq order')
        except Bad as err:
            res.fail('redactions', rec, f'is not valid: {err.why or err.record}')
            continue
        signer = personal_recover(erasure_digest(body), body['signature'])
        if signer is None or signer.lower() != body['signer'].lower():
            res.fail('redactions', rec, f'its signature is not by the signer it names (it recovers to {signer})')
            continue
        an = e['anchor']
        if an is not None and not walk(entry_leaf(e['salt'], e['entry']), e['seq'] - an['firstSeq'], an['count'], e['siblings'], unhex(an['root'])):
            res.fail('redactions', rec, f'its content, salt and path do not lead to the root anchored for {period_label(an)}')
            continue
        erasures[e['seq']] = body
    for seq, (d, a) in sorted(redactions.items()):
        rec = entry_record(seq, a)
        res.steps['redactions']['checked'] += 1
        body = erasures.get(d['erasure']) if d['erasure'] is not None and d['erasure'] > seq else None
        if body is None:
            res.fail('redactions', rec, 'names no valid erasure record in the bundle')
        elif [seq, d['t'], d['leaf']] not in body['redacts'] or body['at'] != d['redactedAt']:
            res.fail('redactions', rec, f'erasure record seq {d["erasure"]} does not list it with this time, leaf and redactedAt')

    check_members(b, good, res)
    check_reasons(b, res)
    check_grants(b, good, res)

    # 5. signature
    res.steps['signature']['checked'] = 1
    got = personal_recover(bundle_digest(b), b['signature'])
    if got is None or got.lower() != b['signer'].lower():
        res.fail('signature', 'signature', f'does not verify for signer {b["signer"]} (it recovers to {got})')
    elif any(p['anchor']['reporter'].lower() != b['signer'].lower() for p in periods):
        res.fail('signature', 'signature', f'is by {b["signer"]}, not the reporter that anchored')

    failed = {f[2] for f in res.failures}
    in_scope = sorted(s for s, (d, a) in good.items() if in_scope_ok(d, scope) and entry_record(s, a) not in failed)
    return in_scope, sorted(redactions)


# ---------------------------------------------------------------- §8 member records, reason commitments, grants

ROLE_PUBLISH, ROLE_SUBSCRIBE = 1, 2  # contracts/FlyTrap.sol ROLE_PUBLISH / ROLE_SUBSCRIBE
FOREVER = 2 ** 40 - 1                # src/lib/chain/codec.ts: an expiry that never comes (0 too)
MEMBER_ROLE = {'publish': 'publisher', 'deliver': 'receiver'}
GRANT_ROLE = {'publish': ROLE_PUBLISH, 'will': ROLE_PUBLISH, 'subscribe': ROLE_SUBSCRIBE, 'deliver': ROLE_SUBSCRIBE}


def member_leaf(salt_hex, record):
    return keccak(b'\x05', unhex(salt_hex), utf8(canonical_json(record)))


def member_salt(entry_salt_hex, role):
    return keccak(b'\x06', unhex(entry_salt_hex), utf8(role))


def reason_commitment(salt_hex, text):
    return 'commit:' + hx(keccak(b'\x07', unhex(salt_hex), utf8(text)))


def member_record(role, address, i):
    return f'member record {role} {address} of summary {i}'


def check_members(b, good, res):
    """Member records (bundle-additions 1, docs/evidence.md §8): each disclosed record's leaf walks to its summary's
    membersRoot; and every allowed sensitive publish/deliver the scope must account for has its record, whose count
    and salt follow from the disclosed entries."""
    summaries, scope = b['summaries'], b['scope']
    seen = {}
    for m in b['members']:
        rec = m['record']
        i = m['summary']
        name = member_record(rec['role'], rec['address'], i)
        res.steps['members']['checked'] += 1
        if not (0 <= i < len(summaries)) or summaries[i]['event'] != 'SensitiveReport' or not t_h32(summaries[i]['args'].get('membersRoot')) \
                or summaries[i]['args']['membersRoot'] == hx(ZERO32):
            res.fail('members', name, 'does not point to a committed SensitiveReport of the bundle')
            continue
        if rec['role'] not in ('publisher', 'receiver') or not is_int(rec['count']) or rec['count'] < 1:
            res.fail('members', name, 'its role must be publisher or receiver and its count a positive integer')
            continue
        key = (i, rec['role'], rec['address'])
        if key in seen:
            res.fail('members', name, 'is disclosed more than once')
            continue
        pf = m['proof']
        if not walk(member_leaf(m['salt'], rec), pf['index'], pf['count'], pf['siblings'], unhex(summaries[i]['args']['membersRoot'])):
            res.fail('members', name, "its content, salt and proof do not lead to the summary's membersRoot")
            continue
        seen[key] = m
    # what the disclosed entries call for
    committed = [(i, int(s['args']['fromTime']), int(s['args']['toTime']), s['args'].get('topic')) for i, s in enumerate(summaries)
                 if s['event'] == 'SensitiveReport' and re.match(r'^\d+$', str(s['args'].get('fromTime'))) and re.match(r'^\d+$', str(s['args'].get('toTime')))]
    tally = {}  # (summary, role, address) -> [count, salt of the first entry]
    for seq in sorted(good):
        e = good[seq][0]['entry']
        role = MEMBER_ROLE.get(e.get('kind'))
        if role is None or e.get('outcome') != 'allow' or e.get('sensitive') is not True or not isinstance(e.get('address'), str) \
                or not isinstance(e.get('topic'), str):
            continue
        addr = e['address'].lower()
        if scope['client'] is not None and addr != scope['client'].lower():
            continue
        tid = hx(keccak(utf8(e['topic'])))
        n = e.get('count', 1)
        for i, f, to, topic in committed:
            if topic == tid and f * 1000 <= e['t'] < to * 1000:
                t = tally.setdefault((i, role, addr), [0, good[seq][0]['salt']])
                t[0] += n if is_int(n) else 1
    for key in sorted(tally, key=lambda k: (k[0], k[1], k[2])):
        i, role, addr = key
        name = member_record(role, addr, i)
        res.steps['members']['checked'] += 1
        m = seen.get(key)
        count, first_salt = tally[key]
        if m is None:
            res.fail('members', name, 'is not disclosed, yet disclosed entries are counted in it')
        elif m['record']['count'] != count:
            res.fail('members', name, f'counts {m["record"]["count"]}, the disclosed entries {count}')
        elif m['salt'] != hx(member_salt(first_salt, role)):
            res.fail('members', name, 'its salt is not derived from the first entry it counts')


def check_reasons(b, res):
    """Reason openings (bundle-additions 2): the commitment is the formula's and some cited policy event's reason."""
    cited = {ev['args'].get('reason') for ev in b['policy']}
    seen = set()
    for r in b['reasons']:
        name = f'reason {r["commitment"]}'
        res.steps['reasons']['checked'] += 1
        if RE_COMMIT.match(r['commitment']) is None:
            res.fail('reasons', name, 'is not commit:0x and 64 lower-case hex digits')
        elif r['commitment'] in seen:
            res.fail('reasons', name, 'is opened more than once')
        elif r['commitment'] != reason_commitment(r['salt'], r['text']):
            res.fail('reasons', name, 'its salt and text do not open the commitment')
        elif r['commitment'] not in cited:
            res.fail('reasons', name, 'is the reason of no cited policy event')
        seen.add(r['commitment'])


def reasons_summary(b):
    opened = {r['commitment'] for r in b['reasons']}
    committed = sorted({ev['args'].get('reason') for ev in b['policy'] if isinstance(ev['args'].get('reason'), str) and ev['args']['reason'].startswith('commit:')})
    return {'disclosed': [c for c in committed if c in opened], 'notDisclosed': [c for c in committed if c not in opened]}


def _never(exp):
    return exp == 0 or exp == FOREVER


def grant_allows(b, ev_i, e):
    """(a)/(b) of bundle-additions 3: None when cited policy event ev_i allowed entry e, else why not."""
    policy = b['policy']
    if not (0 <= ev_i < len(policy)):
        return 'points to no cited policy event'
    ev = policy[ev_i]
    a, name = ev['args'], ev['event']
    addr = e['address'].lower()
    t = e['t']
    bit = GRANT_ROLE[e['kind']]
    names = {}
    for x in policy:
        if x['event'] == 'TopicAdded' and isinstance(x['args'].get('name'), str):
            names.setdefault(x['args']['topic'], []).append(x['args']['name'])
    tid = a.get('topic')
    if not any(overlap(n, e['topic']) for n in names.get(tid, [])):
        return "its topic is not a cited topic overlapping the entry's"
    at = ev['ref']['time']
    pos = (ev['ref']['blockNumber'], ev['ref']['logIndex'])
    after = lambda x: (x['ref']['blockNumber'], x['ref']['logIndex']) > pos and x['ref']['time'] * 1000 <= t  # after P in chain order, by E's time
    if at * 1000 > t:
        return 'it comes after the entry'
    if name in ('Granted', 'Joined'):
        if a.get('client') != addr:
            return 'it names another client'
        if not (int(a['roles']) & bit):
            return "it does not grant the entry's role"
        exp = int(a['expiresAt']) if name == 'Granted' else int(a['pubExpiresAt'] if bit == ROLE_PUBLISH else a['subExpiresAt'])
        if not _never(exp) and not exp * 1000 > t:
            return 'it had expired at the entry'
        for x in policy:
            xa = x['args']
            if x['event'] == 'Revoked' and xa.get('topic') == tid and xa.get('client') == addr and int(xa['roles']) & bit and after(x):
                return 'a cited Revoked ended it before the entry'
            if x['event'] in ('Granted', 'Joined') and xa.get('topic') == tid and xa.get('client') == addr and int(xa['roles']) & bit and after(x):
                return 'a later cited Granted or Joined superseded it before the entry'
        return None
    if name in ('TopicAdded', 'TopicTransferred'):
        owner = a.get('owner') if name == 'TopicAdded' else a.get('to')
        if owner != addr:
            return 'it does not make the entry\'s client the owner'
        for x in policy:
            xa = x['args']
            if xa.get('topic') == tid and x['event'] in ('TopicTransferred', 'TopicRemoved') and after(x):
                return 'the topic was transferred away or removed before the entry'
        return None
    return f'a {name} allows nothing'


def check_grants(b, good, res):
    """Grants (bundle-additions 3): every disclosed allowed publish/subscribe/deliver/will names the cited policy
    event that allowed it (or null), and a named event really allowed it ((a)/(b))."""
    by_seq = {}
    for g in b['grants']:
        if g['seq'] in by_seq:
            res.fail('grants', f'grant of entry seq {g["seq"]}', 'is given more than once')
            continue
        by_seq[g['seq']] = g
    need = {seq for seq, (d, _) in good.items() if d['entry'].get('kind') in GRANT_ROLE and d['entry'].get('outcome') == 'allow'
            and isinstance(d['entry'].get('address'), str) and isinstance(d['entry'].get('topic'), str)}
    for seq in sorted(set(by_seq) | need):
        name = f'grant of entry seq {seq}'
        res.steps['grants']['checked'] += 1
        g = by_seq.get(seq)
        if g is None:
            res.fail('grants', name, 'is missing: the entry is an allowed access')
            continue
        if seq not in need:
            res.fail('grants', name, 'names no disclosed allowed publish, subscribe, deliver or will')
            continue
        e = good[seq][0]['entry']
        if g['policy'] is None:
            continue
        try:
            why = grant_allows(b, g['policy'], e)
        except (KeyError, TypeError, ValueError, AttributeError):
            why = 'the policy events it relies on have malformed arguments'
        if why is not None:
            res.fail('grants', name, f'policy event {g["policy"]}: {why}')


def in_scope_ok(d, scope):
    return in_scope(d['entry'], scope)


# ---------------------------------------------------------------- §3.6 events, ABI decoding


EVENTS = [
    'TopicAdded(bytes32 indexed topic, address indexed owner, string name, uint256 pubFee, uint256 subFee, uint8 flags, uint32 period, bytes countries, string reason)',
    'TopicFeesChanged(bytes32 indexed topic, address indexed actor, uint256 pubFee, uint256 subFee, uint32 period, string reason)',
    'TopicCountriesChanged(bytes32 indexed topic, address indexed actor, bytes countries, string reason)',
    'TopicFlagsChanged(bytes32 indexed topic, address indexed actor, uint8 flags, string reason)',
    'TopicTransferred(bytes32 indexed topic, address indexed from, address indexed to, string reason)',
    'TopicRemoved(bytes32 indexed topic, address indexed actor, string reason)',
    'Granted(bytes32 indexed topic, address indexed client, uint8 indexed roles, uint40 expiresAt, string reason)',
    'Revoked(bytes32 indexed topic, address indexed client, uint8 indexed roles, string reason)',
    'Joined(bytes32 indexed topic, address indexed client, uint8 indexed roles, uint256 paid, uint40 pubExpiresAt, uint40 subExpiresAt)',
    'ReporterAdded(address indexed reporter, address indexed actor, string reason)',
    'ReporterRemoved(address indexed reporter, address indexed actor, string reason)',
    'SensitiveReport(bytes32 indexed topic, address indexed reporter, uint64 fromTime, uint64 toTime, uint32 publishers, uint32 published, uint32 receivers, uint32 received, bytes32 membersRoot)',
    'SensitiveReportClear(bytes32 indexed topic, address indexed reporter, uint64 fromTime, uint64 toTime, address[] publishers, uint32[] published, address[] receivers, uint32[] received)',
    'DeniedSummary(address indexed reporter, uint64 fromTime, uint64 toTime, bytes32[] topics, uint32[] counts)',
    'Anchored(address indexed reporter, uint64 indexed fromTime, uint64 toTime, uint64 firstSeq, uint64 count, bytes32 root, bytes32 index, bytes32 chain)',
    # contracts from before scope indexes
    'Anchored(address indexed reporter, uint64 indexed fromTime, uint64 toTime, uint64 firstSeq, uint64 count, bytes32 root, bytes32 chain)',
]
POLICY = ['TopicAdded', 'TopicFeesChanged', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved', 'Granted', 'Revoked', 'Joined']
SUMMARY = ['SensitiveReport', 'SensitiveReportClear', 'DeniedSummary']


def parse_event(sig):
    name, rest = sig.split('(', 1)
    params = []
    for p in rest.rstrip(')').split(','):
        parts = p.split()
        params.append((parts[0], parts[-1], 'indexed' in parts[1:-1]))
    canon = f'{name}({",".join(t for t, _, _ in params)})'
    return keccak(utf8(canon)), name, params


ABI = {}
for _s in EVENTS:
    _t0, _n, _ps = parse_event(_s)
    ABI[_t0] = (_n, _ps)


def dec_static(typ, word):
    if typ == 'address':
        if word[:12] != b'\x00' * 12:
            raise ValueError('address')
        return hx(word[12:])
    if typ == 'bytes32':
        return hx(word)
    if typ == 'bool':
        v = int.from_bytes(word, 'big')
        if v > 1:
            raise ValueError('bool')
        return v == 1
    m = re.match(r'^uint(\d+)$', typ)
    if m:
        v = int.from_bytes(word, 'big')
        if v >> int(m.group(1)):
            raise ValueError('uint range')
        return str(v)
    raise ValueError(f'type {typ}')


def word_at(data, off):
    if off + 32 > len(data):
        raise ValueError('short data')
    return data[off:off + 32]


def dec_dynamic(typ, data, off):
    n = int.from_bytes(word_at(data, off), 'big')
    if typ in ('bytes', 'string'):
        if off + 32 + n > len(data):
            raise ValueError('short data')
        raw = data[off + 32:off + 32 + n]
        return raw.decode('utf-8') if typ == 'string' else hx(raw)
    if typ.endswith('[]'):
        return [dec_static(typ[:-2], word_at(data, off + 32 + 32 * i)) for i in range(n)]
    raise ValueError(f'type {typ}')


def decode_log(log):
    """(name, canonical args) or None when the log does not decode with the ABI of §3.6."""
    topics = [unhex(t) for t in log['topics']]
    if not topics or topics[0] not in ABI:
        return None
    name, params = ABI[topics[0]]
    data = unhex(log['data'])
    try:
        indexed = [p for p in params if p[2]]
        if len(topics) != 1 + len(indexed):
            return None
        args = {}
        ti = 1
        head = 0
        for typ, pname, idx in params:
            if idx:
                args[pname] = dec_static(typ, topics[ti])
                ti += 1
                continue
            if typ in ('bytes', 'string') or typ.endswith('[]'):
                args[pname] = dec_dynamic(typ, data, int.from_bytes(word_at(data, head), 'big'))
            else:
                args[pname] = dec_static(typ, word_at(data, head))
            head += 32
        return name, args
    except (ValueError, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------- §6.2 with a chain node


class Unreachable(Exception):
    pass


class Rpc:
    def __init__(self, url):
        self.url, self.id = url, 0

    def __call__(self, method, *params):
        self.id += 1
        req = urllib.request.Request(self.url, data=json.dumps({'jsonrpc': '2.0', 'id': self.id, 'method': method, 'params': list(params)}).encode(),
                                     headers={'content-type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                out = json.loads(r.read())
        except Exception as err:  # noqa: BLE001 (any transport failure is "unreachable")
            raise Unreachable(f'{self.url}: {err}')
        if 'error' in out:
            raise Unreachable(f'{method}: {out["error"].get("message")}')
        return out.get('result')


def qty(n):
    return hex(n)


def pos_of(log):
    return (int(log['blockNumber'], 16), int(log['logIndex'], 16))


def check_chain(b, rpc, res):
    dep = b['deployment']
    contract = dep['contract'].lower()
    # 6. deployment
    res.steps['deployment']['checked'] = 1
    if int(rpc('eth_chainId'), 16) != dep['chainId']:
        res.fail('deployment', 'deployment', 'the node is on another chain')
    db = dep['deploymentBlock']
    before = rpc('eth_getCode', contract, qty(db - 1)) if db > 0 else '0x'
    at = rpc('eth_getCode', contract, qty(db))
    if before not in ('0x', '0x0') or at in ('0x', '0x0', None):
        res.fail('deployment', 'deployment', f'the contract was not created in block {db}')
    blk = rpc('eth_getBlockByNumber', qty(dep['asOf']['blockNumber']), False)
    if blk is None or blk['hash'] != dep['asOf']['blockHash']:
        res.fail('deployment', 'deployment', 'asOf is not a block of this chain')

    # 7. every log of the contract; reporter replay
    head = int(rpc('eth_blockNumber'), 16)
    logs = []
    start, step = db, 10_000
    while start <= head:
        end = min(head, start + step - 1)
        logs += rpc('eth_getLogs', {'address': contract, 'fromBlock': qty(start), 'toBlock': qty(end)})
        start = end + 1
    decoded = []
    for lg in logs:
        if lg.get('removed'):
            continue
        d = decode_log(lg)
        if d is not None:
            decoded.append((pos_of(lg), lg['transactionHash'], d[0], d[1]))
    decoded.sort(key=lambda x: x[0])
    history = {}  # address -> [(pos, added)]
    for pos, _, name, args in decoded:
        if name in ('ReporterAdded', 'ReporterRemoved'):
            history.setdefault(args['reporter'], []).append((pos, name == 'ReporterAdded'))

    def registered_at(addr, pos):
        last = None
        for p, added in history.get(addr.lower(), []):
            if p < pos:
                last = added
        return last is True

    def ever_registered(addr):
        return any(added for _, added in history.get(addr.lower(), []))

    receipts, blocks = {}, {}

    def on_chain(ref, name, args):
        """Step 8: None when the cited log is on chain with these arguments, else why not."""
        tx = ref['txHash']
        if tx not in receipts:
            receipts[tx] = rpc('eth_getTransactionReceipt', tx)
        rc = receipts[tx]
        if rc is None:
            return 'its transaction is not on this chain'
        if int(rc['status'], 16) != 1:
            return 'its transaction failed'
        if int(rc['blockNumber'], 16) != ref['blockNumber'] or rc['blockHash'] != ref['blockHash']:
            return 'its block number or hash differ from the receipt'
        bn = ref['blockNumber']
        if bn not in blocks:
            blocks[bn] = rpc('eth_getBlockByNumber', qty(bn), False)
        if blocks[bn] is None or blocks[bn]['hash'] != ref['blockHash']:
            return 'its block hash is not the chain\'s block at that height'
        if int(blocks[bn]['timestamp'], 16) != ref['time']:
            return 'its time is not the timestamp of its block'
        lg = next((x for x in rc['logs'] if int(x['logIndex'], 16) == ref['logIndex']), None)
        if lg is None:
            return f'the receipt has no log at index {ref["logIndex"]}'
        if lg['address'].lower() != contract:
            return 'the log was emitted by another contract'
        d = decode_log(lg)
        if d is None or d[0] != name:
            return f'the log is not {name}'
        if d[1] != args:
            return 'its arguments differ from the log on chain'
        return None

    # 8/9. anchors
    def anchor_args(a, old):
        args = {'reporter': a['reporter'].lower(), 'fromTime': str(a['fromTime']), 'toTime': str(a['toTime']), 'firstSeq': str(a['firstSeq']),
                'count': str(a['count']), 'root': a['root'], 'chain': a['chain']}
        if not old:
            args['index'] = a['index'] if a['index'] is not None else hx(ZERO32)
        return args

    anchors = [p['anchor'] for p in b['periods']] + [e['anchor'] for e in b['erasures'] if e['anchor'] is not None]
    for a in anchors:
        res.steps['anchors']['checked'] += 1
        why = on_chain(a['ref'], 'Anchored', anchor_args(a, False))
        if why == 'its arguments differ from the log on chain' or why == 'the log is not Anchored':
            old = on_chain(a['ref'], 'Anchored', anchor_args(a, True))  # a contract from before scope indexes
            if old is None:
                why = None if a['index'] is None else 'commits to an index the anchor on chain does not have'
        if why is None and not registered_at(a['reporter'], (a['ref']['blockNumber'], a['ref']['logIndex'])):
            why = f'{a["reporter"]} was not a registered reporter at that log'
        if why is not None:
            res.fail('anchors', anchor_record(a), why)
    for e in b['erasures']:
        signer = (e['entry'].get('erasure') or {}).get('signer')
        if signer and not ever_registered(signer):
            res.fail('anchors', f'erasure record seq {e["seq"]}', f'its signer {signer} was never a registered reporter of this contract')

    # 10. policy events
    asof = dep['asOf']['blockNumber']
    cited = {(ev['ref']['txHash'], ev['ref']['logIndex']) for ev in b['policy']}
    for ev in b['policy']:
        res.steps['policy']['checked'] += 1
        rec = f'policy event {ev["event"]} (tx {ev["ref"]["txHash"]}, log {ev["ref"]["logIndex"]})'
        why = 'is not a policy event' if ev['event'] not in POLICY else on_chain(ev['ref'], ev['event'], ev['args'])
        if why is not None:
            res.fail('policy', rec, why)
    policy = [x for x in decoded if x[2] in POLICY and x[0][0] <= asof]
    scope = b['scope']
    if scope['topic'] is not None:
        ids = {hx(keccak(utf8(scope['topic'])))}
        ids |= {hx(keccak(utf8(a['name']))) for _, _, n, a in policy if n == 'TopicAdded' and overlap(a['name'], scope['topic'])}
        wanted = [x for x in policy if x[3]['topic'] in ids]
    elif scope['client'] is not None:
        mine = [x for x in policy if x[2] in ('Granted', 'Revoked', 'Joined') and x[3]['client'] == scope['client']]
        ids = {x[3]['topic'] for x in mine}
        wanted = [x for x in policy if x in mine or (x[2] not in ('Granted', 'Revoked', 'Joined') and x[3]['topic'] in ids)]
    else:
        wanted = policy
    for pos, tx, name, _ in wanted:
        if (tx, pos[1]) not in cited:
            res.fail('policy', f'policy event {name} (tx {tx}, log {pos[1]})', 'the scope calls for it and the bundle leaves it out')

    # 11. summaries
    cited = {(ev['ref']['txHash'], ev['ref']['logIndex']) for ev in b['summaries']}
    for ev in b['summaries']:
        res.steps['summaries']['checked'] += 1
        rec = f'summary {ev["event"]} (tx {ev["ref"]["txHash"]}, log {ev["ref"]["logIndex"]})'
        why = 'is not a summary event' if ev['event'] not in SUMMARY else on_chain(ev['ref'], ev['event'], ev['args'])
        if why is None and not registered_at(str(ev['args'].get('reporter', '')), (ev['ref']['blockNumber'], ev['ref']['logIndex'])):
            why = 'its reporter was not registered at that log'
        if why is not None:
            res.fail('summaries', rec, why)
    for pos, tx, name, args in decoded:
        if name in SUMMARY and pos[0] <= asof and registered_at(args['reporter'], pos) \
                and int(args['fromTime']) * 1000 >= scope['fromMs'] and int(args['toTime']) * 1000 <= scope['toMs'] \
                and (tx, pos[1]) not in cited:
            res.fail('summaries', f'summary {name} (tx {tx}, log {pos[1]})', 'the scope calls for it and the bundle leaves it out')

    # the cited reporter history (informational, never used to decide): on chain too (8), checked last
    for ev in dep['reporters']:
        res.steps['deployment']['checked'] += 1
        rec = f'reporter event {ev["event"]} (tx {ev["ref"]["txHash"]}, log {ev["ref"]["logIndex"]})'
        why = 'is not a reporter event' if ev['event'] not in ('ReporterAdded', 'ReporterRemoved') else on_chain(ev['ref'], ev['event'], ev['args'])
        if why is not None:
            res.fail('deployment', rec, why, order=9)


# ---------------------------------------------------------------- command line


USAGE = 'usage: check-evidence.py <bundle.json> (--rpc <url> | --offline) [--json]'


def main(argv):
    file, rpc_url, offline, as_json = None, None, False, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == '--rpc' and i + 1 < len(argv):
            rpc_url = argv[i + 1]
            i += 1
        elif a.startswith('--rpc='):
            rpc_url = a[6:]
        elif a == '--offline':
            offline = True
        elif a == '--json':
            as_json = True
        elif a.startswith('-') or file is not None:
            sys.stderr.write(f'Error: unexpected argument {a}\n{USAGE}\n')
            return 2
        else:
            file = a
        i += 1
    if file is None or offline == (rpc_url is not None):
        sys.stderr.write(f'Error: give a bundle and exactly one of --rpc <url> or --offline\n{USAGE}\n')
        return 2
    try:
        with open(file, 'rb') as f:
            bundle = json.loads(f.read().decode('utf-8'))
    except (OSError, ValueError) as err:
        sys.stderr.write(f'Error: cannot read {file}: {err}\n')
        return 2

    res = Result()
    in_scope, redacted, reasons_ok = [], [], False
    try:
        check_structure(bundle)
    except Bad as err:
        res.fail('structure', err.record, err.why)
    else:
        reasons_ok = True
        in_scope, redacted = check_offline(bundle, res)
        if not offline:
            try:
                check_chain(bundle, Rpc(rpc_url), res)
            except Unreachable as err:
                sys.stderr.write(f'Error: the chain node cannot be reached: {err}\n')
                return 4
    if offline:
        for s in ('deployment', 'anchors', 'policy', 'summaries'):
            res.steps[s]['status'] = 'not-checked'
    first = res.first()
    ok = first is None
    out = {
        'bundle': file, 'ok': ok, 'offline': offline, 'steps': res.steps, 'inScope': in_scope, 'redacted': redacted,
        'reasons': reasons_summary(bundle) if reasons_ok else None,
        'warnings': [f'reason {c}: committed, not disclosed' for c in reasons_summary(bundle)['notDisclosed']] if reasons_ok else [],
        'failures': [{'record': r, 'message': m} for _, _, r, m in sorted(res.failures)],
        'firstFailure': {'record': first[0], 'message': first[1]} if first else None,
    }
    if as_json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print(f'{"ok" if ok else "FAILED"}: {file} ({len(in_scope)} entries in scope, {len(redacted)} redacted)'
              + (' — offline: the chain was NOT checked' if offline else ''))
        for w in out['warnings']:
            sys.stderr.write(f'Warning: {w}\n')
    if not ok:
        sys.stderr.write(f'Error: {first[1]}\n')
        return 7
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
