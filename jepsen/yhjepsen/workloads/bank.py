"""Bank workload: money moves through the real billing API.

Setup (before the nemesis starts, recorded in the history as the harness's
process SETUP_PID): billing period 1 s and a grace period far beyond the
run (nothing is suspended), prices for SSD disks (Month and Dynamic), a zone
and a storage pool; per tenant (a CreateUser): an initial Recharge, one
prepaid Month disk (the target of renewals) and one Dynamic disk, which the
leader's billing tick charges every period (_BillCharge).

Load, per operation on a random tenant:
  recharge  Recharge UserID Amount FromType=Bank SerialNo=<unique>: money
            in.  An indeterminate attempt (or a refused connection after
            one) is retried with the same SerialNo and body on another node
            (up to 6 attempts): 161 then means an earlier attempt applied.
  reuse     an acked SerialNo again with another amount: must be 161.
  renew     RenewResource of the tenant's Month disk, Quantity 1..3: money
            out (an Order transaction), or 171 when the balance is short.
  balance   DescribeBalance UserID (linearizable).
and in the background the billing tick charges every Dynamic disk once per
period: money out that no client asked for.

After healing (quiesce): ModifyBillingConfig Period=10^9 freezes the
billing clock, so no charge is applied after that and every node's final
state is the same.  Final read per node (Consistency stale: that node's own
state): every tenant's Balance and all its transactions (DescribeTransaction,
paged, in TxnID order = log order).  checkers/bankcheck.py checks it.
"""

import time

from ..client import ApiError, TransportError, error_info
from . import FINAL_PID_BASE, PASSWORD, Workload

SETUP_PID = 2000000
FROZEN_PERIOD = 10 ** 9
ZONE_SET = "SSD"


