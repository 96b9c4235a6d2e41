"""Linearizability of a register with read / write / cas, per key.

Search: Wing & Gong's algorithm with Lowe's memoisation ("Testing for
linearizability", 2017): a doubly linked list of call/return entries in
time order; linearize a pending call when the model allows it, backtrack on
reaching a return whose operation is not yet linearized, and cache
(set of linearized ops, model state) configurations already explored.
The register is P-compositional, so every key is checked on its own.

Operation semantics (history.py):
  read  ok value v        - the register held v (null = never written)
  write ok value v        - took effect between invoke and completion
  cas   ok value [e, n]   - held e, now n
  fail                    - no effect: dropped
  info  write / cas       - may take effect at any time after invocation,
                            or never: no return entry
  read  fail / info       - no effect: dropped

Written values must be unique per key (the workload writes "process-counter"
values).  With unique values two pre-passes are exact, not heuristics:
  * a read of a value whose only write definitely failed is an anomaly
    ("failed value visible"); a read of a value nobody wrote is one too;
  * an info write/cas whose new value nobody observed (no ok read returned
    it, no remaining cas expected it) can be dropped: in any linearization
    containing it, nothing between it and the next effective write reads the
    register, so the linearization without it is valid as well.

Verdicts: True (linearizable), False (with the offending operation), or
"unknown" when a key's search exceeds @max_steps.
"""

CALL = 0
RET = 1


class _Entry:
    __slots__ = ("op", "kind", "prev", "next", "match")

    def __init__(self, op, kind):
        self.op = op
        self.kind = kind
        self.prev = None
        self.next = None
        self.match = None  # call -> its return entry (None if pending)


def _step(state, op):
    """Model step: (ok, new_state)."""
    f = op.f
    if f == "read":
        return (op.value == state, state)
    if f == "write":
        return (True, op.value)
    if f == "cas":
        e, n = op.value
        if state == e:
            return (True, n)
        return (False, state)
    raise ValueError("unknown f %r" % f)


def _norm(v):
    # JSON values are hashable only if scalar; lists (never register
    # values here) are turned into tuples to keep the cache working.
    if isinstance(v, list):
        return tuple(_norm(x) for x in v)
    return v


class _LinOp:
    __slots__ = ("id", "f", "value", "invoke", "complete", "src")

    def __init__(self, id_, src, value):
        self.id = id_
        self.src = src
        self.f = src.f
        self.value = value
        self.invoke = src.invoke_time
        self.complete = src.complete_time


def prepare_key(ops):
    """Filter one key's ops for the search; returns (lin_ops, anomalies,
    stats)."""
    anomalies = []
    writes_ok = {}
    writes_failed = {}
    writes_info = {}
    reads = []
    keep = []
    for op in ops:
        if op.f not in ("read", "write", "cas"):
            raise ValueError("register history has f=%r" % op.f)
        if op.f == "read":
            if op.type == "ok":
                reads.append(op)
                keep.append(op)
            continue
        if op.f == "cas":
            v = op.value if op.type == "ok" else op.invoke_value
            if not (isinstance(v, (list, tuple)) and len(v) == 2):
                raise ValueError("cas value must be [expected, new]: %r" %
                                 (v,))
            newv = _norm(v[1])
        else:
            newv = _norm(op.value if op.type == "ok" else op.invoke_value)
        if newv is None:
            raise ValueError("a write of null is not allowed (null is the "
                             "initial value): %r" % (op,))
        table = {"ok": writes_ok, "fail": writes_failed,
                 "info": writes_info}[op.type]
        for t in (writes_ok, writes_failed, writes_info):
            if newv in t:
                raise ValueError("value %r written twice (op %r and %r); "
                                 "values must be unique" % (newv, t[newv],
                                                            op))
        table[newv] = op
        if op.type != "fail":
            keep.append(op)
    # Reads of values that were never (possibly) written.
    for r in reads:
        v = _norm(r.value)
        if v is None or v in writes_ok or v in writes_info:
            continue
        if v in writes_failed:
            anomalies.append({
                "type": "failed-value-visible", "key": r.key,
                "message": "read returned %r, written only by a write that "
                           "definitely failed" % (r.value,),
                "read": r.describe(),
                "write": writes_failed[v].describe()})
        else:
            anomalies.append({
                "type": "phantom-read", "key": r.key,
                "message": "read returned %r, which no operation wrote" %
                           (r.value,),
                "read": r.describe()})
    # Build search ops; drop unobserved info writes/cas to a fixpoint.
    lin = []
    for op in keep:
        if op.f == "cas":
            v = op.value if op.type == "ok" else op.invoke_value
            value = (_norm(v[0]), _norm(v[1]))
        elif op.f == "write":
            value = _norm(op.value if op.type == "ok" else op.invoke_value)
        else:
            value = _norm(op.value)
        lo = _LinOp(0, op, value)
        if op.type != "ok":
            lo.complete = None
        lin.append(lo)
    dropped = 0
    while True:
        observed = set()
        for lo in lin:
            if lo.f == "read":
                observed.add(lo.value)
            elif lo.f == "cas":
                observed.add(lo.value[0])
        newlin = []
        for lo in lin:
            if lo.complete is None and lo.f in ("write", "cas"):
                nv = lo.value if lo.f == "write" else lo.value[1]
                if nv not in observed:
                    dropped += 1
                    continue
            newlin.append(lo)
        if len(newlin) == len(lin):
            break
        lin = newlin
    for i, lo in enumerate(lin):
        lo.id = i
    stats = {"ops": len(ops), "searched": len(lin),
             "dropped_unobserved_info": dropped}
    return lin, anomalies, stats


