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
Bank (the final states are changed on every node alike, keeping each
transaction chain consistent, so only the accounting can tell):
  lost-recharge   an acked recharge's transaction removed (later balances
                  and the final balance lowered by its amount).
  double-recharge an acked recharge applied a second time (appended).
  money-created   from one transaction on, every balance of a tenant and its
                  final balance raised: one step of the chain creates money.
  read-created    a balance read returns more than any prefix of the log.
  stale-read      a balance read returns a balance that only positions
                  before an operation acked before the read began have.
  failed-visible  an acked single-attempt recharge turned into a definite
                  failure (its transaction stays).
  double-charge   a billing period of a resource charged again (appended).
  lost-order      an acked renewal's debit removed.
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


def _bank_finals(events):
    return [i for i, e in enumerate(events) if e["f"] == "final" and
            e["type"] == "ok" and isinstance(e.get("value"), dict)]


def _bank_ref(events):
    fin = _bank_finals(events)
    return fin, (events[fin[0]]["value"] if fin else None)


def _bank_remove(events, tenant, match):
    """Remove the first transaction of @tenant matching @match from every
    final state, keeping the chain consistent."""
    ev = copy.deepcopy(events)
    for i in _bank_finals(ev):
        v = ev[i]["value"]
        txns = v["txns"][tenant]
        j = next(k for k, t in enumerate(txns) if match(t))
        gone = txns.pop(j)
        for t in txns[j:]:
            t["balance"] -= gone["amount"]
        v["balances"][tenant] -= gone["amount"]
    return ev


def _bank_append(events, tenant, t):
    ev = copy.deepcopy(events)
    for i in _bank_finals(ev):
        v = ev[i]["value"]
        txns = v["txns"][tenant]
        nt = dict(t, id="txn-99999999",
                  balance=(txns[-1]["balance"] if txns else 0) + t["amount"])
        txns.append(nt)
        v["balances"][tenant] = nt["balance"]
    return ev


def _bank_recharges(events):
    """{serial: (tenant, [ops])} of the recharges."""
    out = {}
    for o in _ops(events):
        if o["f"] == "recharge":
            ev = events[o["inv"]]
            out.setdefault(ev["value"]["serial"], (ev["key"], []))[1].append(
                o)
    return out


def _bank_acked(events):
    return sorted((sn, t) for sn, (t, ops) in _bank_recharges(events).items()
                  if any(o["type"] == "ok" for o in ops))


def bank_lost_recharge(events, rng):
    acked = _bank_acked(events)
    if not acked or not _bank_finals(events):
        return None
    sn, tenant = rng.choice(acked)
    return _bank_remove(events, tenant, lambda t: t.get("serial") == sn)


def bank_double_recharge(events, rng):
    acked = _bank_acked(events)
    fin, ref = _bank_ref(events)
    if not acked or ref is None:
        return None
    sn, tenant = rng.choice(acked)
    t = next(x for x in ref["txns"][tenant] if x.get("serial") == sn)
    return _bank_append(events, tenant, t)


def bank_money_created(events, rng):
    fin, ref = _bank_ref(events)
    if ref is None:
        return None
    cands = [(u, j) for u, txns in sorted(ref["txns"].items())
             for j in range(len(txns))]
    if not cands:
        return None
    u, j = rng.choice(cands)
    x = rng.randint(1, 1000)
    ev = copy.deepcopy(events)
    for i in fin:
        v = ev[i]["value"]
        for t in v["txns"][u][j:]:
            t["balance"] += x
        v["balances"][u] += x
    return ev


def bank_read_created(events, rng):
    fin, ref = _bank_ref(events)
    reads = [o for o in _ops(events) if o["f"] == "balance" and
             o["type"] == "ok"]
    if ref is None or not reads:
        return None
    r = rng.choice(reads)
    u = events[r["inv"]]["key"]
    top = max([0] + [t["balance"] for t in ref["txns"].get(u, [])])
    ev = copy.deepcopy(events)
    ev[r["comp"]]["value"] = top + 1 + rng.randint(0, 100)
    return ev


def bank_stale_read(events, rng):
    from .checkers import bankcheck
    from . import history
    fin, ref = _bank_ref(events)
    if ref is None:
        return None
    ops = history.pair(events)
    p = bankcheck.parse(ops)
    comp = {}
    for o in _ops(events):
        if o["f"] == "balance" and o["type"] == "ok":
            comp[(events[o["inv"]]["process"], o["t0"])] = o["comp"]
    cands = []
    for u, txns in sorted(ref["txns"].items()):
        b = [0] + [t["balance"] for t in txns]
        lows, highs = bankcheck.bounds(p, u, bankcheck.positions(p, txns))
        w = bankcheck.Windows(lows, highs, len(txns))
        for r in p["reads"]:
            if r.key != u or r.type != "ok":
                continue
            lo = w.lo(r.invoke_time)
            later = set(b[lo:])
            olds = [x for x in b[:lo] if x not in later]
            if olds:
                cands.append((comp[(r.process, r.invoke_time)], olds))
    if not cands:
        return None
    idx, olds = rng.choice(cands)
    ev = copy.deepcopy(events)
    ev[idx]["value"] = rng.choice(olds)
    return ev


def bank_failed_visible(events, rng):
    cands = [ops[0] for sn, (u, ops) in
             sorted(_bank_recharges(events).items())
             if len(ops) == 1 and ops[0]["type"] == "ok" and
             not sn.startswith("init")]
    if not cands:
        return None
    o = rng.choice(cands)
    ev = copy.deepcopy(events)
    c = ev[o["comp"]]
    c["type"] = "fail"
    c["value"] = ev[o["inv"]]["value"]
    c["error"] = {"RetCode": 121, "Message": "injected"}
    return ev


def bank_double_charge(events, rng):
    fin, ref = _bank_ref(events)
    if ref is None:
        return None
    cands = [(u, t) for u, txns in sorted(ref["txns"].items())
             for t in txns if t.get("type") == "Charge"]
    if not cands:
        return None
    u, t = rng.choice(cands)
    return _bank_append(events, u, t)


def bank_lost_order(events, rng):
    orders = [o for o in _ops(events) if o["f"] == "renew" and
              o["type"] == "ok"]
    if not orders or not _bank_finals(events):
        return None
    o = rng.choice(orders)
    oid = o["value"]["order"]
    u = events[o["inv"]]["key"]
    return _bank_remove(events, u, lambda t: t.get("order") == oid)


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
    "bank": {
        "lost-recharge": bank_lost_recharge,
        "double-recharge": bank_double_recharge,
        "money-created": bank_money_created,
        "read-created": bank_read_created,
        "stale-read": bank_stale_read,
        "failed-visible": bank_failed_visible,
        "double-charge": bank_double_charge,
        "lost-order": bank_lost_order,
    },
}
