"""Bank workload: money in (Recharge), money out (renewals of prepaid
resources, and the billing charges the leader proposes every period for
Dynamic resources), balance reads.  Money is conserved: every balance is the
sum of its tenant's transactions, each transaction has exactly one cause,
and every linearizable read returns the balance of a prefix of the log.

History (process ids >= 1000000 are the harness's own: setup, final reads):
  f "setup"    once, before the load; ok value = {
                 "tenants": [UserID],
                 "month": {ResourceID: {"tenant", "unit"}},     prepaid
                 "dynamic": {ResourceID: {"tenant", "charge"}}} per period
  f "recharge" key = tenant, value = {"serial", "amount"}; ok value adds
               "txn" (TxnID) and "balance" (the Balance it answered).  An
               indeterminate attempt is retried with the same SerialNo and
               body: several recharge ops may share a serial.  RetCode 161
               on a retry means an earlier attempt was applied.
  f "reuse"    key = tenant, value = {"serial" of an acked recharge,
               "amount" (another amount)}: must be rejected with 161.
  f "create", "renew"
               key = tenant, value = {"resource", "amount" (the debit it
               must make; 0 for a Dynamic create), "quantity"}; ok value adds
               "order" (OrderID).  A renewal refused with 171 (insufficient
               balance) must have met a balance below its amount, or a
               negative one.
  f "balance"  key = tenant, ok value = Balance (linearizable DescribeBalance)
  f "final"    one per node after healing, with the billing clock frozen:
               that node's own state (Consistency stale); ok value =
               {"balances": {tenant: Balance},
                "txns": {tenant: [{"id", "type", "amount", "balance",
                                   "serial"?, "order"?, "resource"?,
                                   "period"?}, ...]}}   (TxnID order)
  f "freeze"   the harness freezing the billing clock; ignored.

Anomalies:
  chain-broken         a transaction's Balance is not the previous Balance
                       plus its Amount: money created or destroyed
  balance-mismatch     a final balance is not its last transaction's Balance
  lost-ack             an acked recharge or renewal (or a recharge answered
                       "SerialNo already used") has no transaction
  duplicate            a SerialNo or OrderID with more than one transaction
  failed-value-visible a recharge whose every attempt definitely failed has
                       a transaction
  wrong-txn            a recharge's transaction is not the one it acked
                       (TxnID, tenant, amount or Balance)
  wrong-amount         an order or charge debits the wrong amount
  phantom              a transaction no operation explains (unknown SerialNo,
                       an order debit beyond the renewals left in doubt, a
                       charge for a resource that is not billed per period)
  double-charge        one billing period of a resource charged twice
  charge-gap           a resource's charged periods are not 1, 2, 3, ...
  spurious-exists      a recharge answered 161 though no earlier attempt of
                       its SerialNo could have been applied
  reuse-accepted       a used SerialNo with another amount was not rejected
                       with 161
  stale-read           a balance read returned a balance older than an
                       operation acked before the read began (or than an
                       earlier read)
  future-read          a balance read saw an operation invoked after it ended
  impossible-balance   a balance read returned an amount that no prefix of
                       the tenant's transactions has
  wrongly-refused      a renewal refused for insufficient balance although
                       every balance it could have met covered it
  replicas-differ      two nodes' final states differ
  final-read-failed, final-read-missing, no-final-read
"""

import bisect
import heapq
from collections import defaultdict

RETCODE_EXISTS = 161
RETCODE_BALANCE = 171
RETCODE_TRANSIENT = (190, 191, 192)
HARNESS_PID = 1000000


def _retcode(err):
    if isinstance(err, dict):
        rc = err.get("RetCode")
        if isinstance(rc, int):
            return rc
    return None


def _val(op):
    """The op's parameters: its invoke value, completed by its ok value
    (a create learns its ResourceID only from the answer)."""
    v = dict(op.invoke_value) if isinstance(op.invoke_value, dict) else {}
    if op.type == "ok" and isinstance(op.value, dict):
        v.update(op.value)
    return v


