"""Workloads: concurrent client workers against the real API.

Each workload writes its own history (history-<name>.jsonl).  A worker is
bound to a node (slot % nodes) and moves to the next node after a
transport error or "no leader"; after an indeterminate ("info") operation it
continues as a fresh process id, since the old operation stays pending.
"""

import itertools
import random
import threading
import time

from ..client import ApiError, TransportError, error_info

PASSWORD = "Jepsen-pass-1"
FINAL_PID_BASE = 1000000


class Proc:
    def __init__(self, wl, slot):
        self.wl = wl
        self.slot = slot
        self.pid = slot
        self.shift = 0
        self.clients = {}
        self.rng = random.Random("%s-%s-%d" % (wl.seed, wl.name, slot))
        self.seen = {}
        self.timeout = wl.op_timeout

    def node(self):
        ids = self.wl.ctx.client_nodes()
        return ids[(self.slot + self.shift) % len(ids)]

    def client(self, i):
        c = self.clients.get(i)
        if c is None:
            c = self.wl.ctx.cluster.client(i, timeout=self.timeout)
            self.clients[i] = c
        return c

    def close(self):
        for c in self.clients.values():
            c.close()
        self.clients = {}

    def crashed(self):
        self.pid = self.wl.new_pid()
        self.seen = {}

    def call(self, f, key, value, method, req, token=None, node=None):
        """Invoke, call, complete.  Returns (type, result or error)."""
        i = node if node is not None else self.node()
        name = "n%d" % i
        rec = self.wl.rec
        rec.record(self.pid, "invoke", f, key, value, name, token)
        try:
            res = self.client(i).call(method, req)
            return "ok", res, name
        except ApiError as e:
            if e.retcode in (191, 192):
                self.shift += 1
                time.sleep(0.1)  # no leader: do not spin
            if e.definite():
                rec.record(self.pid, "fail", f, key, value, name, token,
                           error=error_info(e))
                return "fail", e, name
            rec.record(self.pid, "info", f, key, value, name, token,
                       error=error_info(e))
            self.crashed()
            return "info", e, name
        except TransportError as e:
            self.shift += 1
            time.sleep(0.1)  # node down or unreachable: do not spin
            if not e.sent:
                # Never reached the server: certainly no effect.
                rec.record(self.pid, "fail", f, key, value, name, token,
                           error=error_info(e))
                return "fail", e, name
            rec.record(self.pid, "info", f, key, value, name, token,
                       error=error_info(e))
            self.crashed()
            return "info", e, name

    def ok(self, f, key, value, name, token=None):
        self.wl.rec.record(self.pid, "ok", f, key, value, name, token)


class Workload:
    name = "?"
    workers = 3
    op_timeout = 5.0
    think = (0.0, 0.01)

    def __init__(self, ctx, rec, seed, workers=None):
        if workers:
            self.workers = workers  # params "workers": {name: n}
        self.ctx = ctx
        self.rec = rec
        self.seed = seed
        self.tag = ctx.tag
        self._pids = itertools.count(self.workers)
        self._pid_lock = threading.Lock()
        self.values = itertools.count(1)

    def new_pid(self):
        with self._pid_lock:
            return next(self._pids)

    def setup(self):
        pass

    def quiesce(self):
        """After the workers stopped, before the replicas are compared."""

    def op(self, proc):
        raise NotImplementedError

    def worker(self, slot, stop):
        proc = Proc(self, slot)
        try:
            while not stop.is_set():
                self.op(proc)
                lo, hi = self.think
                if hi:
                    stop.wait(proc.rng.uniform(lo, hi))
        finally:
            proc.close()

    def final_read(self, node_id, list_fn):
        """Record a final read of @node_id (Consistency stale = that
        node's own state), listing with @list_fn(client) -> value."""
        pid = FINAL_PID_BASE + node_id
        name = "n%d" % node_id
        self.rec.record(pid, "invoke", "read", None, None, name)
        c = self.ctx.cluster.client(node_id, timeout=10)
        try:
            value = list_fn(c)
        except (ApiError, TransportError) as e:
            self.rec.record(pid, "fail", "read", None, None, name,
                            error=error_info(e))
            return False
        finally:
            c.close()
        self.rec.record(pid, "ok", "read", None, value, name)
        return True


def list_users(c, suffix, deadline_s=60):
    """Every user whose email ends with @suffix, from one node's local
    state (Consistency stale), paging by 100."""
    out = []
    offset = 0
    deadline = time.monotonic() + deadline_s
    while True:
        if time.monotonic() > deadline:
            raise TransportError("listing users took over %ss" % deadline_s,
                                 True)
        r = c.call("DescribeUser", {"Offset": offset, "Limit": 100,
                                    "Consistency": "stale"})
        infos = r.get("Infos") or []
        for u in infos:
            if str(u.get("UserEmail", "")).endswith(suffix):
                out.append(u)
        offset += len(infos)
        total = r.get("TotalCount", 0)
        if not infos or offset >= total:
            return out
