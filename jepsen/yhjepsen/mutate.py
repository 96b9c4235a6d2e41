"""Anomaly injection for the checker mutation test.

Each mutation takes a clean history (list of events) and a Random, and
returns a new history that contains a genuine anomaly -- chosen from the
history's real-time order alone, so that no linearizable explanation can
exist -- or None when the history has no place for it.

Register (values are unique per key):
  stale-read      W1 -> W2 -> R in real time (each completes before the next
                  is invoked), R now returns W1's value.
  lost-ack        a read that followed an acked write W and returned W's
                  value now returns the value W overwrote (written by a W0
                  that completed before W was invoked).
  failed-visible  an acked write whose value was read is turned into a
                  definite failure.
  reordered-write two acked writes W1 -> W2 swap their values, where some
                  read returned W1's value before W2 was invoked.
Set:
  lost-ack        an acked element removed from one node's final read.
  duplicate       an acked element listed twice in one node's final read.
  failed-visible  an acked add turned into a definite failure (it stays in
                  the final reads).
Idempotency:
  lost-ack        an acked token's user removed from one final read.
  duplicate       a second user for an acked token in one final read.
  duplicate-retry a retry of a token answered "already exists" (161).
  failed-visible  every attempt of an acked token turned into a definite
                  failure.
"""

import copy


def _pairs(events):
    """[(invoke_idx, complete_idx or None)] in invocation order."""
    out = []
    open_ = {}
    for i, ev in enumerate(events):
        if ev["type"] == "invoke":
            open_[ev["process"]] = len(out)
            out.append([i, None])
        else:
            j = open_.pop(ev["process"])
            out[j][1] = i
    return out


def _ops(events):
    res = []
    for inv, comp in _pairs(events):
        ev = events[inv]
        c = events[comp] if comp is not None else None
        res.append({"inv": inv, "comp": comp, "f": ev["f"],
                    "key": ev.get("key"),
                    "type": c["type"] if c else "info",
                    "t0": ev["time"],
                    "t1": c["time"] if c and c["type"] != "info" else None,
                    "value": (c.get("value") if c and c["type"] == "ok"
                              else ev.get("value"))})
    return res


def _written(op):
    if op["f"] == "write":
        return op["value"]
    if op["f"] == "cas":
        return op["value"][1]
    return None


def _writes_ok(ops, key=None):
    return [o for o in ops if o["f"] in ("write", "cas") and
            o["type"] == "ok" and (key is None or o["key"] == key)]


def reg_stale_read(events, rng):
    ops = _ops(events)
    cands = []
    reads = [o for o in ops if o["f"] == "read" and o["type"] == "ok"]
    for r in reads:
        ws = [w for w in _writes_ok(ops, r["key"]) if w["t1"] < r["t0"]]
        for w2 in ws:
            for w1 in ws:
                if w1["t1"] < w2["t0"] and _written(w1) != r["value"]:
                    cands.append((r, w1))
        if len(cands) > 200:
            break
    if not cands:
        return None
    r, w1 = rng.choice(cands)
    ev = copy.deepcopy(events)
    ev[r["comp"]]["value"] = _written(w1)
    return ev


def reg_lost_ack(events, rng):
    ops = _ops(events)
    cands = []
    for w in _writes_ok(ops):
        v = _written(w)
        prior = [w0 for w0 in _writes_ok(ops, w["key"])
                 if w0["t1"] < w["t0"]]
        if not prior:
            continue
        w0 = max(prior, key=lambda o: o["t1"])
        for r in ops:
            if (r["f"] == "read" and r["type"] == "ok" and
                    r["key"] == w["key"] and r["t0"] > w["t1"] and
                    r["value"] == v):
                cands.append((r, _written(w0)))
    if not cands:
        return None
    r, old = rng.choice(cands)
    ev = copy.deepcopy(events)
    ev[r["comp"]]["value"] = old
    return ev


def reg_failed_visible(events, rng):
    ops = _ops(events)
    read_vals = {(o["key"], o["value"]) for o in ops
                 if o["f"] == "read" and o["type"] == "ok"}
    cands = [w for w in ops if w["f"] == "write" and w["type"] == "ok" and
             (w["key"], w["value"]) in read_vals]
    if not cands:
        return None
    w = rng.choice(cands)
    ev = copy.deepcopy(events)
    ev[w["comp"]]["type"] = "fail"
    ev[w["comp"]]["error"] = {"RetCode": 121, "Message": "injected"}
    return ev