class _Ctx:
    def __init__(self):
        self.anomalies = []

    def add(self, type_, message, **kw):
        a = {"type": type_, "message": message}
        a.update(kw)
        self.anomalies.append(a)


def parse(ops):
    """Split a paired history into its parts; raises ValueError when the
    history is not a bank history."""
    p = {"setup": None, "recharge": defaultdict(list), "reuse": [],
         "orders": [], "reads": [], "finals": []}
    for op in ops:
        if op.f == "setup":
            if op.type == "ok" and isinstance(op.value, dict):
                p["setup"] = op.value
        elif op.f == "recharge":
            v = _val(op)
            if "serial" not in v or "amount" not in v or op.key is None:
                raise ValueError("recharge without key/serial/amount: %r" %
                                 (op,))
            p["recharge"][v["serial"]].append(op)
        elif op.f == "reuse":
            p["reuse"].append(op)
        elif op.f in ("create", "renew"):
            v = _val(op)
            if "resource" not in v or "amount" not in v:
                raise ValueError("%s without resource/amount: %r" %
                                 (op.f, op))
            p["orders"].append(op)
        elif op.f == "balance":
            p["reads"].append(op)
        elif op.f == "final":
            p["finals"].append(op)
        elif op.f == "freeze":
            pass
        else:
            raise ValueError("bank history has f=%r" % op.f)
    if p["setup"] is None:
        raise ValueError("bank history without an ok setup")
    for serial, ats in p["recharge"].items():
        bodies = {(a.key, _val(a)["amount"]) for a in ats}
        if len(bodies) != 1:
            raise ValueError("SerialNo %s used with several bodies in "
                             "recharges (use f=reuse for that)" % serial)
    return p


def _serial_status(ats):
    """ok | exists (an attempt answered 161) | info | fail, and the ok op."""
    oks = [a for a in ats if a.type == "ok"]
    if oks:
        return "ok", oks[0]
    if any(a.type == "fail" and _retcode(a.error) == RETCODE_EXISTS
           for a in ats):
        return "exists", None
    if any(a.type == "info" for a in ats):
        return "info", None
    return "fail", None


def check_chain(cx, node, tenant, txns, balance):
    prev_id = None
    b = 0
    for t in txns:
        if prev_id is not None and not str(t.get("id")) > prev_id:
            cx.add("chain-broken", "%s: transactions of %s out of TxnID "
                   "order (%s after %s)" % (node, tenant, t.get("id"),
                                            prev_id), node=node,
                   tenant=tenant, txn=t)
        prev_id = str(t.get("id"))
        amt, bal = t.get("amount"), t.get("balance")
        if not isinstance(amt, int) or not isinstance(bal, int):
            cx.add("chain-broken", "%s: transaction %s of %s lacks an "
                   "integer Amount/Balance" % (node, t.get("id"), tenant),
                   node=node, tenant=tenant, txn=t)
            continue
        if bal != b + amt:
            cx.add("chain-broken", "%s: %s of %s: Balance %d after %d%+d "
                   "(%+d %s)" % (node, t.get("id"), tenant, bal, b, amt,
                                 bal - b - amt, "created" if bal > b + amt
                                 else "destroyed"),
                   node=node, tenant=tenant, txn=t, count=1)
        b = bal
    if balance != b:
        cx.add("balance-mismatch", "%s: balance of %s is %r, its last "
               "transaction says %d" % (node, tenant, balance, b),
               node=node, tenant=tenant)


