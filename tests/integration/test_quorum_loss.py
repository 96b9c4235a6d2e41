"""A leader cut off from its majority answers fast instead of holding
clients until libraft steps it down (check-quorum: one to two election
timeouts, 0.6-1.2 s by default): new writes and linearizable reads get 191
(nothing was proposed, retry elsewhere) once no majority was heard for an
election timeout, and writes already proposed get 190 (outcome unknown) at
the same moment.  Both followers are paused with SIGSTOP, so the leader
is alone; then resumed, and the cluster serves again."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster  # noqa: E402

t = Y.TAP()
c = Cluster(3)
adm = c.client()
rc, r = adm.call("CreateUser", {"UserEmail": "ql@quorum.example", "PassWord": "password-ql",
                                "RequestToken": Y.token()})
t.ok(rc == 0, "CreateUser", r)
uid = r.get("UserID")

L = c.leader()
followers = [n for n in (1, 2, 3) if n != L]
conn = Y.Conn(c.api(L), c.pub, c.priv, timeout=10)
rc, _ = conn.call("ModifyNameAndRemark", {"ResourceID": uid, "Remark": "before"})
t.ok(rc == 0, "a write on leader n%d" % L)

for n in followers:
    os.kill(c.pid(n), signal.SIGSTOP)
t_cut = time.time()

# A write proposed right away cannot commit: answered 190 after ~one
# election timeout (600 ms), not held until libraft steps down.
pending = {}


def pending_write():
    cn = Y.Conn(c.api(L), c.pub, c.priv, timeout=10)
    t0 = time.time()
    pending["rc"], _ = cn.call("ModifyNameAndRemark", {"ResourceID": uid, "Remark": "pending"})
    pending["dt"] = time.time() - t0
    cn.close()


th = threading.Thread(target=pending_write)
th.start()
time.sleep(0.75)
# Past an election timeout without a majority: refused at once (by this
# check, or by libraft's step-down if that came first; before these
# changes the write was proposed and held until the step-down).
t0 = time.time()
rc, r = conn.call("ModifyNameAndRemark", {"ResourceID": uid, "Remark": "refused"})
dt = time.time() - t0
t.ok(rc == Y.EUNAVAIL and dt < 0.2, "a new write on the cut-off leader: %s in %.3f s (191, < 0.2 s)"
     % (rc, dt), r)
t0 = time.time()
rc, r = conn.call("DescribeUser", {"UserIDs.0": uid})
dt = time.time() - t0
t.ok(rc == Y.EUNAVAIL and dt < 0.2, "a linearizable read there: %s in %.3f s (191, < 0.2 s)"
     % (rc, dt), r)
th.join(15)
t.ok(pending.get("rc") == Y.EUNKNOWN and pending.get("dt", 99) < 1.0,
     "the write proposed at the cut: %s after %.3f s (190, < 1 s)"
     % (pending.get("rc"), pending.get("dt", -1)))

for n in followers:
    os.kill(c.pid(n), signal.SIGCONT)
cl = c.client()
t0 = time.time()
rc, _ = cl.call("ModifyNameAndRemark", {"ResourceID": uid, "Remark": "after"}, deadline=20)
t.ok(rc == 0, "writes succeed again after the followers resume (%.2f s)" % (time.time() - t0))
d = c.converged([1, 2, 3], deadline=30)
t.ok(d is not None, "replicas converge")
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
print("# cut at %.0f, total %.1f s" % (t_cut, time.time() - t_cut))
if t.failed:
    c.dump_logs(40)
sys.exit(1 if t.failed else 0)
