"""Simulated clean histories for the checker self-tests.

A linearizable in-memory system with concurrent processes: every operation
takes effect atomically at a random point between its invocation and its
completion.  Some operations end "info" (their effect happened or not, 50/50)
and some fail definitely (no effect).  The resulting histories are valid by
construction; mutate.py injects anomalies into them.
"""

import heapq
import random


class _Sim:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.events = []
        self.heap = []
        self.seq = 0

    def at(self, t, fn, *args):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, fn, args))

    def emit(self, t, process, type_, f, key, value, node, token=None,
             error=None):
        ev = {"process": process, "type": type_, "f": f, "key": key,
              "value": value, "time": t, "node": node, "token": token}
        if error is not None:
            ev["error"] = error
        self.events.append(ev)

    def run(self):
        while self.heap:
            t, _s, fn, args = heapq.heappop(self.heap)
            fn(t, *args)
        self.events.sort(key=lambda e: e["time"])
        return self.events

    def lat(self):
        return self.rng.randint(1000, 200000)


NODES = ("n1", "n2", "n3")


def register_history(seed, keys=3, workers=5, nops=300, p_info=0.04,
                     p_fail=0.03):
    s = _Sim(seed)
    rng = s.rng
    keys = ["k%d" % i for i in range(keys)]
    state = {k: None for k in keys}
    counter = [0]
    budget = [nops]
    next_pid = [workers]

    def invoke(t, w):
        if budget[0] <= 0:
            return
        budget[0] -= 1
        key = rng.choice(keys)
        node = NODES[w["slot"] % 3]
        r = rng.random()
        if r < 0.4 or (r >= 0.7 and key not in w["seen"]):
            f, value = "read", None
        elif r < 0.7:
            counter[0] += 1
            f, value = "write", w["pid"] * 100000 + counter[0]
        else:
            counter[0] += 1
            f, value = "cas", [w["seen"][key], w["pid"] * 100000 +
                               counter[0]]
        s.emit(t, w["pid"], "invoke", f, key, value, node)
        lin_t = t + s.lat()
        s.at(lin_t, linearize, w, f, key, value, node)

    def linearize(t, w, f, key, value, node):
        crash = rng.random() < p_info
        if crash:
            if (f == "write" or (f == "cas" and state[key] == value[0])) \
                    and rng.random() < 0.5:
                apply(f, key, value)
            done = t + s.lat()
            s.emit(done, w["pid"], "info", f, key, value, node,
                   error="timeout")
            w["pid"] = next_pid[0]
            next_pid[0] += 1
            w["seen"] = {}
            s.at(done + s.lat(), invoke, w)
            return
        if f == "write" and rng.random() < p_fail:
            typ, out, err = "fail", value, {"RetCode": 121}
        elif f == "read":
            typ, out, err = "ok", state[key], None
        elif f == "write":
            apply(f, key, value)
            typ, out, err = "ok", value, None
        else:
            if state[key] == value[0]:
                apply(f, key, value)
                typ, out, err = "ok", value, None
            else:
                typ, out, err = "fail", value, {"RetCode": 160}
        done = t + s.lat()
        s.at(done, complete, w, typ, f, key, out, node, err)

    def apply(f, key, value):
        state[key] = value if f == "write" else value[1]

    def complete(t, w, typ, f, key, out, node, err):
        s.emit(t, w["pid"], typ, f, key, out, node, error=err)
        if typ == "ok":
            if f == "read":
                w["seen"][key] = out
            elif f == "cas":
                w["seen"][key] = out[1]
            else:
                w["seen"][key] = out
        s.at(t + rng.randint(0, 50000), invoke, w)

    for i in range(workers):
        w = {"pid": i, "slot": i, "seen": {}}
        s.at(rng.randint(0, 100000), invoke, w)
    return s.run()