def check_recharges(cx, p, node, txns_all):
    by_serial = defaultdict(list)
    for tenant, txns in txns_all.items():
        for t in txns:
            if t.get("type") == "Recharge":
                by_serial[t.get("serial")].append((tenant, t))
    for serial, ats in sorted(p["recharge"].items()):
        tenant, amount = ats[0].key, _val(ats[0])["amount"]
        st, okop = _serial_status(ats)
        got = by_serial.pop(serial, [])
        # A 161 before anything of this serial could have been applied.
        for i, a in enumerate(ats):
            if (a.type == "fail" and _retcode(a.error) == RETCODE_EXISTS and
                    not any(b.type in ("ok", "info") for b in ats[:i])):
                cx.add("spurious-exists", "recharge %s answered 'already "
                       "used' (161) but no earlier attempt could have been "
                       "applied" % serial, serial=serial, op=a.describe())
        if len(got) > 1:
            cx.add("duplicate", "%s: recharge %s applied %d times: %s" % (
                node, serial, len(got), [t["id"] for _x, t in got]),
                node=node, serial=serial, count=len(got) - 1)
        for tt, t in got:
            if tt != tenant or t.get("amount") != amount:
                cx.add("wrong-txn", "%s: recharge %s of %d to %s applied as "
                       "%r to %s" % (node, serial, amount, tenant,
                                     t.get("amount"), tt), node=node,
                       serial=serial, txn=t)
        if st in ("ok", "exists") and not got:
            cx.add("lost-ack", "%s: %s recharge %s (%d to %s) has no "
                   "transaction" % (node, "acked" if st == "ok" else
                                    "'already used'", serial, amount,
                                    tenant), node=node, serial=serial,
                   count=1)
        if st == "fail" and got:
            cx.add("failed-value-visible", "%s: recharge %s failed on every "
                   "attempt but was applied (%s)" % (
                       node, serial, got[0][1].get("id")), node=node,
                   serial=serial, errors=[a.error for a in ats])
        if st == "ok" and len(got) == 1:
            t = got[0][1]
            v = okop.value if isinstance(okop.value, dict) else {}
            if (v.get("txn") is not None and v.get("txn") != t.get("id")) \
                    or (v.get("balance") is not None and
                        v.get("balance") != t.get("balance")):
                cx.add("wrong-txn", "%s: recharge %s acked %s with Balance "
                       "%r, the log has %s with Balance %r" % (
                           node, serial, v.get("txn"), v.get("balance"),
                           t.get("id"), t.get("balance")), node=node,
                       serial=serial)
    for serial, got in sorted(by_serial.items(), key=lambda kv: str(kv[0])):
        cx.add("phantom", "%s: recharge with SerialNo %r (%s) that nobody "
               "sent" % (node, serial, [t.get("id") for _x, t in got]),
               node=node, serial=serial)


def check_reuse(cx, p):
    for r in p["reuse"]:
        if r.type == "ok":
            cx.add("reuse-accepted", "SerialNo %s reused with another amount"
                   " was accepted" % _val(r).get("serial"),
                   op=r.describe())
        elif r.type == "fail":
            rc = _retcode(r.error)
            # rc None: a refused connection, the request never left.
            if rc not in (None, RETCODE_EXISTS) + RETCODE_TRANSIENT:
                cx.add("reuse-accepted", "SerialNo %s reused with another "
                       "amount got RetCode %r, expected 161" % (
                           _val(r).get("serial"), rc), op=r.describe())