def wgl(lin, init=None, max_steps=2000000):
    """Returns (verdict, detail).  verdict True/False/"unknown"."""
    if not lin:
        return True, None
    entries = []
    for lo in lin:
        c = _Entry(lo, CALL)
        entries.append((lo.invoke, 0, lo.id, c))
        if lo.complete is not None:
            r = _Entry(lo, RET)
            c.match = r
            entries.append((lo.complete, 1, lo.id, r))
    # Calls sort before returns at equal times (treated as concurrent).
    entries.sort(key=lambda t: (t[0], t[1], t[2]))
    head = _Entry(None, CALL)
    prev = head
    remaining = 0
    for t in entries:
        e = t[3]
        prev.next = e
        e.prev = prev
        prev = e
        if e.kind == RET:
            remaining += 1

    def lift(e):
        e.prev.next = e.next
        if e.next is not None:
            e.next.prev = e.prev
        m = e.match
        if m is not None:
            m.prev.next = m.next
            if m.next is not None:
                m.next.prev = m.prev

    def unlift(e):
        m = e.match
        if m is not None:
            m.prev.next = m
            if m.next is not None:
                m.next.prev = m
        e.prev.next = e
        if e.next is not None:
            e.next.prev = e

    state = init
    linearized = 0
    cache = set()
    stack = []
    steps = 0
    best = (-1, None, None)
    e = head.next
    while True:
        if remaining == 0:
            return True, {"steps": steps}
        steps += 1
        if steps > max_steps:
            return "unknown", {"steps": steps,
                               "message": "search exceeded %d steps" %
                                          max_steps}
        if e is None:
            # Unreachable while a return entry remains in the list.
            raise AssertionError("ran off the entry list")
        if e.kind == CALL:
            ok, s2 = _step(state, e.op)
            if ok:
                l2 = linearized | (1 << e.op.id)
                ck = (l2, s2)
                if ck not in cache:
                    cache.add(ck)
                    stack.append((e, state))
                    state = s2
                    linearized = l2
                    lift(e)
                    if e.match is not None:
                        remaining -= 1
                    e = head.next
                    continue
            e = e.next
        else:
            if len(stack) > best[0]:
                best = (len(stack), e.op, state)
            if not stack:
                return False, _explain(best, lin)
            e, state = stack.pop()
            linearized &= ~(1 << e.op.id)
            unlift(e)
            if e.match is not None:
                remaining += 1
            e = e.next


def _explain(best, lin):
    depth, op, state = best
    return {"stuck_op": op.src.describe(),
            "linearized_before": depth,
            "state_then": state,
            "message": "no linearization: after the longest valid prefix "
                       "(%d ops) the register held %r and %s %r (process "
                       "%d, completed at %d) cannot be placed" %
                       (depth, state, op.f, op.src.value, op.src.process,
                        op.src.complete_time)}


def check(ops, max_steps=2000000):
    """Check a paired register history.  Returns a result dict."""
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    anomalies = []
    unknown = []
    stats = {"keys": len(by_key), "ops": len(ops), "ok": 0, "fail": 0,
             "info": 0, "searched": 0, "dropped_unobserved_info": 0,
             "steps": 0}
    for op in ops:
        stats[op.type] += 1
    for key in sorted(by_key, key=lambda k: (k is None, str(k))):
        lin, an, st = prepare_key(by_key[key])
        stats["searched"] += st["searched"]
        stats["dropped_unobserved_info"] += st["dropped_unobserved_info"]
        anomalies.extend(an)
        verdict, detail = wgl(lin, None, max_steps)
        if detail:
            stats["steps"] += detail.get("steps", 0)
        if verdict is False:
            a = {"type": "nonlinearizable", "key": key}
            a.update(detail)
            anomalies.append(a)
        elif verdict == "unknown":
            unknown.append({"key": key, "message": detail["message"]})
    if anomalies:
        valid = False
    elif unknown:
        valid = "unknown"
    else:
        valid = True
    return {"valid": valid, "anomalies": anomalies, "unknown": unknown,
            "stats": stats}
