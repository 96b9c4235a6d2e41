"""Client signing and framing.  The server side here is a plain socket in
the test that records what it receives and answers with canned bytes: it
tests the client's encoding, error mapping and timeouts, not yunhand."""

import hashlib
import hmac
import os
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import msgpack  # noqa: E402

from yhjepsen import client  # noqa: E402


class SignTest(unittest.TestCase):
    def test_signature_bytes(self):
        raw = msgpack.packb({"Limit": 20, "UserIDs.0": "u-1"})
        # The exact bytes of the map, as api/wire tests use them.
        self.assertEqual(raw, b"\x82\xa5Limit\x14\xa9UserIDs.0\xa3u-1")
        want = hmac.new(b"secret-key",
                        b"DescribeUser\n1700000000\n" + raw,
                        hashlib.sha256).hexdigest()
        self.assertEqual(client.sign("secret-key", "DescribeUser",
                                     1700000000, raw), want)
        self.assertEqual(len(want), 64)
        # Known answer, computed independently of the code under test.
        self.assertEqual(
            hmac.new(b"k", b"M\n1\n\x80", hashlib.sha256).hexdigest(),
            client.sign("k", "M", 1, b"\x80"))

    def test_encode_request_embeds_signed_bytes(self):
        req = {"UserEmail": "a@b", "PassWord": "x" * 8, "Limit": 3}
        msg, raw = client.encode_request(7, "CreateUser", req, "PUB",
                                         "PRIV", timestamp=1234)
        obj = msgpack.unpackb(msg, raw=False)
        self.assertEqual(obj[:3], [0, 7, "CreateUser"])
        self.assertEqual(obj[3][0], req)
        auth = obj[3][1]
        self.assertEqual(auth["PublicKey"], "PUB")
        self.assertEqual(auth["Timestamp"], 1234)
        self.assertEqual(auth["Signature"],
                         client.sign("PRIV", "CreateUser", 1234, raw))
        # raw must be a substring of the message, byte for byte.
        self.assertIn(raw, msg)
        msg2, _ = client.encode_request(8, "DescribeCluster", {})
        self.assertEqual(msgpack.unpackb(msg2), [0, 8, "DescribeCluster",
                                                 [{}]])


class FakeServer(threading.Thread):
    """Answers each request with @reply(request) (bytes or None = stay
    silent)."""

    def __init__(self, reply):
        threading.Thread.__init__(self, daemon=True)
        self.reply = reply
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.got = []

    def run(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            up = msgpack.Unpacker(raw=False)
            try:
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    up.feed(d)
                    for m in up:
                        self.got.append(m)
                        out = self.reply(m)
                        if out is None:
                            continue
                        if out == b"close":
                            c.close()
                            raise OSError
                        c.sendall(out)
            except OSError:
                pass
            c.close()


class CallTest(unittest.TestCase):
    def serve(self, reply):
        s = FakeServer(reply)
        s.start()
        self.addCleanup(s.ls.close)
        return s

    def test_ok_error_and_notification(self):
        def reply(m):
            if m[2] == "Fail":
                return msgpack.packb([1, m[1], {"RetCode": 160,
                                                "Message": "conflict"},
                                      None])
            # A notification first, then the result.
            return (msgpack.packb([2, "Watch", [{"Index": 1}]]) +
                    msgpack.packb([1, m[1], None, {"RetCode": 0, "X": 1}]))
        s = self.serve(reply)
        c = client.Client("127.0.0.1", s.port, "P", "K", timeout=2)
        self.assertEqual(c.call("Ok", {})["X"], 1)
        with self.assertRaises(client.ApiError) as e:
            c.call("Fail", {"A": 1})
        self.assertEqual(e.exception.retcode, 160)
        self.assertTrue(e.exception.definite())
        self.assertEqual(c.call("Ok", {})["X"], 1)  # connection reused
        self.assertEqual(len(s.got), 3)
        c.close()

    def test_timeout_and_reset_are_transport_errors(self):
        s = self.serve(lambda m: None if m[2] == "Silent" else b"close")
        c = client.Client("127.0.0.1", s.port, timeout=0.3)
        t = time.monotonic()
        with self.assertRaises(client.TransportError) as e:
            c.call("Silent", {})
        self.assertLess(time.monotonic() - t, 2)
        self.assertTrue(e.exception.sent)
        with self.assertRaises(client.TransportError):
            c.call("Reset", {})
        c.close()

    def test_connect_refused_is_not_sent(self):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        port = ls.getsockname()[1]
        ls.close()
        c = client.Client("127.0.0.1", port, timeout=0.5)
        with self.assertRaises(client.TransportError) as e:
            c.call("X", {})
        self.assertFalse(e.exception.sent)

    def test_indeterminate_codes(self):
        for rc in (190, 191, 192):
            self.assertFalse(client.ApiError(rc, "").definite())
        for rc in (120, 121, 130, 140, 150, 160, 180):
            self.assertTrue(client.ApiError(rc, "").definite())


if __name__ == "__main__":
    unittest.main()
