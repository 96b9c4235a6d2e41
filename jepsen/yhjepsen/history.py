"""Histories: JSON lines, one per event.

Each event is
  {"process": int, "type": "invoke"|"ok"|"fail"|"info", "f": str,
   "key": str|null, "value": any, "time": ns since start, "node": str,
   "token": str|null}
and, on fail/info completions only, an extra "error" field ({"RetCode": int,
"Message": str} or a transport error string) that explains the outcome.

type "fail" means the server definitely rejected the request (no effect);
"info" means the outcome is unknown (timeout, reset, RetCode 190/191, ...):
the operation may or may not have taken effect, now or later.  A process
has at most one operation in flight; after an "info" the worker continues
as a new process (Jepsen's convention), because the old operation stays
pending forever.
"""

import json
import threading
import time

TYPES = ("invoke", "ok", "fail", "info")


class HistoryError(Exception):
    """The history file is malformed (not a checker verdict)."""


class Recorder:
    """Thread-safe history writer: appends to a JSON-lines file and keeps
    the events in memory.  Times are monotonic ns since @t0_ns."""

    def __init__(self, path, t0_ns=None):
        self.path = path
        self.t0 = time.monotonic_ns() if t0_ns is None else t0_ns
        self.lock = threading.Lock()
        self.events = []
        self.fh = open(path, "w", encoding="utf-8")

    def now(self):
        return time.monotonic_ns() - self.t0

    def record(self, process, type_, f, key, value, node, token=None,
               error=None):
        if type_ not in TYPES:
            raise ValueError("bad event type %r" % (type_,))
        ev = {"process": process, "type": type_, "f": f, "key": key,
              "value": value, "time": 0, "node": node, "token": token}
        if error is not None:
            ev["error"] = error
        with self.lock:
            # Take the time under the lock so the file is in time order.
            ev["time"] = self.now()
            self.events.append(ev)
            if self.fh is not None:
                self.fh.write(json.dumps(ev, sort_keys=True) + "\n")
                self.fh.flush()
        return ev

    def close(self):
        with self.lock:
            if self.fh is not None:
                self.fh.close()
                self.fh = None


def load(path):
    """Read a history file; raises HistoryError with the line number."""
    events = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError as e:
                raise HistoryError("%s:%d: not JSON: %s" % (path, n, e))
            validate_event(ev, "%s:%d" % (path, n))
            events.append(ev)
    return events


def validate_event(ev, where="event"):
    if not isinstance(ev, dict):
        raise HistoryError("%s: not an object" % where)
    for k in ("process", "type", "f", "time"):
        if k not in ev:
            raise HistoryError("%s: missing %r" % (where, k))
    if not isinstance(ev["process"], int) or isinstance(ev["process"], bool):
        raise HistoryError("%s: process must be an int" % where)
    if ev["type"] not in TYPES:
        raise HistoryError("%s: bad type %r" % (where, ev["type"]))
    if not isinstance(ev["f"], str):
        raise HistoryError("%s: f must be a string" % where)
    if not isinstance(ev["time"], int) or ev["time"] < 0:
        raise HistoryError("%s: time must be a non-negative int" % where)
    if ev.get("key") is not None and not isinstance(ev["key"], str):
        raise HistoryError("%s: key must be a string or null" % where)


class Op:
    """An invocation paired with its completion."""

    __slots__ = ("index", "process", "f", "key", "invoke_value", "type",
                 "value", "invoke_time", "complete_time", "node", "token",
                 "error")

    def __init__(self, index, inv):
        self.index = index
        self.process = inv["process"]
        self.f = inv["f"]
        self.key = inv.get("key")
        self.invoke_value = inv.get("value")
        self.type = "info"           # until completed
        self.value = inv.get("value")
        self.invoke_time = inv["time"]
        self.complete_time = None    # None = never completed (info)
        self.node = inv.get("node")
        self.token = inv.get("token")
        self.error = None

    def describe(self):
        d = {"process": self.process, "f": self.f, "key": self.key,
             "type": self.type, "value": self.value,
             "invoke_time": self.invoke_time,
             "complete_time": self.complete_time, "node": self.node}
        if self.token is not None:
            d["token"] = self.token
        if self.error is not None:
            d["error"] = self.error
        return d

    def __repr__(self):
        return "Op(%r)" % (self.describe(),)


def pair(events):
    """Pair invocations with completions.  Returns the list of Op in
    invocation order.  An invocation left without completion is info.
    An "info" completion keeps complete_time None: the operation may take
    effect at any later time."""
    ops = []
    open_ = {}
    for ev in events:
        p = ev["process"]
        if ev["type"] == "invoke":
            if p in open_:
                raise HistoryError(
                    "process %d invoked %s at %d while its %s (t=%d) was "
                    "still open" % (p, ev["f"], ev["time"], open_[p].f,
                                    open_[p].invoke_time))
            op = Op(len(ops), ev)
            ops.append(op)
            open_[p] = op
        else:
            op = open_.pop(p, None)
            if op is None:
                raise HistoryError("process %d completed %s at %d without "
                                   "an invocation" % (p, ev["f"], ev["time"]))
            if op.f != ev["f"]:
                raise HistoryError("process %d: completion f %r does not "
                                   "match invocation f %r" %
                                   (p, ev["f"], op.f))
            if ev["time"] < op.invoke_time:
                raise HistoryError("process %d: completion before "
                                   "invocation" % p)
            op.type = ev["type"]
            op.error = ev.get("error")
            if ev["type"] == "info":
                op.complete_time = None
            else:
                op.complete_time = ev["time"]
                op.value = ev.get("value")
            if ev.get("node") is not None:
                op.node = ev["node"]
    return ops


def write_jsonl(path, events):
    with open(path, "w", encoding="utf-8") as fh:
        for ev in events:
            fh.write(json.dumps(ev, sort_keys=True) + "\n")