class Bank(Workload):
    name = "bank"
    workers = 4
    tenants = 4
    attempts = 6
    think = (0.0, 0.02)
    period = 1                 # billing period during the run, s
    grace = 10 ** 8            # never suspend during a run
    month_price = 200          # milli-units per GB and month
    dynamic_price = 1          # milli-units per GB and period
    initial = 5000

    def _setup_call(self, f, key, value, method, req, done):
        """Call during setup (no nemesis yet; retried with a RequestToken so
        a retry is the same request) and record it as one operation."""
        req = dict(req)
        req["RequestToken"] = "yhj-%s-setup-%d" % (self.tag,
                                                   next(self.values))
        self.rec.record(SETUP_PID, "invoke", f, key, value, "any")
        try:
            res = self.ctx.cluster.call_any(method, req, timeout=60)
        except (ApiError, TransportError) as e:
            self.rec.record(SETUP_PID, "info", f, key, value, "any",
                            error=error_info(e))
            raise
        out = done(res) if done else value
        self.rec.record(SETUP_PID, "ok", f, key, out, "any")
        return res

    def setup(self):
        c = self.ctx.cluster
        tok = self.tag

        def admin(method, req):
            req = dict(req)
            req["RequestToken"] = "yhj-%s-cfg-%d" % (tok, next(self.values))
            return c.call_any(method, req, timeout=60)
        admin("ModifyBillingConfig", {"Period": self.period,
                                      "GracePeriod": self.grace})
        admin("ModifyPrice", {"Spec": "Disk:" + ZONE_SET,
                              "ChargeType": "Month",
                              "Price": self.month_price})
        admin("ModifyPrice", {"Spec": "Disk:" + ZONE_SET,
                              "ChargeType": "Dynamic",
                              "Price": self.dynamic_price})
        zone = admin("CreateZone", {"Name": "bank-%s" % tok})["ZoneID"]
        admin("CreateStoragePool", {"ZoneID": zone, "SetType": ZONE_SET,
                                    "Backend": "local",
                                    "Capacity": 1000000})
        self.zone = zone
        self.tenant_ids = []
        self.month = {}     # tenant -> (disk, unit price)
        meta = {"tenants": [], "month": {}, "dynamic": {}}
        for k in range(self.tenants):
            uid = admin("CreateUser", {
                "UserEmail": "bank%d-%s@bank.jepsen" % (k, tok),
                "PassWord": PASSWORD})["UserID"]
            self.tenant_ids.append(uid)
            meta["tenants"].append(uid)
        for k, uid in enumerate(self.tenant_ids):
            serial = "yhj-%s-init-%d" % (tok, k)
            self._setup_call(
                "recharge", uid, {"serial": serial, "amount": self.initial},
                "Recharge", {"UserID": uid, "Amount": self.initial,
                             "FromType": "Bank", "SerialNo": serial},
                lambda r, s=serial: {"serial": s, "amount": self.initial,
                                     "txn": r.get("TxnID"),
                                     "balance": r.get("Balance")})
            size = 1 + k % 3
            unit = admin("GetDiskPrice", {"SetType": ZONE_SET, "Size": size,
                                          "ChargeType": "Month",
                                          "Quantity": 1})["Price"]
            dyn_size = 1 + (k + 1) % 3
            charge = admin("GetDiskPrice", {
                "SetType": ZONE_SET, "Size": dyn_size,
                "ChargeType": "Dynamic"})["UnitPrice"]
            for ct, sz, amount in (("Month", size, unit),
                                   ("Dynamic", dyn_size, 0)):
                holder = {}

                def done(r, ct=ct, amount=amount, holder=holder):
                    holder["disk"] = r.get("DiskID")
                    return {"resource": r.get("DiskID"), "amount": amount,
                            "quantity": 1, "order": r.get("OrderID")}
                # The resource ID is known only once created: the invoke
                # names it "?" (a create is never left in doubt here).
                req = {"ZoneID": zone, "Size": sz, "SetType": ZONE_SET,
                       "ChargeType": ct, "TenantID": uid,
                       "Name": "bank-%s" % ct.lower()}
                if ct == "Month":
                    req["Quantity"] = 1
                self._setup_call("create", uid, {"resource": "?",
                                                 "amount": amount,
                                                 "quantity": 1},
                                 "CreateDisk", req, done)
                if ct == "Month":
                    self.month[uid] = (holder["disk"], unit)
                    meta["month"][holder["disk"]] = {"tenant": uid,
                                                     "unit": unit}
                else:
                    meta["dynamic"][holder["disk"]] = {"tenant": uid,
                                                       "charge": charge}
        # What the checker needs to know of the setup (tenants, prices).
        self.rec.record(SETUP_PID, "invoke", "setup", None, None, "any")
        self.rec.record(SETUP_PID, "ok", "setup", None, meta, "any")
        self.acked_serials = []
        self.ctx.meta["bank"] = meta

    def op(self, p):
        uid = p.rng.choice(self.tenant_ids)
        r = p.rng.random()
        if r < 0.30:
            self.recharge(p, uid)
        elif r < 0.36 and self.acked_serials:
            self.reuse(p, uid)
        elif r < 0.62:
            self.renew(p, uid)
        else:
            typ, res, node = p.call("balance", uid, None, "DescribeBalance",
                                    {"UserID": uid})
            if typ == "ok":
                p.ok("balance", uid, res.get("Balance"), node)

    def recharge(self, p, uid):
        n = next(self.values)
        serial = "yhj-%s-%d" % (self.tag, n)
        amount = p.rng.randint(1, 1000)
        body = {"serial": serial, "amount": amount}
        req = {"UserID": uid, "Amount": amount, "FromType": "Bank",
               "SerialNo": serial}
        for attempt in range(self.attempts):
            typ, res, node = p.call("recharge", uid, dict(body), "Recharge",
                                    dict(req))
            if typ == "ok":
                p.ok("recharge", uid, dict(body, txn=res.get("TxnID"),
                                           balance=res.get("Balance")), node)
                self.acked_serials.append(serial)
                return
            if typ == "fail" and not isinstance(res, TransportError):
                return  # definite (161 on a retry: an earlier one applied)
            p.shift += 1
            time.sleep(min(1.0, 0.2 + 0.2 * attempt))

    def reuse(self, p, uid):
        serial = p.rng.choice(self.acked_serials)
        amount = p.rng.randint(1001, 2000)  # never an original amount
        typ, res, node = p.call("reuse", uid, {"serial": serial,
                                               "amount": amount},
                                "Recharge", {"UserID": uid, "Amount": amount,
                                             "FromType": "Bank",
                                             "SerialNo": serial})
        if typ == "ok":
            p.ok("reuse", uid, {"serial": serial, "amount": amount,
                                "txn": res.get("TxnID")}, node)

    def renew(self, p, uid):
        disk, unit = self.month[uid]
        q = p.rng.randint(1, 3)
        body = {"resource": disk, "amount": unit * q, "quantity": q}
        typ, res, node = p.call("renew", uid, dict(body), "RenewResource",
                                {"ResourceID": disk, "Quantity": q})
        if typ == "ok":
            p.ok("renew", uid, dict(body, order=res.get("OrderID")), node)

    def quiesce(self):
        """Freeze the billing clock so the final states stop changing."""
        pid = FINAL_PID_BASE + 100
        self.rec.record(pid, "invoke", "freeze", None, FROZEN_PERIOD, "any")
        try:
            self.ctx.cluster.call_any("ModifyBillingConfig", {
                "Period": FROZEN_PERIOD,
                "RequestToken": "yhj-%s-freeze" % self.tag}, timeout=60)
        except (ApiError, TransportError) as e:
            self.rec.record(pid, "info", "freeze", None, FROZEN_PERIOD,
                            "any", error=error_info(e))
            return
        self.rec.record(pid, "ok", "freeze", None, FROZEN_PERIOD, "any")

    def final(self, node_id):
        pid = FINAL_PID_BASE + node_id
        name = "n%d" % node_id
        self.rec.record(pid, "invoke", "final", None, None, name)
        c = self.ctx.cluster.client(node_id, timeout=10)
        try:
            out = {"balances": {}, "txns": {}}
            for uid in self.tenant_ids:
                r = c.call("DescribeBalance", {"UserID": uid,
                                               "Consistency": "stale"})
                out["balances"][uid] = r.get("Balance")
                out["txns"][uid] = list_txns(c, uid)
        except (ApiError, TransportError) as e:
            self.rec.record(pid, "fail", "final", None, None, name,
                            error=error_info(e))
            return False
        finally:
            c.close()
        self.rec.record(pid, "ok", "final", None, out, name)
        return True


def list_txns(c, uid, deadline_s=60):
    """All transactions of @uid from one node's own state, paged."""
    out = []
    offset = 0
    deadline = time.monotonic() + deadline_s
    while True:
        if time.monotonic() > deadline:
            raise TransportError("listing transactions took over %ss" %
                                 deadline_s, True)
        r = c.call("DescribeTransaction", {"UserID": uid, "Offset": offset,
                                           "Limit": 100,
                                           "Consistency": "stale"})
        infos = r.get("Infos") or []
        for t in infos:
            row = {"id": t.get("TxnID"), "type": t.get("Type"),
                   "amount": t.get("Amount"), "balance": t.get("Balance")}
            for src, dst in (("SerialNo", "serial"), ("OrderID", "order"),
                             ("ResourceID", "resource"),
                             ("Period", "period")):
                if t.get(src) not in (None, ""):
                    row[dst] = t.get(src)
            if t.get("TenantID") not in (None, uid):
                row["tenant"] = t.get("TenantID")
            out.append(row)
        offset += len(infos)
        if not infos or offset >= r.get("TotalCount", 0):
            return out
