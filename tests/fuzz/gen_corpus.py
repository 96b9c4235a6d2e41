#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (run from the repo root with
Debian's python3-msgpack):  /usr/bin/python3 tests/fuzz/gen_corpus.py

prescan/<name>: byte 0 picks the reader's chunk size, the rest is the stream.
auth/<name>: a whole signed request, or 2-byte length + auth map + request
bytes (see fuzz_auth.c). Signatures use fuzz_auth.c's key."""
import hashlib
import hmac
import os

import msgpack

P = 'tests/fuzz/corpus/prescan'
A = 'tests/fuzz/corpus/auth'
pk = lambda o: msgpack.packb(o, use_bin_type=True)
def w(d, name, data):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)
def req(msgid, method, body, auth=None):
    raw = pk(body)
    # built by hand so that the request bytes are exactly raw
    head = b'\x94' + pk(0) + pk(msgid) + pk(method) + (b'\x91' if auth is None else b'\x92')
    return head + raw + (b'' if auth is None else pk(auth))
KEY = b'fuzz-private-key'
def signed(msgid, method, body, ts=1700000000, key=KEY, pubkey='AKID-fuzz'):
    raw = pk(body)
    sig = hmac.new(key, method.encode() + b'\n' + str(ts).encode() + b'\n' + raw, hashlib.sha256).hexdigest()
    return req(msgid, method, body, {'PublicKey': pubkey, 'Timestamp': ts, 'Signature': sig})

body = {'UserEmail': 'a@b.c', 'PassWord': 'pw', 'Limit': 20, 'UserIDs.0': 'u-1'}
# prescan corpus: byte 0 = chunk selector
p = {
 'req_plain': req(1, 'DescribeCluster', {}),
 'req_body': req(70000, 'CreateUser', body),
 'req_auth': signed(2, 'DescribeUser', body),
 'pipelined3': req(1, 'A', {}) + signed(2, 'B', body) + req(3, 'C', {'X': [1, 2, {'Y': None}]}),
 'resp_ok': pk([1, 5, None, {'RetCode': 0, 'Action': 'XResponse', 'Message': '', 'UserID': 'u-1'}]),
 'resp_err': pk([1, 6, {'RetCode': 150, 'Message': 'not found', 'Action': 'XResponse'}, None]),
 'notify_watch': pk([2, 'Watch', [{'Index': 12, 'Time': 1700000000, 'Action': 'CreateUser', 'RetCode': 0}]]),
 'all_formats': pk([None, True, False, 1, -1, 200, -200, 70000, -70000, 2**40, -2**40, 2**64 - 1,
                    1.5, b'bin', b'x' * 300, 'str', 's' * 40, 's' * 300, msgpack.ExtType(5, b'1'),
                    msgpack.ExtType(5, b'12'), msgpack.ExtType(5, b'1234'), msgpack.ExtType(5, b'12345678'),
                    msgpack.ExtType(5, b'0123456789abcdef'), msgpack.ExtType(5, b'abc'), list(range(20)),
                    {str(i): i for i in range(20)}]),
 'float32': b'\x92\xca\x3f\x80\x00\x00\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00',
 'depth16': b'\x91' * 16 + b'\x01',
 'depth16_req': b'\x94\x00\x01\xa1M\x91' + b'\x81\xa1k' * 14 + b'\x01',
 'depth17': b'\x91' * 17 + b'\x01',
 'depth10000': b'\x91' * 10000 + b'\x01',
 'array32_huge': b'\xdd\xff\xff\xff\xff',
 'map32_huge': b'\xdf\xff\xff\xff\xff',
 'str32_trunc': b'\xdb\x7f\xff\xff\xff',
 'bin32_trunc': b'\xc6\x00\x01\x00\x00',
 'ext32_trunc': b'\xc9\x00\x00\x10\x00\x05',
 'c1': b'\xc1',
 'c1_in_req': b'\x94\x00\x01\xa1M\x91\x81\xc1\x01',
 'req_trunc': req(9, 'CreateUser', body)[:-3],
 'req_trailing_garbage': req(9, 'M', {}) + b'\xc1\xc1',
 'bad_msgid': pk([0, -1, 'M', [{}]]),
 'bad_msgid_big': pk([0, 2**32, 'M', [{}]]),
 'bad_method': pk([0, 1, 7, [{}]]),
 'bad_params': pk([0, 1, 'M', {}]),
 'bad_param0': pk([0, 1, 'M', [[]]]),
 'bad_size': pk([0, 1, 'M']),
 'bad_auth': pk([0, 1, 'M', [{}, 'x']]),
 'nil_auth': pk([0, 1, 'M', [{}, None]]),
 'not_array': pk({'a': 1}),
 'type3': pk([3, 1, 'M', [{}]]),
 'too_big': b'\xda\x10\x00' + b'x' * 16,
 'map16_counts': b'\xde\x00\x02\x01\x02\xdc\x00\x01\xc0',
}
for i, (name, data) in enumerate(sorted(p.items())):
    w(P, name, bytes([i * 7 % 256]) + data)
