"""Regression: an InstallSnapshot that reaches a node busy taking its own
snapshot (libraft 0.15 drops it without an answer, and the leader then waits
install_snapshot_timeout, 30 s by default, before sending it again: the
jepsen partition/pause runs saw followers stalled for 30 s).

The collision is forced, not hoped for: every node has a
`test-snapshot-hold-file` (testing-only config key, cluster/cluster.h): while
that file exists, the node's snapshots wait before encoding.  With the file
present for the leader F, F starts a snapshot and stays busy; F is then
paused (SIGSTOP), the two others elect a leader and write far past F's log
(snapshot threshold 64, trailing 8, so the new leader no longer has the
entries F needs), and F is resumed.  The new leader's first contact makes F
a follower, F answers that it is behind, and the leader sends an
InstallSnapshot that arrives while F's own snapshot is held.  yunhand keeps
that message (log: "arrived during a local snapshot: deferred") and hands it
to libraft when F's snapshot is done.  Then the hold is released and F must
have applied the leader's commit index well within the 8 s
install_snapshot_timeout (a dropped message would cost ~8 s; under 3 s is
asserted)."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster  # noqa: E402

t = Y.TAP()
T_START = time.time()
c = Cluster(3, extra=["--snapshot-threshold", "64", "--snapshot-trailing", "8"])


def hold_file(n):
    return os.path.join(c.tmp, "hold-n%d" % n)


def log_text(n):
    with open(os.path.join(c.dir, "n%d.log" % n), errors="replace") as f:
        return f.read()


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def wait_for(pred, deadline, step=0.05):
    end = time.time() + deadline
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


# Every node gets its hold file key (the file itself does not exist yet):
# rolling restart, one node at a time, so the cluster keeps a majority.
for n in (1, 2, 3):
    with open(os.path.join(c.dir, "n%d.conf" % n), "a") as f:
        f.write("test-snapshot-hold-file = %s\n" % hold_file(n))
    pid = c.pid(n)
    c.kill(n, "TERM")
    wait_for(lambda: not alive(pid), 15)
    c.start(n)
d = c.converged([1, 2, 3], deadline=30)
t.ok(d is not None, "3 nodes restarted with a hold file key and converged")

adm = c.client()
rc, r = adm.call("CreateUser", {"UserEmail": "sc@collision.example", "PassWord": "password-sc",
                                "RequestToken": Y.token()})
t.ok(rc == 0, "CreateUser", r)
uid = r.get("UserID")


def write(cl, k, tag):
    ok = 0
    for i in range(k):
        rc, _ = cl.call("ModifyNameAndRemark", {"ResourceID": uid, "Remark": "%s-%d" % (tag, i)},
                        deadline=10)
        ok += rc == 0
    return ok


F = c.leader()
others = [n for n in (1, 2, 3) if n != F]
t.ok(F is not None, "leader F = n%s" % F)

# 1. F starts a snapshot and is held in it.
n_snap = log_text(F).count("snapshot at")
open(hold_file(F), "w").close()
write(adm, 80, "a")
t.ok(wait_for(lambda: log_text(F).count("snapshot at") > n_snap, 10) is not None,
     "F started a snapshot (held by the hold file)")

# 2. Pause F; the others elect a leader and write far past F's log.
os.kill(c.pid(F), signal.SIGSTOP)
L = c.leader(deadline=20, among=others)
t.ok(L is not None, "n%s elected while F is paused" % L)
cl = Y.Client(",".join(c.api(n) for n in others), c.pub, c.priv)
ok = write(cl, 300, "b")
t.ok(ok >= 290, "%d writes acked without F" % ok)
target = c.describe(L)["CommitIndex"]

# 3. Resume F: the leader's InstallSnapshot arrives during F's held snapshot.
os.kill(c.pid(F), signal.SIGCONT)
# (It comes with the leader's first heartbeats; 2 s is plenty. Without the
# fix the message is dropped, and the release below comes 2 s later.)
deferred = wait_for(lambda: "arrived during a local snapshot: deferred" in log_text(F), 2)
t.ok(deferred is not None, "F deferred the leader's InstallSnapshot that collided with its own "
     "snapshot")

# 4. Release F's snapshot: F installs the leader's snapshot and catches up.
t0 = time.time()
os.unlink(hold_file(F))


def caught_up():
    d = c.describe(F, timeout=1.0)
    return d is not None and d.get("AppliedIndex", 0) >= target


got = wait_for(caught_up, 30)
dt = time.time() - t0
t.ok(got is not None and dt < 3.0,
     "F applied the leader's commit index %d %.2f s after its snapshot was released (< 3 s; a "
     "dropped InstallSnapshot waits the 8 s install_snapshot_timeout)" % (target, dt))
text = log_text(F)
t.ok("delivering the deferred InstallSnapshot" in text and "snapshot restored" in text,
     "F installed the deferred snapshot (log)")
d = c.converged([1, 2, 3], deadline=30)
t.ok(d is not None, "replicas converge (same AppliedIndex and Digest)")
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
print("# runtime %.1f s" % (time.time() - T_START))
if t.failed:
    c.dump_logs(40)
sys.exit(1 if t.failed else 0)
