"""Checkers: each takes a history (or run data) and returns
{"valid": True | False | "unknown", "anomalies": [...], "stats": {...}}."""

import json
import os

from .. import history
from . import bankcheck, idemcheck, linear, logs, replicas, setcheck

WORKLOADS = ("register", "set", "idempotency", "bank", "replicas", "logs")


def check_events(workload, events, expect_nodes=None, max_steps=2000000):
    ops = history.pair(events)
    if workload == "register":
        return linear.check(ops, max_steps=max_steps)
    if workload == "set":
        return setcheck.check(ops, expect_nodes)
    if workload == "idempotency":
        return idemcheck.check(ops, expect_nodes)
    if workload == "bank":
        return bankcheck.check(ops, expect_nodes)
    raise ValueError("no history checker for workload %r" % workload)


def check_path(workload, path, expect_nodes=None, max_steps=2000000):
    """Check a history file (register/set/idempotency/bank), a replicas.json
    (replicas) or a run directory (logs; for replicas a run directory
    works too)."""
    if workload == "logs":
        if not os.path.isdir(path):
            raise ValueError("logs checker takes a run directory")
        return logs.check(path)
    if workload == "replicas":
        if os.path.isdir(path):
            path = os.path.join(path, "replicas.json")
        with open(path, encoding="utf-8") as fh:
            return replicas.check(json.load(fh))
    events = history.load(path)
    return check_events(workload, events, expect_nodes, max_steps)


def verdict_word(valid):
    if valid is True:
        return "valid"
    if valid is False:
        return "invalid"
    return "unknown"
