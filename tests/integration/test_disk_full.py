"""A node whose raft log cannot be written (disk full) stops cleanly and
comes back: regression test of the crash the jepsen disk-full nemesis found
(libraft 0.15's cleanup after a failed append crashed a leader with
SIGSEGV; cluster/hooks.c now stops the node with exit 70 first).

Every node's <data>/raft is a small tmpfs (the state and the archive stay
on the real disk, so the archive copies segments across filesystems).
Writers keep writing, each to its own user, through any node.  First a
follower's raft tmpfs is filled to the last byte, then the leader's: the
node must stop by itself (exit status 70 when it can be read, the log
saying why, no crash, no sanitizer report) while the other two keep
acknowledging writes; after the filler is removed it restarts, catches up
and holds the same digest.  Finally every acknowledged write is there."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster  # noqa: E402

t = Y.TAP()
if os.geteuid() != 0:
    t.ok(False, "disk full: needs root (tmpfs mounts)")
    sys.exit(1)

c = Cluster(3, extra=["--segment-size", str(1 << 20), "--snapshot-threshold", "4096",
                      "--snapshot-trailing", "1024"], tmpfs=("raft", 96))
# (24 MB was too small once the suite wrote 58-67k entries before the
# restarts: a restarted node refilled its raft disk while catching up and
# stopped again, exit 70, so the replicas never converged)
adm = c.client()
WRITERS = 4
uids = []
for w in range(WRITERS):
    rc, r = adm.call("CreateUser", {"UserEmail": "df%d@disk.example" % w,
                                    "PassWord": "password-df%d" % w, "RequestToken": Y.token()})
    c.must(rc, r, "CreateUser")
    uids.append(r["UserID"])

stop = threading.Event()
acked = [0] * WRITERS   # last acknowledged sequence number per writer
acks = [0]              # acknowledged writes in all
lock = threading.Lock()
hold = threading.Event()  # writers pause while replicas are compared
PAD = "x" * 240


def writer(w):
    cl = c.client()
    seq = 0
    while not stop.is_set():
        if hold.is_set():  # a convergence check is running
            time.sleep(0.05)
            continue
        seq += 1
        rc, _ = cl.call("ModifyNameAndRemark",
                        {"ResourceID": uids[w], "Remark": "%08d %s" % (seq, PAD),
                         "RequestToken": Y.token()}, deadline=30)
        if rc == 0:
            with lock:
                acked[w] = seq
                acks[0] += 1
    cl.close()


def alive(pid):
    """Running (a zombie is not); its wait status when it is a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False, None
    if fields[0] == "Z":
        return False, int(fields[49]) if len(fields) > 49 else None
    return True, None


def fill(n):
    """Fill n's raft tmpfs to the last byte; returns the filler's path."""
    path = os.path.join(c.dir, "n%d" % n, "raft", "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for block in (1 << 20, 4096, 1):
            buf = b"\0" * block
            while True:
                try:
                    os.write(fd, buf)
                except OSError:
                    break
    finally:
        os.close(fd)
    return path


threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
for th in threads:
    th.start()
time.sleep(2)
t.ok(acks[0] > 0, "writes acknowledged before any disk is full (%d)" % acks[0])

for role in ("follower", "leader"):
    L = c.leader()
    target = L if role == "leader" else [n for n in (1, 2, 3) if n != L][0]
    pid = c.pid(target)
    filler = fill(target)
    t0 = time.time()
    running, status = True, None
    while time.time() - t0 < 30:
        running, status = alive(pid)
        if not running:
            break
        time.sleep(0.05)
    dt = time.time() - t0
    t.ok(not running, "the %s n%d stopped by itself %.1f s after its raft disk filled"
         % (role, target, dt))
    if status is not None:
        t.ok(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 70,
             "n%d exit status 70 (stop and replay), not a crash" % target, status)
    with open(os.path.join(c.dir, "n%d.log" % target), errors="replace") as f:
        log = f.read()
    t.ok("writing the raft log failed" in log, "n%d's log says the raft log write failed" % target,
         log[-600:])
    bad = [ln for ln in log.splitlines()[-200:] if "SEGV" in ln or "Sanitizer" in ln
           or "Assertion" in ln or "core dumped" in ln]
    t.ok(not bad, "n%d did not crash" % target, bad[:3])
    with lock:
        before = acks[0]
    time.sleep(3)
    with lock:
        after = acks[0]
    t.ok(after > before, "the other two nodes keep acknowledging writes (%d in 3 s)"
         % (after - before))
    os.unlink(filler)
    if running:
        c.kill(target)  # (the failure above is the report; go on)
        time.sleep(0.5)
    c.start(target)
    # equal AppliedIndex on all three needs a moment without writes: at
    # tens of thousands of writes per minute the nodes are never caught at
    # the same index while the writers run
    hold.set()
    d = c.converged([1, 2, 3], deadline=60)
    hold.clear()
    t.ok(d is not None, "n%d restarted, caught up, same AppliedIndex and Digest" % target)

stop.set()
for th in threads:
    th.join(60)
with lock:
    want = list(acked)
missing = []
d = c.converged([1, 2, 3], deadline=60)
t.ok(d is not None, "replicas converge after the writers stop")
rd = c.client()  # (adm's connections died with the nodes)
for n in (1, 2, 3):
    # converged: every node's own state, read locally
    rc, r = rd.call("DescribeUser", {"UserIDs": uids, "Limit": 100, "Consistency": "stale"},
                    endpoint=c.api(n))
    if rc != 0:
        missing.append("n%d: %s" % (n, rc))
        continue
    got = {u["UserID"]: int(u.get("Remark", "0 ").split()[0]) for u in r["Infos"]}
    for w, uid in enumerate(uids):
        if got.get(uid, 0) < want[w]:
            missing.append("n%d: %s at %s < acked %d" % (n, uid, got.get(uid), want[w]))
t.ok(not missing, "every acknowledged write is on every node (%d acked)" % acks[0], missing[:3])
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
sys.exit(1 if t.failed else 0)
