"""Userspace TCP proxy for node-to-node traffic (tc netem is not
available on these kernels).

In proxy mode every namespace DNATs its TCP connections to the other
nodes' API and raft ports to a listening port of this proxy on the bridge
address (netns.Net.enable_proxy); the proxy connects on to the real
destination.  It can then
  * delay every chunk by delay + U(0, jitter) (order kept per direction),
  * stall one direction between two nodes (a partition: bytes are held, not
    dropped, so the TCP stream stays intact, like retransmissions that
    succeed after the partition heals; a connection stalled for longer
    than max_stall_s is reset),
  * reset connections at random (reset_prob per chunk).
One thread, one selector; all sockets are non-blocking.
"""

import collections
import errno
import random
import selectors
import socket
import threading
import time

MAX_QUEUED = 8 << 20


class _Dir:
    """One direction of a proxied connection."""

    __slots__ = ("src", "dst", "from_node", "to_node", "queue", "queued",
                 "eof", "shut", "last_due", "stalled_since", "paused")

    def __init__(self, src, dst, from_node, to_node):
        self.src = src
        self.dst = dst
        self.from_node = from_node
        self.to_node = to_node
        self.queue = collections.deque()  # [due, bytes]
        self.queued = 0
        self.eof = False
        self.shut = False
        self.last_due = 0.0
        self.stalled_since = None
        self.paused = False


class _Conn:
    __slots__ = ("a", "b", "up", "down", "connected", "created", "closed",
                 "pair")

    def __init__(self, a, b, pair):
        self.a = a    # accepted (node src side)
        self.b = b    # upstream (node dst side)
        self.pair = pair
        self.up = _Dir(a, b, pair[0], pair[1])
        self.down = _Dir(b, a, pair[1], pair[0])
        self.connected = False
        self.created = time.monotonic()
        self.closed = False


