"""MessagePack-RPC client for yunhand with HMAC-SHA256 request signing.

  request  [0, msgid, method, [request_map, auth_map]]
  response [1, msgid, error, result]
  auth     {"PublicKey": str, "Timestamp": int, "Signature": hex}
  Signature = hex(HMAC-SHA256(PrivateKey, method "\\n" Timestamp "\\n"
                              raw msgpack bytes of request_map as sent))

The request map is packed once and those exact bytes are both signed and
embedded in the message.  Every socket operation has a deadline.
"""

import hashlib
import hmac
import itertools
import socket
import time

import msgpack

MAX_MESSAGE = 4 << 20

# RetCodes (fsm/base/err.h) whose meaning is "the request had no effect".
DEFINITE_FAIL = frozenset((100, 101, 110, 120, 121, 130, 140, 150, 160, 161,
                           162, 170, 171, 172, 180))
# Outcome unknown / no leader / busy: the request may or may not happen.
INDETERMINATE = frozenset((190, 191, 192))


class ApiError(Exception):
    """The server answered with an error map."""

    def __init__(self, retcode, message, action=""):
        Exception.__init__(self, "RetCode %s: %s" % (retcode, message))
        self.retcode = retcode
        self.message = message
        self.action = action

    def definite(self):
        """True if the request certainly had no effect."""
        return self.retcode in DEFINITE_FAIL

    def as_dict(self):
        return {"RetCode": self.retcode, "Message": self.message}


class TransportError(Exception):
    """Connect/send/receive failed or timed out: outcome unknown."""

    def __init__(self, what, connected=False):
        Exception.__init__(self, what)
        # False if the request was certainly never sent (connect failed).
        self.sent = connected


def sign(private_key, method, timestamp, raw):
    msg = (method.encode() + b"\n" + str(int(timestamp)).encode() + b"\n" +
           raw)
    return hmac.new(private_key.encode(), msg, hashlib.sha256).hexdigest()


def encode_request(msgid, method, request, public_key=None,
                   private_key=None, timestamp=None):
    """Returns (message bytes, raw request bytes)."""
    raw = msgpack.packb(request, use_bin_type=True)
    head = b"\x94" + msgpack.packb(0) + msgpack.packb(msgid) + \
        msgpack.packb(method, use_bin_type=True)
    if public_key is None:
        return head + b"\x91" + raw, raw
    ts = int(time.time()) if timestamp is None else int(timestamp)
    auth = {"PublicKey": public_key, "Timestamp": ts,
            "Signature": sign(private_key, method, ts, raw)}
    return head + b"\x92" + raw + msgpack.packb(auth, use_bin_type=True), raw


_msgids = itertools.count(1)


class Client:
    """One connection to one node; reconnects lazily after an error."""

    def __init__(self, host, port, public_key=None, private_key=None,
                 timeout=5.0, connect_timeout=2.0):
        self.host = host
        self.port = port
        self.public_key = public_key
        self.private_key = private_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.sock = None
        self.unpacker = None

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.unpacker = None

    def _connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(self.connect_timeout)
        try:
            s.connect((self.host, self.port))
        except OSError as e:
            s.close()
            raise TransportError("connect %s:%d: %s" %
                                 (self.host, self.port, e), False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False,
                                         max_buffer_size=MAX_MESSAGE)

    def call(self, method, request, auth=True, timeout=None):
        """Returns the result map; raises ApiError or TransportError."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if self.sock is None:
            self._connect()
        msgid = next(_msgids) & 0xFFFFFFFF
        if auth and self.public_key:
            msg, _raw = encode_request(msgid, method, request,
                                       self.public_key, self.private_key)
        else:
            msg, _raw = encode_request(msgid, method, request)
        try:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            self.sock.sendall(msg)
            while True:
                for obj in self.unpacker:
                    res = self._match(obj, msgid)
                    if res is not None:
                        return res[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("timed out")
                self.sock.settimeout(left)
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionResetError("connection closed by peer")
                self.unpacker.feed(data)
        except ApiError:
            raise
        except (OSError, ValueError, msgpack.UnpackException) as e:
            self.close()
            raise TransportError("%s %s:%d: %s" % (method, self.host,
                                                   self.port, e or
                                                   type(e).__name__), True)

    def _match(self, obj, msgid):
        if not isinstance(obj, (list, tuple)) or not obj:
            raise ValueError("bad message %r" % (obj,))
        if obj[0] == 2:
            return None  # notification (Watch): not ours
        if obj[0] != 1 or len(obj) != 4:
            raise ValueError("bad response %r" % (obj,))
        if obj[1] != msgid:
            # A response to an earlier request that timed out cannot come
            # on this connection: we close it after every timeout.
            raise ValueError("unexpected msgid %r (want %d)" % (obj[1],
                                                                msgid))
        err, result = obj[2], obj[3]
        if err is not None:
            if isinstance(err, dict):
                raise ApiError(err.get("RetCode"), err.get("Message", ""),
                               err.get("Action", ""))
            raise ApiError(None, str(err))
        if not isinstance(result, dict):
            raise ValueError("result is not a map: %r" % (result,))
        rc = result.get("RetCode", 0)
        if rc != 0:
            raise ApiError(rc, result.get("Message", ""),
                           result.get("Action", ""))
        return (result,)


def error_info(exc):
    """History "error" field for an exception."""
    if isinstance(exc, ApiError):
        return exc.as_dict()
    return str(exc)[:300]
