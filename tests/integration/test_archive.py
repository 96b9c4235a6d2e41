"""The command-log archive: compacted segments are kept in <data>/archive,
`yunhan replay` rebuilds the live digest from the whole history (index 1 on,
no snapshot), `--to TIME` stops at a time, and `yunhan audit` lists every
command with who, what, where and the result."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster, YUNHAN  # noqa: E402

t = Y.TAP()
# Small segments and frequent snapshots so that raft_uv compacts many
# segments during the test.
c = Cluster(3, extra=["--snapshot-threshold", "256", "--snapshot-trailing", "64",
                      "--segment-size", "65536"])
adm = c.client()
rc, r = adm.call("CreateUser", {"UserEmail": "arch@it.example", "PassWord": "password-arch",
                                "RequestToken": Y.token()})
t.ok(rc == 0, "tenant created", r)
uid = r.get("UserID")
N = 1500
ok = 0
mid_time = None
for i in range(N):
    rc, _ = adm.call("ModifyNameAndRemark", {"ResourceID": uid, "Remark": "r%05d" % i + "x" * 200,
                                               "RequestToken": Y.token()})
    ok += rc == 0
    if i == N // 2:
        time.sleep(1.2)
        mid_time = int(time.time())
        time.sleep(1.2)
t.ok(ok == N, "%d writes acknowledged" % N, ok)

d = c.converged([1, 2, 3], deadline=20)
t.ok(d is not None, "replicas converge")
leader = c.leader()
victim = [n for n in (1, 2, 3) if n != leader][0]
arch = os.path.join(c.dir, "n%d" % victim, "archive")
segs = sorted(os.listdir(arch)) if os.path.isdir(arch) else []
t.ok(len(segs) >= 5 and segs[0].startswith("0000000000000001-"),
     "compacted segments are archived from index 1", segs[:3])
raft = os.listdir(os.path.join(c.dir, "n%d" % victim, "raft"))
t.ok(not any(s.startswith("0000000000000001-") for s in raft),
     "raft_uv itself dropped the first segment (only the archive keeps it)")

c.kill(victim, "TERM")
time.sleep(1.0)
live = c.describe(leader)
ddir = os.path.join(c.dir, "n%d" % victim)
r = subprocess.run([YUNHAN, "replay", "--data-dir", ddir, "--to", str(live["AppliedIndex"])],
                   capture_output=True, text=True, timeout=120)
out = r.stdout + r.stderr
t.ok(r.returncode == 0 and "whole history from index 1" in out and live["Digest"] in out,
     "replay of the whole history equals the live digest", out.strip()[-300:])

# --to TIME: the state after the last command stamped at or before mid_time.
r = subprocess.run([YUNHAN, "replay", "--data-dir", ddir, "--to", "@%d" % mid_time],
                   capture_output=True, text=True, timeout=120)
t.ok(r.returncode == 0 and r.stdout.startswith("index "), "replay --to @TIME", r.stdout + r.stderr[-200:])
try:
    mid_index = int(r.stdout.split()[1])
except (IndexError, ValueError):
    mid_index = 0
a = subprocess.run([YUNHAN, "audit", "--data-dir", ddir, "--json"], capture_output=True, text=True,
                   timeout=120)
recs = [json.loads(ln) for ln in a.stdout.splitlines() if ln.startswith("{")]
mods = [x for x in recs if x["Action"] == "ModifyNameAndRemark" and x["RetCode"] == 0]
t.ok(a.returncode == 0 and len(mods) == N, "audit lists every acknowledged write", (a.returncode, len(mods)))
t.ok(all(x.get("Source") and x.get("UserID") == "uid-admin" for x in mods),
     "audit records who and from where")
before = [x for x in recs if x["Time"] <= mid_time]
t.ok(mid_index > 0 and before and max(x["Index"] for x in before) <= mid_index <
     min(x["Index"] for x in recs if x["Time"] > mid_time),
     "--to TIME stops between the commands before and after it", mid_index)
a = subprocess.run([YUNHAN, "audit", "--data-dir", ddir, "--action", "CreateUser"],
                   capture_output=True, text=True, timeout=120)
lines = [ln for ln in a.stdout.splitlines() if ln.strip()]
t.ok(a.returncode == 0 and len(lines) == 1 and "arch" not in lines[0] and uid in lines[0],
     "audit --action filters (table output names the resource)", lines[:2])
r = subprocess.run([YUNHAN, "replay", "--data-dir", ddir, "--to", "2001-01-01T00:00:00Z"],
                   capture_output=True, text=True, timeout=60)
t.ok(r.returncode != 0 and "no command" in r.stderr, "a time before the first command is an error",
     r.stderr[-200:])
c.start(victim)
d = c.converged([1, 2, 3], deadline=30)
t.ok(d is not None, "the node rejoins after the offline replay")
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