class Proxy(threading.Thread):
    def __init__(self, listen_host, seed=0, log=None, max_stall_s=30.0):
        threading.Thread.__init__(self, name="proxy", daemon=True)
        self.listen_host = listen_host
        self.rng = random.Random(seed)
        self.log = log or (lambda m: None)
        self.max_stall_s = max_stall_s
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.routes = {}    # listening socket -> (src, dst, (host, port))
        self.conns = set()
        self.blocked = set()  # (from_node, to_node)
        self.delay = 0.0
        self.jitter = 0.0
        self.reset_prob = 0.0
        self.stop_ev = threading.Event()
        self.stats = collections.Counter()
        wr, ww = socket.socketpair()
        wr.setblocking(False)
        ww.setblocking(False)
        self.wake_r, self.wake_w = wr, ww
        self.sel.register(wr, selectors.EVENT_READ, ("wake", None))

    # -- configuration (any thread) --
    def add_route(self, listen_port, src, dst, target):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.listen_host, listen_port))
        ls.listen(64)
        ls.setblocking(False)
        with self.lock:
            self.routes[ls] = (src, dst, target)
            self.sel.register(ls, selectors.EVENT_READ, ("listen", ls))
        self._wake()

    def set_delay(self, delay_s, jitter_s=0.0, reset_prob=0.0):
        with self.lock:
            self.delay, self.jitter = delay_s, jitter_s
            self.reset_prob = reset_prob
        self._wake()

    def set_blocked(self, pairs):
        with self.lock:
            self.blocked = set(pairs)
        self._wake()

    def stop(self, timeout=5):
        self.stop_ev.set()
        self._wake()
        self.join(timeout)
        with self.lock:
            for c in list(self.conns):
                self._close(c)
            for ls in list(self.routes):
                try:
                    self.sel.unregister(ls)
                except (KeyError, ValueError):
                    pass
                ls.close()
            self.routes.clear()
        self.wake_r.close()
        self.wake_w.close()

    def _wake(self):
        try:
            self.wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass

    # -- loop --
    def run(self):
        while not self.stop_ev.is_set():
            timeout = self._service()
            try:
                events = self.sel.select(timeout)
            except OSError:
                continue
            with self.lock:
                for key, mask in events:
                    kind, obj = key.data
                    if kind == "wake":
                        try:
                            while self.wake_r.recv(4096):
                                pass
                        except (BlockingIOError, OSError):
                            pass
                    elif kind == "listen":
                        self._accept(obj)
                    elif kind == "conn":
                        sock, conn = obj
                        if conn.closed:
                            continue
                        if sock is conn.b and not conn.connected:
                            self._finish_connect(conn)
                        elif mask & selectors.EVENT_READ:
                            self._read(conn, sock)

    def _accept(self, ls):
        try:
            a, _addr = ls.accept()
        except OSError:
            return
        src, dst, target = self.routes[ls]
        a.setblocking(False)
        b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        b.setblocking(False)
        conn = _Conn(a, b, (src, dst))
        self.conns.add(conn)
        self.stats["accepted"] += 1
        err = b.connect_ex(target)
        if err not in (0, errno.EINPROGRESS):
            self._close(conn)
            return
        self.sel.register(b, selectors.EVENT_WRITE, ("conn", (b, conn)))

    def _finish_connect(self, conn):
        err = conn.b.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._close(conn)
            return
        conn.connected = True
        for s in (conn.a, conn.b):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sel.modify(conn.b, selectors.EVENT_READ, ("conn", (conn.b,
                                                                conn)))
        self.sel.register(conn.a, selectors.EVENT_READ, ("conn", (conn.a,
                                                                  conn)))

    def _read(self, conn, sock):
        d = conn.up if sock is conn.a else conn.down
        if d.queued > MAX_QUEUED:
            # Backpressure: stop reading until the queue drains.
            d.paused = True
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            d.eof = True
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            return
        if self.reset_prob and self.rng.random() < self.reset_prob:
            self.stats["resets"] += 1
            self._close(conn, rst=True)
            return
        now = time.monotonic()
        due = now + self.delay + (self.rng.uniform(0, self.jitter)
                                  if self.jitter else 0.0)
        due = max(due, d.last_due)
        d.last_due = due
        d.queue.append([due, data])
        d.queued += len(data)
        self.stats["bytes"] += len(data)

    def _service(self):
        """Deliver due data; returns the select timeout."""
        now = time.monotonic()
        nxt = 0.05
        with self.lock:
            for conn in list(self.conns):
                if conn.closed:
                    continue
                if not conn.connected:
                    if now - conn.created > 10:
                        self._close(conn)
                    continue
                for d in (conn.up, conn.down):
                    if (d.from_node, d.to_node) in self.blocked:
                        if d.queue:
                            if d.stalled_since is None:
                                d.stalled_since = now
                            elif now - d.stalled_since > self.max_stall_s:
                                self._close(conn, rst=True)
                                break
                        continue
                    d.stalled_since = None
                    while d.queue and d.queue[0][0] <= now:
                        due, data = d.queue[0]
                        try:
                            n = d.dst.send(data)
                        except BlockingIOError:
                            n = 0
                        except OSError:
                            self._close(conn)
                            break
                        d.queued -= n
                        if n < len(data):
                            d.queue[0][1] = data[n:]
                            nxt = 0.005
                            break
                        d.queue.popleft()
                    if conn.closed:
                        break
                    if d.paused and d.queued < MAX_QUEUED // 2:
                        d.paused = False
                        self.sel.register(d.src, selectors.EVENT_READ,
                                          ("conn", (d.src, conn)))
                    if d.queue:
                        nxt = min(nxt, max(0.001, d.queue[0][0] - now))
                    elif d.eof and not d.shut:
                        d.shut = True
                        try:
                            d.dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                if (not conn.closed and conn.up.shut and conn.down.shut):
                    self._close(conn)
        return nxt

    def _close(self, conn, rst=False):
        if conn.closed:
            return
        conn.closed = True
        for s in (conn.a, conn.b):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            try:
                if rst:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            except OSError:
                pass
        self.conns.discard(conn)


def port_of(src, dst, port, base=17000):
    """Proxy listening port for node src -> node dst:port."""
    return base + src * 100 + dst * 10 + (0 if port == 7400 else 1)