def set_history(seed, workers=5, nops=300, p_info=0.05, p_fail=0.05):
    s = _Sim(seed)
    rng = s.rng
    present = set()
    counter = [0]
    next_pid = [workers]
    end = [0]

    def invoke(t, w):
        if counter[0] >= nops:
            return
        el = counter[0]
        counter[0] += 1
        node = NODES[w["slot"] % 3]
        s.emit(t, w["pid"], "invoke", "add", None, el, node)
        r = rng.random()
        lin = t + s.lat()
        done = lin + s.lat()
        end[0] = max(end[0], done)
        if r < p_info:
            if rng.random() < 0.5:
                present.add(el)
            s.emit(done, w["pid"], "info", "add", None, el, node,
                   error="timeout")
            w["pid"] = next_pid[0]
            next_pid[0] += 1
        elif r < p_info + p_fail:
            s.emit(done, w["pid"], "fail", "add", None, el, node,
                   error={"RetCode": 191})
        else:
            present.add(el)
            s.emit(done, w["pid"], "ok", "add", None, el, node)
        s.at(done + rng.randint(0, 50000), invoke, w)

    for i in range(workers):
        s.at(rng.randint(0, 100000), invoke, {"pid": i, "slot": i})
    s.run()
    t = end[0] + 1000000
    for i, n in enumerate(NODES):
        pid = 1000000 + i
        s.events.append({"process": pid, "type": "invoke", "f": "read",
                         "key": None, "value": None, "time": t, "node": n,
                         "token": None})
        t += 1000
        s.events.append({"process": pid, "type": "ok", "f": "read",
                         "key": None, "value": sorted(present), "time": t,
                         "node": n, "token": None})
        t += 1000
    return s.events


def idempotency_history(seed, workers=5, ntokens=200, p_info=0.15,
                        p_fail=0.05, p_reuse=0.1):
    s = _Sim(seed)
    rng = s.rng
    users = {}   # token -> uid (effect happened)
    counter = [0]
    next_pid = [workers]
    end = [0]
    reused = []

    def attempt(t, w, tok, email, n_try):
        node = NODES[(w["slot"] + n_try) % 3]
        s.emit(t, w["pid"], "invoke", "create", tok, email, node, token=tok)
        r = rng.random()
        done = t + 2 * s.lat()
        end[0] = max(end[0], done)
        if r < p_info:
            if tok not in users and rng.random() < 0.5:
                users[tok] = "u-%s" % tok
            s.emit(done, w["pid"], "info", "create", tok, email, node,
                   token=tok, error={"RetCode": 190})
            w["pid"] = next_pid[0]
            next_pid[0] += 1
            if n_try < 3:
                s.at(done + s.lat(), attempt, w, tok, email, n_try + 1)
            else:
                s.at(done + s.lat(), invoke, w)
            return
        if r < p_info + p_fail and tok not in users:
            s.emit(done, w["pid"], "fail", "create", tok, email, node,
                   token=tok, error={"RetCode": 121})
        else:
            users.setdefault(tok, "u-%s" % tok)
            s.emit(done, w["pid"], "ok", "create", tok,
                   {"email": email, "user": users[tok]}, node, token=tok)
            if rng.random() < p_reuse:
                s.at(done + s.lat(), reuse, w, tok)
                return
        s.at(done + s.lat(), invoke, w)

    def reuse(t, w, tok):
        node = NODES[w["slot"] % 3]
        other = "r-%s@idem" % tok
        reused.append(tok)
        s.emit(t, w["pid"], "invoke", "reuse", tok, other, node, token=tok)
        done = t + s.lat()
        s.emit(done, w["pid"], "fail", "reuse", tok, other, node, token=tok,
               error={"RetCode": 180})
        s.at(done + s.lat(), invoke, w)

    def invoke(t, w):
        if counter[0] >= ntokens:
            return
        tok = "t%05d" % counter[0]
        counter[0] += 1
        attempt(t, w, tok, "%s@idem" % tok, 0)

    for i in range(workers):
        s.at(rng.randint(0, 100000), invoke, {"pid": i, "slot": i})
    s.run()
    t = end[0] + 1000000
    final = sorted(["%s@idem" % tok, uid] for tok, uid in users.items())
    for i, n in enumerate(NODES):
        pid = 1000000 + i
        s.events.append({"process": pid, "type": "invoke", "f": "read",
                         "key": None, "value": None, "time": t, "node": n,
                         "token": None})
        t += 1000
        s.events.append({"process": pid, "type": "ok", "f": "read",
                         "key": None, "value": [list(x) for x in final],
                         "time": t, "node": n, "token": None})
        t += 1000
    return s.events