# auth corpus: whole signed requests, and split inputs (2-byte auth length,
# auth map, request bytes)
def split(auth, raw):
    a = pk(auth)
    return len(a).to_bytes(2, 'big') + a + raw
raw = pk(body)
good_sig = hmac.new(KEY, b'DescribeUser\n1700000000\n' + raw, hashlib.sha256).hexdigest()
a = {
 'req_signed': signed(1, 'DescribeUser', body),
 'req_signed_empty': signed(2, 'DescribeCluster', {}),
 'req_signed_upper': req(3, 'M', {}, {'PublicKey': 'k', 'Timestamp': 5, 'Signature': 'AB' * 32}),
 'req_wrong_key': signed(4, 'DescribeUser', body, key=b'other'),
 'req_negative_ts': signed(5, 'DescribeUser', body, ts=-100),
 'req_big_ts': req(6, 'M', {}, {'PublicKey': 'k', 'Timestamp': 2**64 - 1, 'Signature': '0' * 64}),
 'req_str_ts': req(7, 'M', {}, {'PublicKey': 'k', 'Timestamp': '1700000000', 'Signature': '0' * 64}),
 'req_missing_pk': req(8, 'M', {}, {'Timestamp': 1, 'Signature': '0' * 64}),
 'req_missing_sig': req(9, 'M', {}, {'PublicKey': 'k', 'Timestamp': 1}),
 'req_short_sig': req(10, 'M', {}, {'PublicKey': 'k', 'Timestamp': 1, 'Signature': '0' * 63}),
 'req_nonhex_sig': req(11, 'M', {}, {'PublicKey': 'k', 'Timestamp': 1, 'Signature': 'g' * 64}),
 'req_bin_sig': req(12, 'M', {}, {'PublicKey': 'k', 'Timestamp': 1, 'Signature': b'0' * 64}),
 'req_long_pk': req(13, 'M', {}, {'PublicKey': 'k' * 100, 'Timestamp': 1, 'Signature': '0' * 64}),
 'req_pk_nul': req(14, 'M', {}, {'PublicKey': 'a\0b', 'Timestamp': 1, 'Signature': '0' * 64}),
 'split_good': split({'PublicKey': 'AKID-fuzz', 'Timestamp': 1700000000, 'Signature': good_sig}, raw),
 'split_empty_req': split({'PublicKey': 'k', 'Timestamp': 0, 'Signature': 'f' * 64}, b''),
 'split_not_map': split([1, 2, 3], raw),
 'split_nil_fields': split({'PublicKey': None, 'Timestamp': None, 'Signature': None}, raw),
 'split_dup_keys': b'\x00\x00' + b'\x84' + pk('PublicKey') + pk('a') + pk('PublicKey') + pk(1) + pk('Timestamp') + pk(1) + pk('Signature') + pk('0' * 64),
 'split_huge_len': b'\xff\xff' + b'\xdf\xff\xff\xff\xff',
 'split_c1': b'\x00\x01\xc1',
}
dup = a['split_dup_keys'][2:]
a['split_dup_keys'] = len(dup).to_bytes(2, 'big') + dup
for name, data in sorted(a.items()):
    w(A, name, data)
print(len(p), 'prescan seeds,', len(a), 'auth seeds')