def check_orders(cx, p, node, txns_all):
    by_order = defaultdict(list)
    for tenant, txns in txns_all.items():
        for t in txns:
            if t.get("type") == "Order":
                by_order[t.get("order")].append((tenant, t))
    doubt = defaultdict(list)  # resource -> amounts of orders in doubt
    for op in p["orders"]:
        v = _val(op)
        if op.type == "info":
            if v["amount"] > 0:
                doubt[v["resource"]].append(v["amount"])
            continue
        if op.type != "ok":
            continue
        order = op.value.get("order") if isinstance(op.value, dict) \
            else None
        got = by_order.pop(order, []) if order is not None else []
        if v["amount"] > 0 and not got:
            cx.add("lost-ack", "%s: acked %s of %s (order %s, %d) has no "
                   "transaction" % (node, op.f, v["resource"], order,
                                    v["amount"]), node=node, order=order,
                   count=1)
        if len(got) > 1:
            cx.add("duplicate", "%s: order %s debited %d times" % (
                node, order, len(got)), node=node, order=order,
                count=len(got) - 1)
        for tt, t in got:
            if (tt != op.key or t.get("amount") != -v["amount"] or
                    t.get("resource") != v["resource"]):
                cx.add("wrong-amount", "%s: order %s (%s of %s for %d) "
                       "debited %r from %s for %r" % (
                           node, order, op.f, v["resource"], v["amount"],
                           t.get("amount"), tt, t.get("resource")),
                       node=node, order=order, txn=t)
    # Order debits nobody acked: each must match a distinct order left in
    # doubt (indeterminate) on the same resource with the same amount.
    for order, got in sorted(by_order.items(), key=lambda kv: str(kv[0])):
        for tt, t in got:
            pool = doubt.get(t.get("resource"), [])
            if -t.get("amount", 0) in pool:
                pool.remove(-t.get("amount", 0))
            else:
                cx.add("phantom", "%s: order debit %s (%s, %r on %s) that no"
                       " acked or indeterminate operation explains" % (
                           node, t.get("id"), order, t.get("amount"),
                           t.get("resource")), node=node, order=order,
                       txn=t)


def check_charges(cx, p, node, txns_all):
    dyn = p["setup"].get("dynamic") or {}
    for tenant, txns in sorted(txns_all.items()):
        last = defaultdict(int)
        seen = defaultdict(set)
        for t in txns:
            if t.get("type") != "Charge":
                continue
            res, per = t.get("resource"), t.get("period")
            d = dyn.get(res)
            if d is None or d.get("tenant") != tenant:
                cx.add("phantom", "%s: charge %s of %s for %r, which is not "
                       "a Dynamic resource of it" % (node, t.get("id"),
                                                     tenant, res),
                       node=node, txn=t)
                continue
            if t.get("amount") != -d["charge"]:
                cx.add("wrong-amount", "%s: charge %s of %s period %r is %r,"
                       " the price is %d" % (node, t.get("id"), res, per,
                                             t.get("amount"), d["charge"]),
                       node=node, txn=t)
            if per in seen[res]:
                cx.add("double-charge", "%s: period %r of %s charged twice "
                       "(%s)" % (node, per, res, t.get("id")), node=node,
                       resource=res, period=per)
            elif per != last[res] + 1:
                cx.add("charge-gap", "%s: %s charged period %r after %d" % (
                    node, res, per, last[res]), node=node, resource=res,
                    period=per)
            seen[res].add(per)
            if isinstance(per, int) and per > last[res]:
                last[res] = per


# ----------------------------------------------------------------- reads
def positions(p, txns):
    """Per tenant chain (txn list): serial -> k and order -> k (k = 1-based
    position; balance b_k is txns[k-1]["balance"], b_0 = 0)."""
    pos = {}
    for k, t in enumerate(txns, 1):
        if t.get("type") == "Recharge" and t.get("serial") is not None:
            pos.setdefault(("s", t["serial"]), k)
        elif t.get("type") == "Order" and t.get("order") is not None:
            pos.setdefault(("o", t["order"]), k)
    return pos


def bounds(p, tenant, pos):
    """Real-time constraints from the client operations of @tenant:
    lows  [(time an op completed, k)]: its transaction was applied by then;
    highs [(time an op was first invoked, k)]: not applied before that."""
    lows, highs = [], []
    for serial, ats in p["recharge"].items():
        if ats[0].key != tenant:
            continue
        k = pos.get(("s", serial))
        if k is None:
            continue
        highs.append((min(a.invoke_time for a in ats), k))
        for a in ats:
            if a.type == "ok" or (a.type == "fail" and
                                  _retcode(a.error) == RETCODE_EXISTS):
                lows.append((a.complete_time, k))
    for op in p["orders"]:
        if op.key != tenant or op.type != "ok" or \
                not isinstance(op.value, dict):
            continue
        k = pos.get(("o", op.value.get("order")))
        if k is None:
            continue
        highs.append((op.invoke_time, k))
        lows.append((op.complete_time, k))
    return lows, highs


