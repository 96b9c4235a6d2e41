"""Register workload: per key (a user), write / read / compare-and-set.

  write  ModifyNameAndRemark ResourceID=uid Remark=str(v)
  read   DescribeUser UserIDs.0=uid (linearizable) -> Remark, Revision
  cas    [e, n]: ModifyNameAndRemark IfRevision=R Remark=str(n), where R is
         the Revision this process last saw together with value e.

One more worker is a liveness probe: it writes (and reads) its own key
"kp" with a 1 s timeout, moving to the next node after every operation, so
that the time from a fault to the first acknowledged write measures the
cluster, not how long the ordinary workers stay blocked in 5 s timeouts.

Revisions are the log index of the last modification, and every written
value is unique (a run-wide counter), so "IfRevision = R" holds exactly when
the register still holds e: a cas in the register model.  Remark "" (never
written) is the initial value null.  RetCode 160 is a definite failure.
"""

import time

from . import PASSWORD, Workload


def _parse(remark):
    if remark in ("", None):
        return None
    if isinstance(remark, str) and remark.isdigit():
        return int(remark)
    return remark


class Register(Workload):
    name = "register"
    workers = 7      # the last one is the liveness probe
    keys = 5
    probe_timeout = 1.0

    def setup(self):
        self.uids = {}
        for k in range(self.keys):
            r = self.ctx.cluster.call_any("CreateUser", {
                "UserEmail": "reg%d-%s@register.jepsen" % (k, self.tag),
                "PassWord": PASSWORD}, timeout=30)
            self.uids["k%d" % k] = r["UserID"]
        r = self.ctx.cluster.call_any("CreateUser", {
            "UserEmail": "regprobe-%s@register.jepsen" % self.tag,
            "PassWord": PASSWORD}, timeout=30)
        self.probe_uid = r["UserID"]
        self.ctx.meta["register_keys"] = dict(self.uids, kp=r["UserID"])

    def op(self, p):
        if p.slot == self.workers - 1:
            return self.probe(p)
        key = p.rng.choice(sorted(self.uids))
        uid = self.uids[key]
        r = p.rng.random()
        seen = p.seen.get(key)
        self.step(p, key, uid, r, seen)

    def probe(self, p):
        p.timeout = self.probe_timeout
        p.shift += 1
        r = 0.0 if p.rng.random() < 0.2 else 0.9  # 20% reads, 80% writes
        self.step(p, "kp", self.probe_uid, r, p.seen.get("kp"), cas=False)
        time.sleep(0.05)

    def step(self, p, key, uid, r, seen, cas=True):
        if r < 0.5 or (seen is None and cas):
            typ, res, node = p.call("read", key, None, "DescribeUser",
                                    {"UserIDs.0": uid})
            if typ != "ok":
                return
            infos = res.get("Infos") or []
            if len(infos) != 1 or infos[0].get("UserID") != uid:
                # An acked user that a linearizable read cannot find: not
                # a register value anyone wrote, so the checker flags it.
                p.ok("read", key, "<user %s missing: %d infos>" %
                     (uid, len(infos)), node)
                return
            v = _parse(infos[0].get("Remark"))
            p.seen[key] = (v, infos[0].get("Revision"))
            p.ok("read", key, v, node)
        elif r < 0.75 or not cas:
            v = next(self.values)
            typ, res, node = p.call("write", key, v, "ModifyNameAndRemark",
                                    {"ResourceID": uid, "Remark": str(v)})
            if typ == "ok":
                p.seen[key] = (v, res.get("Revision"))
                p.ok("write", key, v, node)
        else:
            e, rev = seen
            n = next(self.values)
            typ, res, node = p.call("cas", key, [e, n],
                                    "ModifyNameAndRemark",
                                    {"ResourceID": uid, "Remark": str(n),
                                     "IfRevision": rev})
            if typ == "ok":
                p.seen[key] = (n, res.get("Revision"))
                p.ok("cas", key, [e, n], node)
            else:
                p.seen.pop(key, None)

    def final(self, node_id):
        """Linearizable reads of every key through @node_id."""
        from . import FINAL_PID_BASE, Proc
        p = Proc(self, 0)
        p.pid = FINAL_PID_BASE + node_id
        ok = True
        try:
            keys = dict(self.uids, kp=self.probe_uid)
            for key in sorted(keys):
                typ, res, node = p.call("read", key, None, "DescribeUser",
                                        {"UserIDs.0": keys[key]},
                                        node=node_id)
                if typ != "ok":
                    ok = False
                    p.pid = FINAL_PID_BASE + node_id
                    continue
                infos = res.get("Infos") or []
                if len(infos) != 1:
                    p.ok("read", key, "<user missing>", node)
                    continue
                p.ok("read", key, _parse(infos[0].get("Remark")), node)
        finally:
            p.close()
        return ok
