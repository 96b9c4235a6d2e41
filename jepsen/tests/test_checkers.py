"""Checker unit tests with hand-made histories, and the mutation test.

Run: /usr/bin/python3 -m unittest discover -s jepsen/tests -v
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
JEPSEN = os.path.dirname(HERE)
sys.path.insert(0, JEPSEN)

from yhjepsen import checkers, history, mutate, sim  # noqa: E402
from yhjepsen.checkers import linear, logs, replicas  # noqa: E402


class H:
    """History builder: H().inv(0, 'write', 'a', 1, 10).ok(0, 20)..."""

    def __init__(self):
        self.ev = []
        self.open = {}

    def inv(self, p, f, key, value, t, node="n1", token=None):
        self.ev.append({"process": p, "type": "invoke", "f": f, "key": key,
                        "value": value, "time": t, "node": node,
                        "token": token})
        self.open[p] = (f, key, value, token, node)
        return self

    def _done(self, p, typ, t, value=None, error=None, keep=True):
        f, key, v, tok, node = self.open.pop(p)
        ev = {"process": p, "type": typ, "f": f, "key": key,
              "value": v if keep else value, "time": t, "node": node,
              "token": tok}
        if error is not None:
            ev["error"] = error
        self.ev.append(ev)
        return self

    def ok(self, p, t, value="same"):
        if value == "same":
            return self._done(p, "ok", t)
        return self._done(p, "ok", t, value, keep=False)

    def fail(self, p, t, rc=160):
        return self._done(p, "fail", t, error={"RetCode": rc})

    def info(self, p, t):
        return self._done(p, "info", t, error="timeout")

    def read(self, p, key, value, t0, t1, node="n1"):
        self.inv(p, "read", key, None, t0, node)
        return self.ok(p, t1, value)

    def check(self, workload="register", **kw):
        self.ev.sort(key=lambda e: e["time"])
        return checkers.check_events(workload, self.ev, **kw)


class RegisterTest(unittest.TestCase):
    def test_sequential_valid(self):
        h = (H().read(0, "a", None, 0, 1)
             .inv(0, "write", "a", 1, 2).ok(0, 3)
             .read(0, "a", 1, 4, 5)
             .inv(0, "cas", "a", [1, 2], 6).ok(0, 7)
             .read(0, "a", 2, 8, 9))
        r = h.check()
        self.assertIs(r["valid"], True, r)

    def test_concurrent_valid(self):
        # write 1 and write 2 overlap; reads may see either order.
        h = (H().inv(0, "write", "a", 1, 0).inv(1, "write", "a", 2, 1)
             .read(2, "a", 2, 2, 3).read(3, "a", 1, 4, 5)
             .ok(0, 10).ok(1, 11))
        self.assertIs(h.check()["valid"], True)

    def test_stale_read_invalid(self):
        h = (H().inv(0, "write", "a", 1, 0).ok(0, 1)
             .inv(0, "write", "a", 2, 2).ok(0, 3)
             .read(1, "a", 1, 4, 5))
        r = h.check()
        self.assertIs(r["valid"], False)
        self.assertEqual(r["anomalies"][0]["type"], "nonlinearizable")
        self.assertIn("cannot be placed", r["anomalies"][0]["message"])

    def test_read_null_after_write_invalid(self):
        h = (H().inv(0, "write", "a", 1, 0).ok(0, 1)
             .read(1, "a", None, 2, 3))
        self.assertIs(h.check()["valid"], False)

    def test_non_monotonic_reads_invalid(self):
        # Two writes concurrent with two sequential reads that see 2 then 1
        # while 1 was written strictly before 2.
        h = (H().inv(0, "write", "a", 1, 0).ok(0, 5)
             .inv(1, "write", "a", 2, 6)
             .read(2, "a", 2, 7, 8).read(2, "a", 1, 9, 10)
             .ok(1, 20))
        self.assertIs(h.check()["valid"], False)

    def test_info_write_may_or_may_not_happen(self):
        base = (H().inv(0, "write", "a", 1, 0).ok(0, 1)
                .inv(1, "write", "a", 2, 2).info(1, 3))
        seen = H()
        seen.ev = list(base.ev)
        seen.read(2, "a", 2, 50, 51).read(2, "a", 2, 52, 53)
        self.assertIs(seen.check()["valid"], True)
        unseen = H()
        unseen.ev = list(base.ev)
        unseen.read(2, "a", 1, 50, 51)
        self.assertIs(unseen.check()["valid"], True)
        # ... but once seen, it cannot un-happen.
        flip = H()
        flip.ev = list(base.ev)
        flip.read(2, "a", 2, 50, 51).read(2, "a", 1, 52, 53)
        self.assertIs(flip.check()["valid"], False)

    def test_info_write_can_take_effect_late(self):
        # Pending since t=2, observed at t=100 after another write at t=10.
        h = (H().inv(1, "write", "a", 2, 2).info(1, 3)
             .inv(0, "write", "a", 1, 10).ok(0, 11)
             .read(2, "a", 1, 20, 21).read(2, "a", 2, 100, 101))
        self.assertIs(h.check()["valid"], True)

    def test_failed_write_visible(self):
        h = (H().inv(0, "write", "a", 1, 0).fail(0, 1, rc=121)
             .read(1, "a", 1, 2, 3))
        r = h.check()
        self.assertIs(r["valid"], False)
        self.assertIn("failed-value-visible",
                      [a["type"] for a in r["anomalies"]])

    def test_failed_cas_has_no_effect(self):
        h = (H().inv(0, "write", "a", 1, 0).ok(0, 1)
             .inv(0, "cas", "a", [5, 6], 2).fail(0, 3)
             .read(0, "a", 1, 4, 5))
        self.assertIs(h.check()["valid"], True)

    def test_cas_wrong_expected_invalid(self):
        h = (H().inv(0, "write", "a", 1, 0).ok(0, 1)
             .inv(0, "cas", "a", [7, 8], 2).ok(0, 3))
        # 7 was never written -> cas cannot succeed.
        self.assertIs(h.check()["valid"], False)

    def test_keys_independent(self):
        h = (H().inv(0, "write", "a", 1, 0).ok(0, 1)
             .inv(0, "write", "b", 2, 2).ok(0, 3)
             .read(1, "a", 1, 4, 5).read(1, "b", 2, 6, 7))
        r = h.check()
        self.assertIs(r["valid"], True)
        self.assertEqual(r["stats"]["keys"], 2)

    def test_phantom_read(self):
        r = H().read(0, "a", 99, 0, 1).check()
        self.assertIs(r["valid"], False)
        self.assertIn("phantom-read", [a["type"] for a in r["anomalies"]])

    def test_search_bound_gives_unknown(self):
        h = H()
        # Many concurrent writes whose values are read in a valid order:
        # needs more than 5 steps.
        for i in range(8):
            h.inv(i, "write", "a", i + 1, i)
        for i in range(8):
            h.ok(i, 100 + i)
        for i in range(8):
            h.read(50 + i, "a", 8 - i if i == 0 else 8, 200 + 2 * i,
                   201 + 2 * i)
        r = h.check(max_steps=5)
        self.assertEqual(r["valid"], "unknown")
        self.assertIs(h.check()["valid"], True)

    def test_unobserved_info_dropped(self):
        h = H()
        for i in range(30):
            h.inv(i, "write", "a", i + 1, i).info(i, i + 1000)
        h.read(100, "a", None, 5000, 5001)
        r = h.check()
        self.assertIs(r["valid"], True)
        self.assertEqual(r["stats"]["dropped_unobserved_info"], 30)

    def test_malformed(self):
        ev = [{"process": 0, "type": "invoke", "f": "read", "key": "a",
               "value": None, "time": 0, "node": "n1", "token": None},
              {"process": 0, "type": "invoke", "f": "read", "key": "a",
               "value": None, "time": 1, "node": "n1", "token": None}]
        with self.assertRaises(history.HistoryError):
            checkers.check_events("register", ev)
        with self.assertRaises(ValueError):
            (H().inv(0, "write", "a", 1, 0).ok(0, 1)
             .inv(0, "write", "a", 1, 2).ok(0, 3)).check()


class SetTest(unittest.TestCase):
    def base(self):
        h = H()
        h.inv(0, "add", None, 1, 0).ok(0, 1)
        h.inv(0, "add", None, 2, 2).fail(0, 3, rc=191)
        h.inv(1, "add", None, 3, 4).info(1, 5)
        return h

    def finish(self, h, reads):
        t = 100
        for i, v in enumerate(reads):
            h.read(1000 + i, None, v, t, t + 1, node="n%d" % (i + 1))
            t += 2
        return h.check("set", expect_nodes=["n1", "n2", "n3"])

    def types(self, r):
        return sorted({a["type"] for a in r["anomalies"]})

    def test_valid(self):
        r = self.finish(self.base(), [[1], [1], [1]])
        self.assertIs(r["valid"], True, r)
        r = self.finish(self.base(), [[1, 3], [1, 3], [1, 3]])
        self.assertIs(r["valid"], True, r)
        self.assertEqual(r["stats"]["info_present"], 1)

    def test_lost(self):
        r = self.finish(self.base(), [[1], [], [1]])
        self.assertEqual(self.types(r), ["lost-ack", "replicas-differ"])

    def test_duplicate(self):
        r = self.finish(self.base(), [[1, 1], [1], [1]])
        self.assertIn("duplicate", self.types(r))
        r = self.finish(self.base(), [[1, 3, 3], [1, 3, 3], [1, 3, 3]])
        self.assertEqual(self.types(r), ["duplicate"])

    def test_failed_visible(self):
        r = self.finish(self.base(), [[1, 2], [1, 2], [1, 2]])
        self.assertEqual(self.types(r), ["failed-value-visible"])

    def test_phantom(self):
        r = self.finish(self.base(), [[1, 7], [1, 7], [1, 7]])
        self.assertEqual(self.types(r), ["phantom"])

    def test_missing_node(self):
        r = self.finish(self.base(), [[1], [1]])
        self.assertEqual(self.types(r), ["final-read-missing"])


class IdempotencyTest(unittest.TestCase):
    def base(self, retry_result="ok"):
        h = H()
        h.inv(0, "create", "t1", "t1@i", 0, token="t1")
        h.ok(0, 1, {"email": "t1@i", "user": "u1"})
        # t2: info, retried on another node, acked
        h.inv(1, "create", "t2", "t2@i", 2, token="t2").info(1, 3)
        h.inv(5, "create", "t2", "t2@i", 4, node="n2", token="t2")
        if retry_result == "ok":
            h.ok(5, 5, {"email": "t2@i", "user": "u2"})
        else:
            h.fail(5, 5, rc=retry_result)
        # t3: failed definitely
        h.inv(0, "create", "t3", "t3@i", 6, token="t3").fail(0, 7, rc=121)
        # reuse of t1 with another body
        h.inv(0, "reuse", "t1", "x@i", 8, token="t1").fail(0, 9, rc=180)
        return h

    def finish(self, h, reads):
        t = 100
        for i, v in enumerate(reads):
            h.read(1000 + i, None, v, t, t + 1, node="n%d" % (i + 1))
            t += 2
        return h.check("idempotency", expect_nodes=["n1", "n2"])

    def types(self, r):
        return sorted({a["type"] for a in r["anomalies"]})

    GOOD = [["t1@i", "u1"], ["t2@i", "u2"]]

    def test_valid(self):
        r = self.finish(self.base(), [self.GOOD, self.GOOD])
        self.assertIs(r["valid"], True, r)
        self.assertEqual(r["stats"]["retried"], 1)

    def test_not_honored(self):
        r = self.finish(self.base(retry_result=161),
                        [self.GOOD, self.GOOD])
        self.assertEqual(self.types(r), ["token-not-honored"])

    def test_lost_and_wrong_id(self):
        r = self.finish(self.base(), [[["t1@i", "u1"]],
                                      [["t1@i", "u1"], ["t2@i", "u9"]]])
        self.assertEqual(self.types(r), ["lost-ack", "wrong-id"])

    def test_duplicate(self):
        r = self.finish(self.base(), [self.GOOD + [["t2@i", "u7"]],
                                      self.GOOD])
        self.assertEqual(self.types(r), ["duplicate"])

    def test_failed_visible_and_reuse(self):
        r = self.finish(self.base(), [self.GOOD + [["t3@i", "u3"]],
                                      self.GOOD + [["x@i", "u4"]]])
        self.assertEqual(self.types(r), ["failed-value-visible",
                                         "reuse-accepted"])

    def test_reuse_ok_is_anomaly(self):
        h = H()
        h.inv(0, "create", "t1", "t1@i", 0, token="t1")
        h.ok(0, 1, {"email": "t1@i", "user": "u1"})
        h.inv(0, "reuse", "t1", "x@i", 2, token="t1")
        h.ok(0, 3, {"email": "x@i", "user": "u1"})
        r = self.finish(h, [[["t1@i", "u1"]], [["t1@i", "u1"]]])
        self.assertEqual(self.types(r), ["reuse-accepted"])

    def test_reuse_refused_connection_is_no_answer(self):
        # A reuse whose connection was refused never reached a server: it
        # says nothing about the token (not "accepted", not a wrong code).
        h = self.base()
        h.inv(0, "reuse", "t1", "y@i", 20, token="t1")
        h._done(0, "fail", 21, error="connect 10.213.0.13:7400: [Errno "
                "111] Connection refused")
        r = self.finish(h, [self.GOOD, self.GOOD])
        self.assertIs(r["valid"], True, r)
        h = self.base()
        h.inv(0, "reuse", "t1", "y@i", 20, token="t1").fail(0, 21, rc=121)
        r = self.finish(h, [self.GOOD, self.GOOD])
        self.assertEqual(self.types(r), ["reuse-accepted"])


class BankTest(unittest.TestCase):
    """Tenant u1 with prepaid disk m1 (unit 100) and Dynamic disk d1
    (charge 5 per period)."""

    SETUP = {"tenants": ["u1"], "month": {"m1": {"tenant": "u1",
                                                 "unit": 100}},
             "dynamic": {"d1": {"tenant": "u1", "charge": 5}}}

    def base(self):
        h = H()
        h.inv(2000000, "setup", None, None, 0).ok(2000000, 1, self.SETUP)
        return h

    @staticmethod
    def chain(*steps):
        """steps: (type, amount, extra dict) -> txns with running
        balances."""
        out, b = [], 0
        for n, (typ, amt, extra) in enumerate(steps, 1):
            b += amt
            t = {"id": "txn-%08d" % n, "type": typ, "amount": amt,
                 "balance": b}
            t.update(extra)
            out.append(t)
        return out

    def final(self, h, txns, t=1000, nodes=("n1", "n2"), balance=None):
        """A copy of @h with final reads of @txns from @nodes."""
        h0, h = h, H()
        h.ev = [dict(e) for e in h0.ev]
        h.open = dict(h0.open)
        bal = txns[-1]["balance"] if txns else 0
        for k, n in enumerate(nodes):
            h.inv(1000001 + k, "final", None, None, t + 2 * k, node=n)
            h.ok(1000001 + k, t + 2 * k + 1,
                 {"balances": {"u1": bal if balance is None else balance},
                  "txns": {"u1": [dict(x) for x in txns]}})
        return h

    @staticmethod
    def rc(h, p, sn, amt, t0, t1, typ="ok", txn=None, bal=None, rc=None):
        h.inv(p, "recharge", "u1", {"serial": sn, "amount": amt}, t0)
        if typ == "ok":
            h.ok(p, t1, {"serial": sn, "amount": amt, "txn": txn,
                         "balance": bal})
        elif typ == "fail":
            h.fail(p, t1, rc)
        else:
            h.info(p, t1)
        return h

    def good(self):
        h = self.base()
        self.rc(h, 0, "s1", 500, 10, 20, txn="txn-00000001", bal=500)
        h.inv(0, "renew", "u1", {"resource": "m1", "amount": 200,
                                 "quantity": 2}, 30)
        h.ok(0, 40, {"resource": "m1", "amount": 200, "quantity": 2,
                     "order": "o1"})
        h.read(1, "u1", 300, 45, 50)
        h.ev[-2]["f"] = h.ev[-1]["f"] = "balance"
        self.rc(h, 0, "s2", 50, 60, 70, typ="info")
        h.read(1, "u1", 295, 80, 90)
        h.ev[-2]["f"] = h.ev[-1]["f"] = "balance"
        txns = self.chain(("Recharge", 500, {"serial": "s1"}),
                          ("Order", -200, {"order": "o1",
                                           "resource": "m1"}),
                          ("Charge", -5, {"resource": "d1", "period": 1}),
                          ("Charge", -5, {"resource": "d1", "period": 2}))
        return h, txns

    def kinds(self, h, **kw):
        r = h.check("bank", **kw)
        return r["valid"], sorted({a["type"] for a in r["anomalies"]})

    def balance_read(self, h, p, value, t0, t1):
        h.read(p, "u1", value, t0, t1)
        h.ev[-2]["f"] = h.ev[-1]["f"] = "balance"
        return h

    def test_valid(self):
        h, txns = self.good()
        self.assertEqual(self.kinds(self.final(h, txns)), (True, []))
        # The indeterminate recharge s2 may have happened (once).
        h, txns = self.good()
        txns = self.chain(*[(t["type"], t["amount"],
                             {k: v for k, v in t.items() if k in (
                                 "serial", "order", "resource", "period")})
                            for t in txns] +
                          [("Recharge", 50, {"serial": "s2"})])
        self.assertEqual(self.kinds(self.final(h, txns)), (True, []))

    def test_lost_recharge(self):
        h, txns = self.good()
        txns = self.chain(("Order", -200, {"order": "o1", "resource": "m1"}))
        v, k = self.kinds(self.final(h, txns))
        self.assertIs(v, False)
        self.assertIn("lost-ack", k)

    def test_double_recharge(self):
        h, txns = self.good()
        txns = txns + self.chain(("Recharge", 500, {"serial": "s1"}))
        txns[-1]["id"] = "txn-00000009"
        txns[-1]["balance"] = txns[-2]["balance"] + 500
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["duplicate"])

    def test_money_created(self):
        h, txns = self.good()
        txns[3]["balance"] += 7
        v, k = self.kinds(self.final(h, txns))
        self.assertIn("chain-broken", k)
        h, txns = self.good()
        self.assertIn("balance-mismatch",
                      self.kinds(self.final(h, txns, balance=1))[1])

    def test_reads(self):
        # stale: 500 was the balance before the acked renewal (done at 40)
        h, txns = self.good()
        self.balance_read(h, 2, 500, 95, 96)
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["stale-read"])
        # future: 300 is only after the renewal, invoked at 30
        h, txns = self.good()
        self.balance_read(h, 2, 300, 21, 22)
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["future-read"])
        # impossible: no prefix has 301
        h, txns = self.good()
        self.balance_read(h, 2, 301, 95, 96)
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["impossible-balance"])
        # non-monotonic: 295 (after charge 1) then 300 (before it)
        h, txns = self.good()
        self.balance_read(h, 2, 295, 100, 101)
        self.balance_read(h, 2, 300, 102, 103)
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["stale-read"])
        # charges land between reads: 295 (in good()), then 290
        h, txns = self.good()
        self.balance_read(h, 2, 295, 100, 101)
        self.balance_read(h, 2, 290, 102, 103)
        self.assertEqual(self.kinds(self.final(h, txns)), (True, []))

    def test_retry_and_reuse(self):
        h = self.base()
        self.rc(h, 0, "s1", 10, 10, 20, typ="info")
        self.rc(h, 5, "s1", 10, 30, 40, typ="fail", rc=161)
        txns = self.chain(("Recharge", 10, {"serial": "s1"}))
        self.assertEqual(self.kinds(self.final(h, txns)), (True, []))
        # 161 means an earlier attempt applied: it must be there
        self.assertIn("lost-ack", self.kinds(self.final(h, []))[1])
        # 161 with no earlier attempt that could have applied
        h = self.base()
        self.rc(h, 0, "s1", 10, 10, 20, typ="fail", rc=161)
        self.assertIn("spurious-exists",
                      self.kinds(self.final(h, self.chain(
                          ("Recharge", 10, {"serial": "s1"}))))[1])
        # failed on every attempt but applied
        h = self.base()
        self.rc(h, 0, "s1", 10, 10, 20, typ="fail", rc=191)
        self.assertEqual(self.kinds(self.final(h, self.chain(
            ("Recharge", 10, {"serial": "s1"}))))[1],
            ["failed-value-visible"])
        # a used serial with another amount must be refused with 161
        h, txns = self.good()
        h.inv(3, "reuse", "u1", {"serial": "s1", "amount": 7}, 95)
        h.ok(3, 96)
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["reuse-accepted"])
        # ... but a refused connection (never sent) or 191 says nothing
        h, txns = self.good()
        h.inv(3, "reuse", "u1", {"serial": "s1", "amount": 7}, 95)
        h._done(3, "fail", 96, error="connect: Connection refused")
        h.inv(3, "reuse", "u1", {"serial": "s1", "amount": 7}, 97)
        h.fail(3, 98, rc=191)
        self.assertEqual(self.kinds(self.final(h, txns)), (True, []))
        # a recharge nobody sent
        h, txns = self.good()
        txns = txns + [{"id": "txn-00000009", "type": "Recharge",
                        "amount": 3, "balance": txns[-1]["balance"] + 3,
                        "serial": "zz"}]
        self.assertEqual(self.kinds(self.final(h, txns))[1], ["phantom"])

    def test_charges(self):
        h, txns = self.good()
        txns[3]["period"] = 1
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["double-charge"])
        h, txns = self.good()
        txns[3]["period"] = 3
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["charge-gap"])
        h, txns = self.good()
        txns[3]["amount"] = -6
        txns[3]["balance"] -= 1
        self.assertIn("wrong-amount", self.kinds(self.final(h, txns))[1])

    def test_refusal(self):
        # a renewal of 400 refused at 300: fine; of 200: wrongly refused
        h, txns = self.good()
        h.inv(4, "renew", "u1", {"resource": "m1", "amount": 400,
                                 "quantity": 4}, 95)
        h.fail(4, 96, rc=171)
        self.assertEqual(self.kinds(self.final(h, txns)), (True, []))
        h, txns = self.good()
        h.inv(4, "renew", "u1", {"resource": "m1", "amount": 200,
                                 "quantity": 2}, 95)
        h.fail(4, 96, rc=171)
        self.assertEqual(self.kinds(self.final(h, txns))[1],
                         ["wrongly-refused"])

    def test_orders_in_doubt(self):
        # an indeterminate renewal may debit once, not twice
        h, txns = self.good()
        h.inv(4, "renew", "u1", {"resource": "m1", "amount": 100,
                                 "quantity": 1}, 95)
        h.info(4, 96)
        one = txns + [{"id": "txn-00000009", "type": "Order",
                       "amount": -100, "balance": txns[-1]["balance"] - 100,
                       "order": "o9", "resource": "m1"}]
        self.assertEqual(self.kinds(self.final(h, one)), (True, []))
        two = one + [{"id": "txn-00000010", "type": "Order",
                      "amount": -100, "balance": one[-1]["balance"] - 100,
                      "order": "o10", "resource": "m1"}]
        self.assertEqual(self.kinds(self.final(h, two))[1], ["phantom"])

    def test_replicas_and_missing(self):
        h, txns = self.good()
        h = self.final(h, txns, nodes=("n1",))
        h.inv(1000002, "final", None, None, 1010, node="n2")
        h.ok(1000002, 1011, {"balances": {"u1": 290},
                             "txns": {"u1": txns[:-1]}})
        self.assertIn("replicas-differ", self.kinds(h)[1])
        h, txns = self.good()
        h = self.final(h, txns, nodes=("n1",))
        self.assertEqual(self.kinds(h, expect_nodes=["n1", "n3"])[1],
                         ["final-read-missing"])


class ReplicasLogsTest(unittest.TestCase):
    def obs(self, n, idx, dg):
        return {"node": n, "AppliedIndex": idx, "Digest": dg}

    def test_replicas(self):
        ok = {"nodes": ["n1", "n2"], "rounds": [
            [self.obs("n1", 5, "aa"), {"node": "n2", "error": "timeout"}],
            [self.obs("n1", 6, "bb"), self.obs("n2", 6, "bb")]]}
        self.assertIs(replicas.check(ok)["valid"], True)
        div = {"nodes": ["n1", "n2"], "rounds": [
            [self.obs("n1", 6, "bb"), self.obs("n2", 6, "cc")],
            [self.obs("n1", 7, "dd"), self.obs("n2", 7, "dd")]]}
        r = replicas.check(div)
        self.assertIs(r["valid"], False)
        self.assertEqual(r["anomalies"][0]["type"], "divergence")
        lag = {"nodes": ["n1", "n2"], "rounds": [
            [self.obs("n1", 6, "bb"), self.obs("n2", 5, "aa")]]}
        r = replicas.check(lag)
        self.assertEqual([a["type"] for a in r["anomalies"]],
                         ["not-converged"])
        # Divergence seen only during the run (observations) counts too.
        during = dict(ok, observed=[self.obs("n1", 3, "x1"),
                                    self.obs("n2", 3, "x1"),
                                    self.obs("n2", 4, "y1"),
                                    self.obs("n1", 4, "y2")])
        r = replicas.check(during)
        self.assertEqual([a["type"] for a in r["anomalies"]],
                         ["divergence"])
        self.assertEqual(r["anomalies"][0]["AppliedIndex"], 4)

    def test_logs(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "logs"))
            with open(os.path.join(d, "logs", "n1.log"), "w") as fh:
                fh.write("info 00:00:00.000 [n1] raft: started\n")
                fh.write("error 00:00:00.000 [n1] raft: disk full\n")
            ev = [{"node": "n1", "event": "start", "pid": 5},
                  {"node": "n1", "event": "exit", "pid": 5,
                   "returncode": -9, "expected": True},
                  {"node": "n2", "event": "exit", "pid": 6,
                   "returncode": 0, "expected": True, "graceful": True}]
            with open(os.path.join(d, "nodes.jsonl"), "w") as fh:
                for e in ev:
                    fh.write(json.dumps(e) + "\n")
                fh.write(json.dumps({"node": "n2", "event": "exit",
                                     "pid": 9, "returncode": 70,
                                     "expected": False}) + "\n")
            r = logs.check(d)
            self.assertIs(r["valid"], True, r)
            self.assertEqual(r["stats"]["error_lines"], 1)
            # A deliberate exit with a status is a fail-stop note.
            self.assertEqual([n["type"] for n in r["notes"]],
                             ["fail-stop-exit"])
            self.assertEqual(r["notes"][0]["returncode"], 70)
            with open(os.path.join(d, "logs", "n2.log"), "w") as fh:
                fh.write("fsm/x.c:10:5: runtime error: signed integer "
                         "overflow\n")
            with open(os.path.join(d, "nodes.jsonl"), "a") as fh:
                fh.write(json.dumps({"node": "n3", "event": "exit",
                                     "pid": 7, "returncode": -11,
                                     "expected": False}) + "\n")
                fh.write(json.dumps({"node": "n1", "event": "exit",
                                     "pid": 8, "returncode": 1,
                                     "expected": True,
                                     "graceful": True}) + "\n")
            os.makedirs(os.path.join(d, "cwd", "n3"))
            open(os.path.join(d, "cwd", "n3", "core"), "w").close()
            r = logs.check(d)
            self.assertEqual(sorted(a["type"] for a in r["anomalies"]),
                             ["bad-exit", "core-file", "crash",
                              "sanitizer"])


class CliTest(unittest.TestCase):
    def run_check(self, workload, events):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl",
                                         delete=False) as fh:
            for e in events:
                fh.write(json.dumps(e) + "\n")
            path = fh.name
        try:
            p = subprocess.run(
                [sys.executable, os.path.join(JEPSEN, "check"),
                 "--workload", workload, path], capture_output=True,
                text=True, timeout=120)
        finally:
            os.unlink(path)
        return p

    def test_cli_exit_codes(self):
        good = sim.register_history(1)
        p = self.run_check("register", good)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("register: valid", p.stdout)
        bad = mutate.reg_stale_read(good, random.Random(1))
        p = self.run_check("register", bad)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("register: invalid", p.stdout)
        self.assertIn("anomaly nonlinearizable", p.stdout)
        p = self.run_check("set", [{"process": 0}])
        self.assertEqual(p.returncode, 2)
        good = sim.bank_history(2)
        p = self.run_check("bank", good)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("bank: valid", p.stdout)
        bad = mutate.bank_double_recharge(good, random.Random(2))
        p = self.run_check("bank", bad)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("anomaly duplicate", p.stdout)


GENERATORS = {
    "register": sim.register_history,
    "set": sim.set_history,
    "idempotency": sim.idempotency_history,
    "bank": sim.bank_history,
}


class MutationTest(unittest.TestCase):
    """Inject each anomaly into clean histories: 100% must be flagged."""

    SEEDS = range(1, 26)

    def test_mutations(self):
        summary = {}
        for workload, gen in GENERATORS.items():
            for seed in self.SEEDS:
                clean = gen(seed)
                r = checkers.check_events(workload, clean)
                self.assertIs(r["valid"], True,
                              "clean %s seed %d: %r" % (workload, seed,
                                                        r["anomalies"]))
                for name, mut in mutate.MUTATIONS[workload].items():
                    rng = random.Random(seed * 7919 + len(name))
                    bad = mut(clean, rng)
                    s = summary.setdefault((workload, name), [0, 0])
                    if bad is None:
                        continue
                    s[0] += 1
                    r = checkers.check_events(workload, bad)
                    if r["valid"] is False:
                        s[1] += 1
                    else:
                        self.fail("%s/%s seed %d not flagged: %r" %
                                  (workload, name, seed, r))
        for (workload, name), (n, flagged) in sorted(summary.items()):
            # Every mutation type must have been exercised many times.
            self.assertGreaterEqual(n, 15, "%s/%s applied only %d times" %
                                    (workload, name, n))
            self.assertEqual(n, flagged)
        self.summary = summary


if __name__ == "__main__":
    unittest.main()