class Windows:
    """Window [lo, hi] of log positions an operation of one tenant may take
    effect at, from the real-time order alone (reads add their own)."""

    def __init__(self, lows, highs, n):
        self.lows = sorted(lows)
        self.low_t = [t for t, _k in self.lows]
        self.low_max = []
        m = 0
        for _t, k in self.lows:
            m = max(m, k)
            self.low_max.append(m)
        self.highs = sorted(highs)
        self.high_t = [t for t, _k in self.highs]
        self.high_min = [0] * len(self.highs)
        m = n + 1
        for i in range(len(self.highs) - 1, -1, -1):
            m = min(m, self.highs[i][1])
            self.high_min[i] = m
        self.n = n

    def lo(self, t0):
        """Greatest position applied by an op completed before @t0."""
        i = bisect.bisect_left(self.low_t, t0)
        return self.low_max[i - 1] if i > 0 else 0

    def hi(self, t1):
        """Greatest position possible before ops invoked after @t1."""
        i = bisect.bisect_right(self.high_t, t1)
        return (self.high_min[i] - 1) if i < len(self.highs) else self.n


def check_reads(cx, p, node, txns_all):
    stats = {"reads": 0, "refusals": 0}
    reads_by = defaultdict(list)
    for r in p["reads"]:
        if r.type == "ok":
            reads_by[r.key].append(r)
    refused_by = defaultdict(list)
    for op in p["orders"]:
        if op.f == "renew" and op.type == "fail" and \
                _retcode(op.error) == RETCODE_BALANCE:
            refused_by[op.key].append(op)
    for tenant in sorted(set(reads_by) | set(refused_by), key=str):
        txns = txns_all.get(tenant, [])
        b = [0] + [t.get("balance") for t in txns]
        vals = defaultdict(list)
        for k, v in enumerate(b):
            vals[v].append(k)
        pos = positions(p, txns)
        lows, highs = bounds(p, tenant, pos)
        w = Windows(lows, highs, len(txns))
        done = []  # heap of (complete time, k) of reads placed
        rmax = 0
        events = sorted(
            [(r.invoke_time, 0, i, r) for i, r in
             enumerate(reads_by.get(tenant, []))] +
            [(r.invoke_time, 1, i, r) for i, r in
             enumerate(refused_by.get(tenant, []))])
        for t0, kind, _i, r in events:
            while done and done[0][0] < t0:
                rmax = max(rmax, heapq.heappop(done)[1])
            lo = max(w.lo(t0), rmax)
            hi = w.hi(r.complete_time)
            if kind == 1:
                stats["refusals"] += 1
                amount = _val(r)["amount"]
                if not any(b[k] < amount or b[k] < 0
                           for k in range(lo, min(hi, len(b) - 1) + 1)):
                    cx.add("wrongly-refused", "%s: renewal of %s for %d "
                           "refused (171) but every balance it could meet "
                           "(positions %d..%d: %s) covers it" % (
                               node, _val(r)["resource"], amount, lo, hi,
                               sorted(set(b[lo:hi + 1]))[:10]), node=node,
                           tenant=tenant, op=r.describe())
                continue
            stats["reads"] += 1
            ks = vals.get(r.value, [])
            j = bisect.bisect_left(ks, lo)
            if j < len(ks) and ks[j] <= hi:
                heapq.heappush(done, (r.complete_time, ks[j]))
                continue
            if not ks:
                typ, why = "impossible-balance", "no prefix of the log has"
            elif ks[0] < lo:
                typ, why = "stale-read", "only positions %s (< %d) have" % (
                    ks[:5], lo)
            else:
                typ, why = "future-read", "only positions %s (> %d) have" % (
                    ks[:5], hi)
            cx.add(typ, "%s: read of %s's balance returned %r; %s it "
                   "(window %d..%d of %d transactions)" % (
                       node, tenant, r.value, why, lo, hi, len(txns)),
                   node=node, tenant=tenant, op=r.describe())
    return stats