def bank_history(seed, tenants=3, workers=5, nops=300, p_info=0.08,
                 p_fail=0.03, charge_every=400000):
    """A linearizable bank: recharges (unique serials, an indeterminate one
    retried with the same serial: 161 if it had been applied), reuses of
    acked serials (161), renewals (171 when short), balance reads, and
    per-period charges applied by nobody's request; then the final state of
    every node."""
    s = _Sim(seed)
    rng = s.rng
    uids = ["uid-%08d" % (k + 1) for k in range(tenants)]
    month = {"bsi-m%d" % k: {"tenant": u, "unit": 100 + 50 * k}
             for k, u in enumerate(uids)}
    dyn = {"bsi-d%d" % k: {"tenant": u, "charge": 1 + k}
           for k, u in enumerate(uids)}
    bal = {u: 0 for u in uids}
    txns = {u: [] for u in uids}
    serials = {}
    ctr = {"txn": 0, "order": 0, "serial": 0, "ops": 0}
    periods = {r: 0 for r in dyn}
    acked = []
    next_pid = [workers]
    end = [0]
    setup_pid = 2000000

    def txn(u, typ, amount, **kw):
        ctr["txn"] += 1
        bal[u] += amount
        t = {"id": "txn-%08d" % ctr["txn"], "type": typ, "amount": amount,
             "balance": bal[u]}
        t.update(kw)
        txns[u].append(t)
        return t

    def order(u, res, amount):
        ctr["order"] += 1
        oid = "order-%08d" % ctr["order"]
        if amount > 0:
            txn(u, "Order", -amount, order=oid, resource=res)
        return oid

    # setup: initial recharges and the prepaid creates, sequential
    t = 1
    for k, u in enumerate(uids):
        sn = "init-%d" % k
        s.emit(t, setup_pid, "invoke", "recharge", u,
               {"serial": sn, "amount": 300}, "n1")
        tx = txn(u, "Recharge", 300, serial=sn)
        serials[sn] = u
        s.emit(t + 1, setup_pid, "ok", "recharge", u,
               {"serial": sn, "amount": 300, "txn": tx["id"],
                "balance": tx["balance"]}, "n1")
        for res, amount in (("bsi-m%d" % k, month["bsi-m%d" % k]["unit"]),
                            ("bsi-d%d" % k, 0)):
            s.emit(t + 2, setup_pid, "invoke", "create", u,
                   {"resource": "?", "amount": amount, "quantity": 1}, "n1")
            oid = order(u, res, amount)
            s.emit(t + 3, setup_pid, "ok", "create", u,
                   {"resource": res, "amount": amount, "quantity": 1,
                    "order": oid}, "n1")
            t += 4
    s.emit(t, setup_pid, "invoke", "setup", None, None, "n1")
    s.emit(t + 1, setup_pid, "ok", "setup", None,
           {"tenants": uids, "month": month, "dynamic": dyn}, "n1")
    t0 = t + 10

    def charge(t, res):
        if ctr["ops"] >= nops:
            return
        periods[res] += 1
        d = dyn[res]
        txn(d["tenant"], "Charge", -d["charge"], resource=res,
            period=periods[res])
        s.at(t + rng.randint(charge_every // 2, charge_every), charge, res)

    def done(t, w, typ, f, u, value, node, err=None):
        s.emit(t, w["pid"], typ, f, u, value, node, error=err)
        end[0] = max(end[0], t)
        if typ == "info":
            w["pid"] = next_pid[0]
            next_pid[0] += 1

    def recharge_attempt(t, w, u, sn, amount, n_try):
        node = NODES[(w["slot"] + n_try) % 3]
        body = {"serial": sn, "amount": amount}
        s.emit(t, w["pid"], "invoke", "recharge", u, body, node)
        s.at(t + s.lat(), recharge_apply, w, u, sn, amount, n_try, node)

    def recharge_apply(t, w, u, sn, amount, n_try, node):
        body = {"serial": sn, "amount": amount}
        r = rng.random()
        fin = t + s.lat()
        if r < p_fail:
            done(fin, w, "fail", "recharge", u, body, node, {"RetCode": 191})
            s.at(fin + s.lat(), invoke, w)
            return
        if r < p_fail + p_info:
            if sn not in serials and rng.random() < 0.5:
                serials[sn] = u
                txn(u, "Recharge", amount, serial=sn)
            done(fin, w, "info", "recharge", u, body, node, "timeout")
            if n_try < 3:
                s.at(fin + s.lat(), recharge_attempt, w, u, sn, amount,
                     n_try + 1)
            else:
                s.at(fin + s.lat(), invoke, w)
            return
        if sn in serials:
            done(fin, w, "fail", "recharge", u, body, node, {"RetCode": 161})
        else:
            serials[sn] = u
            tx = txn(u, "Recharge", amount, serial=sn)
            acked.append(sn)
            done(fin, w, "ok", "recharge", u,
                 dict(body, txn=tx["id"], balance=tx["balance"]), node)
        s.at(fin + s.lat(), invoke, w)

    def simple(t, w, f, u, value, node):
        r = rng.random()
        fin = t + s.lat()
        if f == "balance":
            if r < p_info:
                done(fin, w, "info", f, u, None, node, "timeout")
            else:
                done(fin, w, "ok", f, u, bal[u], node)
        elif f == "reuse":
            done(fin, w, "fail", f, u, value, node, {"RetCode": 161})
        else:  # renew
            applies = bal[u] >= value["amount"] and bal[u] >= 0
            if r < p_info:
                if applies and rng.random() < 0.5:
                    order(u, value["resource"], value["amount"])
                done(fin, w, "info", f, u, value, node, "timeout")
            elif not applies:
                done(fin, w, "fail", f, u, value, node, {"RetCode": 171})
            else:
                oid = order(u, value["resource"], value["amount"])
                done(fin, w, "ok", f, u, dict(value, order=oid), node)
        s.at(fin + s.lat(), invoke, w)

    def invoke(t, w):
        if ctr["ops"] >= nops:
            return
        ctr["ops"] += 1
        u = rng.choice(uids)
        node = NODES[w["slot"] % 3]
        r = rng.random()
        if r < 0.35:
            ctr["serial"] += 1
            recharge_attempt(t, w, u, "sn-%d" % ctr["serial"],
                             rng.randint(1, 400), 0)
            return
        if r < 0.42 and acked:
            f, value = "reuse", {"serial": rng.choice(acked),
                                 "amount": rng.randint(401, 800)}
        elif r < 0.7:
            k = uids.index(u)
            q = rng.randint(1, 3)
            res = "bsi-m%d" % k
            f, value = "renew", {"resource": res, "quantity": q,
                                 "amount": month[res]["unit"] * q}
        else:
            f, value = "balance", None
        s.emit(t, w["pid"], "invoke", f, u, value, node)
        s.at(t + s.lat(), simple, w, f, u, value, node)

    for res in sorted(dyn):
        s.at(t0 + rng.randint(0, charge_every), charge, res)
    for i in range(workers):
        s.at(t0 + rng.randint(0, 100000), invoke, {"pid": i, "slot": i})
    s.run()
    t = end[0] + 1000000
    final = {"balances": dict(bal),
             "txns": {u: [dict(x) for x in v] for u, v in txns.items()}}
    for i, n in enumerate(NODES):
        pid = 1000000 + i
        s.events.append({"process": pid, "type": "invoke", "f": "final",
                         "key": None, "value": None, "time": t, "node": n,
                         "token": None})
        t += 1000
        s.events.append({"process": pid, "type": "ok", "f": "final",
                         "key": None, "value": json_copy(final), "time": t,
                         "node": n, "token": None})
        t += 1000
    return s.events


def json_copy(v):
    import json
    return json.loads(json.dumps(v))
