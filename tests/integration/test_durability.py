"""Every acknowledged write survives kill -9 of the leader and of any single
node during load; restarted nodes neither lose nor re-apply entries (all
replicas end with one digest at one index)."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster  # noqa: E402

t = Y.TAP()
c = Cluster(3, extra=["--snapshot-threshold", "2000", "--snapshot-trailing", "500"])

acked = {}          # uid -> email
unknown = []        # emails whose outcome is unknown after retries
failed = []
lock = threading.Lock()
stop = threading.Event()


def writer(wid):
    cl = c.client()
    i = 0
    while not stop.is_set():
        i += 1
        email = "w%d-%d@dur.example" % (wid, i)
        rc, r = cl.call("CreateUser", {"UserEmail": email, "PassWord": "password-xyz",
                                        "RequestToken": Y.token()}, deadline=15)
        with lock:
            if rc == 0:
                acked[r["UserID"]] = email
            elif rc in (Y.EUNKNOWN, Y.EUNAVAIL):
                unknown.append(email)
            else:
                failed.append((email, rc, r))
    cl.close()


threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(8)]
for th in threads:
    th.start()

def count():
    with lock:
        return len(acked)

time.sleep(2)
# 1. kill -9 the leader mid-load, restart it.
for round_ in range(2):
    ld = c.leader()
    n0 = count()
    c.kill(ld, "KILL")
    t0 = time.time()
    while count() == n0 and time.time() - t0 < 15:
        time.sleep(0.05)
    t.ok(count() > n0, "writes acked again after kill -9 of leader n%d (%.2fs)" % (ld, time.time() - t0))
    time.sleep(1)
    c.start(ld)
    time.sleep(2)

# 2. kill -9 each follower in turn.
for n in (1, 2, 3):
    if n == c.leader():
        continue
    c.kill(n, "KILL")
    time.sleep(1.5)
    c.start(n)
    time.sleep(1.5)

time.sleep(1)
stop.set()
for th in threads:
    th.join(30)

t.ok(len(acked) > 200, "load ran: %d acked creates" % len(acked))
t.ok(not failed, "no definite failures under load", failed[:3])

# 3. A node whose raft port is taken (by anything) says so when it starts,
# instead of libraft's bare "I/O error", and starts once the port is free.
n = 1 if c.leader() != 1 else 2
c.kill(n, "KILL")
time.sleep(0.5)
squatter = socket.socket()
squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
squatter.bind(("127.0.0.1", c.base + 100 + n))
squatter.listen(1)
r = c.cli("start", "--node", str(n), check=False)
t.ok(r.returncode != 0 and "cannot listen on raft address" in (r.stdout + r.stderr +
                                                                 open(os.path.join(c.dir, "n%d.log" % n)).read()),
     "a taken raft port is reported as such at start", (r.stdout + r.stderr)[-300:])
squatter.close()
c.start(n)

d = c.converged([1, 2, 3], deadline=60)
t.ok(d is not None, "all replicas converge to one AppliedIndex and Digest after restarts")

# Every acked create is present, exactly once, on every node.
for n in (1, 2, 3):
    cl = c.client(endpoints=c.api(n))
    seen = {}
    off = 0
    while True:
        rc, r = cl.call("DescribeUser", {"Offset": off, "Limit": 100, "Consistency": "stale"})
        if rc != 0:
            break
        for u in r["Infos"]:
            seen[u["UserID"]] = seen.get(u["UserID"], 0) + 1
        off += len(r["Infos"])
        if not r["Infos"] or off >= r["TotalCount"]:
            break
    missing = [u for u in acked if u not in seen]
    dups = [u for u, k in seen.items() if k > 1]
    t.ok(not missing and not dups, "node %d holds every acked create exactly once" % n,
         "missing=%d dups=%d" % (len(missing), len(dups)))
    cl.close()

# A SIGTERM that comes while a node is still opening stops it gracefully
# (exit 0, "stopped"), not by the signal's default action (a jepsen
# membership run stopped a node 13 ms after its start: exit -15).
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from yhcluster import BIN  # noqa: E402

early = []
with tempfile.TemporaryDirectory() as tmp:
    for k, delay in enumerate((0.015, 0.03, 0.05)):
        raft = "127.0.0.1:%d" % (c.base + 300 + k)
        api = "127.0.0.1:%d" % (c.base + 310 + k)
        with open(os.path.join(tmp, "log%d" % k), "w") as log:
            p = subprocess.Popen([os.path.join(BIN, "yunhand"), "--id", "1",
                                  "--data-dir", os.path.join(tmp, "d%d" % k),
                                  "--raft-addr", raft, "--api-addr", api,
                                  "--peer", "1,%s,%s" % (raft, api)],
                                 stdout=log, stderr=subprocess.STDOUT)
            time.sleep(delay)
            p.terminate()
            rc = p.wait(timeout=30)
        text = open(os.path.join(tmp, "log%d" % k)).read()
        if rc != 0 or "stopped" not in text:
            early.append((delay, rc, text[-200:]))
t.ok(not early, "SIGTERM during start stops the node gracefully (after 15, 30 and 50 ms; the old binary died of it at each)", early[:2])

bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
