"""Minimal Yunhan MessagePack-RPC client for integration tests.

Uses Debian's python3-msgpack. Signs requests exactly as API.md says:
Signature = hex(HMAC-SHA256(private, method "\n" ts "\n" raw request bytes)).
"""
import hashlib
import hmac
import os
import socket
import time

import msgpack

# RetCodes (fsm/base/err.h)
OK = 0
EPROTO = 100
ETOOBIG = 101
EACTION = 110
EMISSING = 120
EINVAL = 121
EAUTH = 130
EPERM = 140
ENOTFOUND = 150
ECONFLICT = 160
EEXIST = 161
ESTATE = 162
EQUOTA = 170
EBALANCE = 171
ECAPACITY = 172
ETOKEN = 180
EUNKNOWN = 190
EUNAVAIL = 191
EBUSY = 192


class Error(Exception):
    pass


class Conn:
    def __init__(self, endpoint, pub=None, priv=None, timeout=10.0):
        host, port = endpoint.rsplit(":", 1)
        self.endpoint = endpoint
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.unpacker = msgpack.Unpacker(raw=False, max_buffer_size=64 << 20)
        self.pub, self.priv = pub, priv
        self.msgid = 0
        self.pending = {}

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def sign(self, method, raw, ts=None, priv=None, pub=None):
        ts = int(time.time()) if ts is None else ts
        key = (priv or self.priv).encode()
        msg = method.encode() + b"\n" + str(ts).encode() + b"\n" + raw
        sig = hmac.new(key, msg, hashlib.sha256).hexdigest()
        return {"PublicKey": pub or self.pub, "Timestamp": ts, "Signature": sig}

    def send(self, method, req, auth=True):
        self.msgid = (self.msgid + 1) & 0xFFFFFFFF
        raw = msgpack.packb(req, use_bin_type=True)
        params = [req]
        if auth and self.pub:
            params = [req, self.sign(method, raw)]
        self.sock.sendall(msgpack.packb([0, self.msgid, method, params], use_bin_type=True))
        return self.msgid

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv(self):
        """Next message from the server (None on EOF)."""
        while True:
            for msg in self.unpacker:
                return msg
            data = self.sock.recv(65536)
            if not data:
                return None
            self.unpacker.feed(data)

    def wait(self, msgid):
        while msgid not in self.pending:
            m = self.recv()
            if m is None:
                raise ConnectionError("connection closed")
            if m[0] == 1:
                self.pending[m[1]] = m
        return self.pending.pop(msgid)

    def call(self, method, req=None, auth=True):
        """Returns (retcode, map) where map is the result or error map."""
        m = self.wait(self.send(method, req or {}, auth))
        err, res = m[2], m[3]
        if err is not None:
            return err.get("RetCode", -1), err
        return res.get("RetCode", 0), res


class Client:
    """Tries endpoints in turn; retries 191 (no leader) until a deadline."""

    def __init__(self, endpoints, pub=None, priv=None, timeout=10.0):
        self.endpoints = [e for e in endpoints.split(",") if e]
        self.pub, self.priv, self.timeout = pub, priv, timeout
        self.conns = {}

    def conn(self, ep):
        c = self.conns.get(ep)
        if c is None:
            c = Conn(ep, self.pub, self.priv, self.timeout)
            self.conns[ep] = c
        return c

    def drop(self, ep):
        c = self.conns.pop(ep, None)
        if c:
            c.close()

    def call(self, method, req=None, endpoint=None, deadline=20.0, retry_unknown=True):
        end = time.time() + deadline
        eps = [endpoint] if endpoint else self.endpoints
        i = 0
        last = None
        while time.time() < end:
            ep = eps[i % len(eps)]
            i += 1
            try:
                rc, res = self.conn(ep).call(method, req)
            except (OSError, ConnectionError) as e:
                self.drop(ep)
                last = (EUNAVAIL, {"Message": str(e)})
                if req and "RequestToken" in req and retry_unknown:
                    time.sleep(0.1)
                    continue
                if not (req and "RequestToken" in req):
                    # a write without token may have happened: report unknown
                    return EUNKNOWN, {"Message": str(e)}
                continue
            if rc == EUNAVAIL or (rc == EUNKNOWN and retry_unknown and req and "RequestToken" in req):
                last = (rc, res)
                time.sleep(0.1)
                continue
            return rc, res
        return last if last else (EUNAVAIL, {"Message": "deadline"})

    def close(self):
        for ep in list(self.conns):
            self.drop(ep)


def env(path):
    """Parse a cluster's env file into a dict."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                k, v = line[7:].split("=", 1)
                out[k] = v.strip("'\"")
    return out


def token():
    return os.urandom(16).hex()


def call(cl, action, **kw):
    """cl.call(action, kw) with a fresh RequestToken unless kw has one."""
    kw.setdefault("RequestToken", token())
    return cl.call(action, kw)


class TAP:
    def __init__(self):
        self.failed = 0

    def ok(self, cond, name, why=""):
        if cond:
            print("ok - " + name, flush=True)
        else:
            self.failed += 1
            print("not ok - %s%s" % (name, " (%s)" % (why,) if why else ""), flush=True)
        return cond