def check(ops, expect_nodes=None):
    p = parse(ops)
    cx = _Ctx()
    finals = p["finals"]
    ok_finals = [f for f in finals if f.type == "ok" and
                 isinstance(f.value, dict)]
    for f in finals:
        if f.type != "ok":
            cx.add("final-read-failed", "final read from %s did not "
                   "succeed: %r" % (f.node, f.error), node=f.node)
    if not ok_finals:
        cx.add("no-final-read", "no successful final read")
    if expect_nodes:
        got = {f.node for f in ok_finals}
        for n in expect_nodes:
            if n not in got:
                cx.add("final-read-missing", "no successful final read "
                       "from %s" % n, node=n)
    tenants = list(p["setup"].get("tenants") or [])
    stats = {"ops": sum(1 for op in ops if op.process < HARNESS_PID and
                        op.f not in ("final", "setup", "freeze")),
             "tenants": len(tenants), "final_reads": len(ok_finals)}
    for f in ok_finals:
        txns_all = f.value.get("txns") or {}
        bals = f.value.get("balances") or {}
        for tenant in tenants:
            check_chain(cx, f.node, tenant, txns_all.get(tenant, []),
                        bals.get(tenant))
        check_recharges(cx, p, f.node, txns_all)
        check_orders(cx, p, f.node, txns_all)
        check_charges(cx, p, f.node, txns_all)
    check_reuse(cx, p)
    if ok_finals:
        ref = ok_finals[0]
        for f in ok_finals[1:]:
            for tenant in tenants:
                a = (ref.value.get("txns") or {}).get(tenant, [])
                b = (f.value.get("txns") or {}).get(tenant, [])
                ba = (ref.value.get("balances") or {}).get(tenant)
                bb = (f.value.get("balances") or {}).get(tenant)
                if a != b or ba != bb:
                    cx.add("replicas-differ", "final states of %s differ "
                           "between %s and %s (%d vs %d transactions, "
                           "balance %r vs %r)" % (tenant, ref.node, f.node,
                                                  len(a), len(b), ba, bb),
                           nodes=[ref.node, f.node], tenant=tenant)
        stats.update(check_reads(cx, p, ref.node,
                                 ref.value.get("txns") or {}))
        txns = ref.value.get("txns") or {}
        stats["transactions"] = sum(len(v) for v in txns.values())
        for typ in ("Recharge", "Order", "Charge"):
            stats[typ.lower() + "s"] = sum(
                1 for v in txns.values() for t in v if t.get("type") == typ)
        stats["money_in"] = sum(t["amount"] for v in txns.values()
                                for t in v if t.get("type") == "Recharge")
        stats["money_out"] = -sum(t["amount"] for v in txns.values()
                                  for t in v if t.get("type") != "Recharge")
        stats["total_balance"] = sum(
            v for v in (ref.value.get("balances") or {}).values()
            if isinstance(v, int))
    st = defaultdict(int)
    for serial, ats in p["recharge"].items():
        st[_serial_status(ats)[0]] += 1
    stats["serials"] = dict(st)
    stats["acked"] = st["ok"]
    stats["ok"] = sum(1 for op in ops if op.type == "ok" and
                      op.process < HARNESS_PID)
    stats["fail"] = sum(1 for op in ops if op.type == "fail" and
                        op.process < HARNESS_PID)
    stats["info"] = sum(1 for op in ops if op.type == "info" and
                        op.process < HARNESS_PID)
    return {"valid": not cx.anomalies, "anomalies": cx.anomalies,
            "stats": stats}