def reg_reordered_write(events, rng):
    ops = _ops(events)
    cands = []
    for w1 in ops:
        if w1["f"] != "write" or w1["type"] != "ok":
            continue
        for w2 in ops:
            if (w2["f"] != "write" or w2["type"] != "ok" or
                    w2["key"] != w1["key"] or not w1["t1"] < w2["t0"]):
                continue
            if any(r["f"] == "read" and r["type"] == "ok" and
                   r["key"] == w1["key"] and r["value"] == w1["value"] and
                   r["t1"] < w2["t0"] for r in ops):
                cands.append((w1, w2))
        if len(cands) > 200:
            break
    if not cands:
        return None
    w1, w2 = rng.choice(cands)
    ev = copy.deepcopy(events)
    v1, v2 = w1["value"], w2["value"]
    for idx in (w1["inv"], w1["comp"]):
        ev[idx]["value"] = v2
    for idx in (w2["inv"], w2["comp"]):
        ev[idx]["value"] = v1
    return ev


def _final_reads(events):
    return [i for i, e in enumerate(events)
            if e["f"] == "read" and e["type"] == "ok" and
            isinstance(e.get("value"), list)]


def set_lost_ack(events, rng):
    ops = _ops(events)
    acked = [o["value"] for o in ops if o["f"] == "add" and
             o["type"] == "ok"]
    reads = _final_reads(events)
    if not acked or not reads:
        return None
    el = rng.choice(acked)
    i = rng.choice(reads)
    ev = copy.deepcopy(events)
    ev[i]["value"] = [x for x in ev[i]["value"] if x != el]
    return ev


def set_duplicate(events, rng):
    ops = _ops(events)
    acked = [o["value"] for o in ops if o["f"] == "add" and
             o["type"] == "ok"]
    reads = _final_reads(events)
    if not acked or not reads:
        return None
    el = rng.choice(acked)
    i = rng.choice(reads)
    ev = copy.deepcopy(events)
    ev[i]["value"] = sorted(ev[i]["value"] + [el])
    return ev


def set_failed_visible(events, rng):
    ops = _ops(events)
    acked = [o for o in ops if o["f"] == "add" and o["type"] == "ok"]
    if not acked:
        return None
    o = rng.choice(acked)
    ev = copy.deepcopy(events)
    ev[o["comp"]]["type"] = "fail"
    ev[o["comp"]]["error"] = {"RetCode": 121, "Message": "injected"}
    return ev


def _idem_acked(events):
    ops = _ops(events)
    acked = {}
    for o in ops:
        if o["f"] == "create" and o["type"] == "ok":
            acked[o["key"]] = o["value"]
    return ops, acked


def idem_lost_ack(events, rng):
    _ops_, acked = _idem_acked(events)
    reads = _final_reads(events)
    if not acked or not reads:
        return None
    tok = rng.choice(sorted(acked))
    email = acked[tok]["email"]
    i = rng.choice(reads)
    ev = copy.deepcopy(events)
    ev[i]["value"] = [x for x in ev[i]["value"] if x[0] != email]
    return ev


def idem_duplicate(events, rng):
    _ops_, acked = _idem_acked(events)
    reads = _final_reads(events)
    if not acked or not reads:
        return None
    tok = rng.choice(sorted(acked))
    i = rng.choice(reads)
    ev = copy.deepcopy(events)
    ev[i]["value"] = ev[i]["value"] + [[acked[tok]["email"],
                                        "u-duplicate"]]
    return ev


def idem_duplicate_retry(events, rng):
    ops = _ops(events)
    by_tok = {}
    for o in ops:
        if o["f"] == "create":
            by_tok.setdefault(o["key"], []).append(o)
    cands = [ats[-1] for ats in by_tok.values()
             if len(ats) > 1 and ats[-1]["type"] == "ok"]
    if not cands:
        return None
    o = rng.choice(cands)
    ev = copy.deepcopy(events)
    c = ev[o["comp"]]
    c["type"] = "fail"
    c["value"] = ev[o["inv"]]["value"]
    c["error"] = {"RetCode": 161, "Message": "already exists"}
    return ev


def idem_failed_visible(events, rng):
    ops, acked = _idem_acked(events)
    if not acked:
        return None
    tok = rng.choice(sorted(acked))
    ev = copy.deepcopy(events)
    for o in ops:
        if o["f"] == "create" and o["key"] == tok:
            c = ev[o["comp"]] if o["comp"] is not None else None
            if c is None:
                continue
            c["type"] = "fail"
            c["value"] = ev[o["inv"]]["value"]
            c["error"] = {"RetCode": 121, "Message": "injected"}
    return ev


MUTATIONS = {
    "register": {
        "stale-read": reg_stale_read,
        "lost-ack": reg_lost_ack,
        "failed-visible": reg_failed_visible,
        "reordered-write": reg_reordered_write,
    },
    "set": {
        "lost-ack": set_lost_ack,
        "duplicate": set_duplicate,
        "failed-visible": set_failed_visible,
    },
    "idempotency": {
        "lost-ack": idem_lost_ack,
        "duplicate": idem_duplicate,
        "duplicate-retry": idem_duplicate_retry,
        "failed-visible": idem_failed_visible,
    },
}
