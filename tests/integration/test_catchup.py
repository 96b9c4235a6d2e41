"""A node stopped while many entries are written catches up through
InstallSnapshot (low snapshot threshold), and membership goes 3 -> 5 -> 3
under load without losing an acknowledged write."""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster, YUNHAN  # noqa: E402

N_ENTRIES = int(os.environ.get("YH_CATCHUP_ENTRIES", "100000"))
t = Y.TAP()
c = Cluster(3, extra=["--snapshot-threshold", "4096", "--snapshot-trailing", "1024"])
adm = c.client()
rc, r = adm.call("CreateUser", {"UserEmail": "target@cu.example", "PassWord": "password-cu"})
uid = r["UserID"]

ld = c.leader()
victim = [n for n in (1, 2, 3) if n != ld][0]
c.kill(victim, "KILL")
before = c.describe(ld)["AppliedIndex"]

# Write N_ENTRIES entries with the bench client (pipelined, 256-byte remarks).
env = dict(os.environ, YUNHAN_ENDPOINT=",".join(c.api(n) for n in (1, 2, 3) if n != victim),
           YUNHAN_PUBLIC_KEY=c.pub, YUNHAN_PRIVATE_KEY=c.priv)
r = subprocess.run([YUNHAN, "bench", "--connections", "16", "--pipeline", "32",
                    "--count", str(N_ENTRIES), "--seconds", "120", "--resource", uid],
                   capture_output=True, text=True, env=env, timeout=300)
print("# " + (r.stdout + r.stderr).strip().replace("\n", "\n# "))
after = c.describe(ld)["AppliedIndex"]
t.ok(after - before >= N_ENTRIES * 0.98, "%d entries written while n%d was down" % (after - before, victim))

t0 = time.time()
c.start(victim)
d = c.converged([1, 2, 3], deadline=120)
t.ok(d is not None, "stopped node caught up (%.1fs) with the same digest" % (time.time() - t0))
with open(os.path.join(c.dir, "n%d.log" % victim), errors="replace") as f:
    log = f.read()
t.ok("snapshot restored" in log, "it caught up through InstallSnapshot (log says 'snapshot restored')")

# Membership 3 -> 5 -> 3 under load.
acked = []
stop = threading.Event()
errs = []
def load():
    cl = c.client()
    i = 0
    while not stop.is_set():
        i += 1
        rc, r = cl.call("CreateUser", {"UserEmail": "m%d@cu.example" % i, "PassWord": "password-m",
                                        "RequestToken": Y.token()}, deadline=20)
        if rc == 0:
            acked.append(r["UserID"])
        elif rc not in (Y.EUNKNOWN, Y.EUNAVAIL):
            errs.append((rc, r))
th = threading.Thread(target=load, daemon=True)
th.start()
for n in (4, 5):
    r = c.cli("add", "--node", str(n), check=False, timeout=120)
    t.ok(r.returncode == 0, "cluster add node %d" % n, (r.stdout + r.stderr)[-300:])
d = c.describe(1)
t.ok(d is not None and len(d["Nodes"]) == 5 and all(x["Role"] == "voter" for x in d["Nodes"]),
     "5 voters", d and d["Nodes"])
for n in (4, 5):
    r = c.cli("remove", "--node", str(n), check=False, timeout=120)
    t.ok(r.returncode == 0, "cluster remove node %d" % n, (r.stdout + r.stderr)[-300:])
time.sleep(1)
stop.set()
th.join(30)
d = c.describe(1)
t.ok(d is not None and len(d["Nodes"]) == 3, "back to 3 nodes", d and d["Nodes"])
t.ok(len(acked) > 20 and not errs, "writes kept succeeding during membership changes (%d)" % len(acked), errs[:3])
d = c.converged([1, 2, 3], deadline=60)
t.ok(d is not None, "replicas converge after membership changes")
cl = c.client()
rc, r = cl.call("DescribeUser", {"UserIDs": acked[-50:], "Limit": 100})
t.ok(rc == 0 and r["TotalCount"] == len(acked[-50:]), "acked creates present after 3->5->3")
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
