"""API behaviour on a real 3-node cluster: routing, consistency, idempotency,
optimistic concurrency, auth, permissions, Watch, operation log, replay."""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster, YUNHAN  # noqa: E402

t = Y.TAP()
c = Cluster(3)
adm = c.client()

rc, d = adm.call("DescribeCluster")
t.ok(rc == 0 and d.get("LeaderID") in (1, 2, 3) and len(d.get("Nodes", [])) == 3,
     "DescribeCluster shows 3 nodes and a leader", d)
anon = Y.Conn(c.api(1))
rc, d = anon.call("DescribeCluster", {}, auth=False)
t.ok(rc == 0, "DescribeCluster needs no auth")
rc, d = anon.call("DescribeUser", {}, auth=False)
t.ok(rc == Y.EAUTH, "DescribeUser without auth is refused (130)", rc)

leader = c.leader()
followers = [n for n in (1, 2, 3) if n != leader]

# Writes sent to followers succeed; a read on another node right after sees it.
ok_all = True
uids = []
for i in range(20):
    f = followers[i % 2]
    other = followers[(i + 1) % 2]
    rc, r = adm.call("CreateUser", {"UserEmail": "u%d@it.example" % i, "PassWord": "password-%d" % i,
                                     "RequestToken": Y.token()}, endpoint=c.api(f))
    if rc != 0:
        ok_all = False
        print("# create via follower:", rc, r)
        break
    uid = r["UserID"]
    uids.append(uid)
    rc, r = adm.call("DescribeUser", {"UserIDs.0": uid}, endpoint=c.api(other))
    if rc != 0 or r.get("TotalCount") != 1 or r["Infos"][0]["UserID"] != uid:
        ok_all = False
        print("# read-after-write on other node:", rc, r)
        break
t.ok(ok_all and len(uids) == 20, "writes via followers succeed; reads on another node see them")

# The list form of parameters works too.
rc, r = adm.call("DescribeUser", {"UserIDs": uids[:3]})
t.ok(rc == 0 and r.get("TotalCount") == 3, "DescribeUser with a UserIDs array", r)

# Stale reads are served locally and say so.
rc, r = adm.call("DescribeUser", {"UserIDs.0": uids[0], "Consistency": "stale"}, endpoint=c.api(followers[0]))
t.ok(rc == 0 and r.get("Consistency") == "stale", "stale read says so", r)
rc, r = adm.call("DescribeUser", {"Consistency": "sometimes"})
t.ok(rc == Y.EINVAL, "bad Consistency is an invalid parameter", rc)

# Idempotency: same token + same body -> first result; other body -> 180.
tok = Y.token()
body = {"UserEmail": "idem@it.example", "PassWord": "password-idem", "RequestToken": tok}
rc1, r1 = adm.call("CreateUser", body, endpoint=c.api(followers[0]))
rc2, r2 = adm.call("CreateUser", body, endpoint=c.api(followers[1]))
t.ok(rc1 == 0 and rc2 == 0 and r1.get("UserID") == r2.get("UserID"),
     "same RequestToken, same body: the first result", (r1, r2))
rc3, r3 = adm.call("CreateUser", dict(body, UserEmail="idem2@it.example"))
t.ok(rc3 == Y.ETOKEN, "same RequestToken, other body: 180", (rc3, r3))
rc, r = adm.call("DescribeUser", {"Limit": 100})
emails = [u["UserEmail"] for u in r.get("Infos", [])]
t.ok(emails.count("idem@it.example") == 1 and "idem2@it.example" not in emails,
     "the token's create happened exactly once")

# IfRevision (optimistic concurrency).
uid = uids[0]
rc, r = adm.call("DescribeUser", {"UserIDs.0": uid})
rev = r["Infos"][0]["Revision"]
rc, r = adm.call("ModifyNameAndRemark", {"ResourceID": uid, "Remark": "v1", "IfRevision": rev})
t.ok(rc == 0 and r.get("Revision", 0) > rev, "ModifyNameAndRemark with the right IfRevision", r)
rc2, r2 = adm.call("ModifyNameAndRemark", {"ResourceID": uid, "Remark": "v2", "IfRevision": rev})
t.ok(rc2 == Y.ECONFLICT, "a stale IfRevision is a conflict (160)", (rc2, r2))
rc, r = adm.call("DescribeUser", {"UserIDs.0": uid})
t.ok(r["Infos"][0]["Remark"] == "v1", "the conflicting write changed nothing")

# Missing/invalid parameters and unknown actions.
rc, r = adm.call("CreateUser", {"PassWord": "password-x"})
t.ok(rc == Y.EMISSING and "UserEmail" in r.get("Message", ""), "missing parameter is named", r)
rc, r = adm.call("ModifyNameAndRemark", {"ResourceID": uid, "IfRevision": "abc", "Remark": "x"})
t.ok(rc == Y.EINVAL, "non-integer IfRevision is invalid", (rc, r))
rc, r = adm.call("LaunchMissiles", {})
t.ok(rc == Y.EACTION, "unknown action: 110", rc)

# Authentication: wrong key, old/future timestamp, signature over other bytes.
cn = Y.Conn(c.api(1), c.pub, c.priv)
def signed(method, req, **kw):
    import msgpack
    raw = msgpack.packb(req, use_bin_type=True)
    a = cn.sign(method, raw, **kw)
    return a, raw
for name, kw in [("wrong private key", {"priv": "00" * 32}),
                 ("timestamp 10 minutes old", {"ts": int(time.time()) - 600}),
                 ("timestamp 10 minutes ahead", {"ts": int(time.time()) + 600}),
                 ("unknown public key", {"pub": "feedface"})]:
    import msgpack
    req = {"Limit": 1}
    a, raw = signed("DescribeUser", req, **kw)
    cn.msgid += 1
    cn.send_raw(msgpack.packb([0, cn.msgid, "DescribeUser", [req, a]], use_bin_type=True))
    m = cn.wait(cn.msgid)
    t.ok(m[2] is not None and m[2]["RetCode"] == Y.EAUTH, "auth refused: " + name, m[2])
import msgpack
req = {"Limit": 1}
a, raw = signed("DescribeUser", {"Limit": 2})
cn.msgid += 1
cn.send_raw(msgpack.packb([0, cn.msgid, "DescribeUser", [req, a]], use_bin_type=True))
m = cn.wait(cn.msgid)
t.ok(m[2] is not None and m[2]["RetCode"] == Y.EAUTH, "auth refused: signature over other bytes", m[2])

# Tenant keys: a tenant sees only itself and cannot create users.
rc, k = adm.call("CreateAPIKey", {"UserID": uids[1], "RequestToken": Y.token()})
t.ok(rc == 0 and k.get("PublicKey") and k.get("PrivateKey"), "CreateAPIKey for a tenant", k)
ten = c.client(pub=k["PublicKey"], priv=k["PrivateKey"])
rc, r = ten.call("DescribeUser", {"Limit": 100})
t.ok(rc == 0 and r.get("TotalCount") == 1 and r["Infos"][0]["UserID"] == uids[1],
     "a tenant sees only itself", r)
rc, r = ten.call("CreateUser", {"UserEmail": "evil@it.example", "PassWord": "password-evil"})
t.ok(rc == Y.EPERM, "a tenant cannot CreateUser (140)", rc)
rc, r = ten.call("ModifyNameAndRemark", {"ResourceID": uids[2], "Remark": "hijack"})
t.ok(rc in (Y.EPERM, Y.ENOTFOUND), "a tenant cannot modify another user", rc)
rc, r = ten.call("ModifyNameAndRemark", {"ResourceID": uids[1], "Name": "mine"})
t.ok(rc == 0, "a tenant can modify itself", (rc, r))

# LoginByPassword.
lc = Y.Conn(c.api(2))
rc, r = lc.call("LoginByPassword", {"UserEmail": "u1@it.example", "PassWord": "password-1"}, auth=False)
t.ok(rc == 0 and r.get("UserID") == uids[1] and r.get("PrivateKey"), "LoginByPassword returns a key", r)
rc, r = lc.call("LoginByPassword", {"UserEmail": "u1@it.example", "PassWord": "wrong-password"}, auth=False)
t.ok(rc == Y.EAUTH, "LoginByPassword with a wrong password: 130", rc)
rc, r = adm.call("DeleteAPIKey", {"PublicKey": k["PublicKey"], "RequestToken": Y.token()})
t.ok(rc == 0, "DeleteAPIKey", r)
time.sleep(0.3)
rc, r = ten.call("DescribeUser", {})
t.ok(rc == Y.EAUTH, "a deleted key no longer authenticates", rc)

# Watch: a notification for every committed change.
w = Y.Conn(c.api(followers[0]), c.pub, c.priv)
rc, r = w.call("Watch", {"FromIndex": 1})
t.ok(rc == 0, "Watch accepted", r)
events = []
def collect():
    while len(events) < 1000:
        m = w.recv()
        if m is None:
            return
        if m[0] == 2 and m[1] == "Watch":
            events.append(m[2][0])
th = threading.Thread(target=collect, daemon=True)
th.start()
rc, r = adm.call("ModifyNameAndRemark", {"ResourceID": uids[3], "Remark": "watched"})
deadline = time.time() + 5
while time.time() < deadline and not any(e.get("Index") == r.get("Revision") for e in events):
    time.sleep(0.05)
t.ok(any(e.get("Index") == r.get("Revision") and e.get("Action") == "ModifyNameAndRemark" for e in events),
     "Watch streams the new change", len(events))
idx = [e["Index"] for e in events]
t.ok(idx == sorted(idx) and len(idx) == len(set(idx)), "Watch events in index order, no duplicates")
t.ok(any(e.get("Action") == "CreateUser" for e in events), "Watch backfills from FromIndex")

# Operation log.
rc, r = adm.call("DescribeOperationLog", {"Action": "CreateUser", "Limit": 100})
t.ok(rc == 0 and r.get("TotalCount", 0) >= 21, "DescribeOperationLog filters by action", r.get("TotalCount"))
rc, r = adm.call("DescribeOperationLog", {"RetCode": Y.ETOKEN, "Limit": 10})
t.ok(rc == 0 and r.get("TotalCount", 0) >= 1 and all(i["RetCode"] == Y.ETOKEN for i in r["Infos"]),
     "operation log records rejections too")

# Replay: a stopped node's raft data rebuilds the same digest.
d = c.converged([1, 2, 3], deadline=20)
t.ok(d is not None, "replicas converge to one digest")
victim = followers[1]
c.kill(victim, "TERM")
time.sleep(1.0)
others = [n for n in (1, 2, 3) if n != victim]
live = c.describe(others[0])
r = subprocess.run([YUNHAN, "replay", "--data-dir", os.path.join(c.dir, "n%d" % victim),
                    "--to", str(live["AppliedIndex"])], capture_output=True, text=True, timeout=120)
out = r.stdout + r.stderr
t.ok(r.returncode == 0 and live["Digest"] in out, "yunhan replay digest equals the live digest",
     out.strip()[-300:] + " live=%s@%s" % (live["Digest"][:16], live["AppliedIndex"]))
c.start(victim)

# TransferLeader: to a named node, through any node.
time.sleep(1.0)
ld = c.leader()
target = [n for n in (1, 2, 3) if n != ld][0]
rc, r = adm.call("TransferLeader", {"NodeID": target, "RequestToken": Y.token()},
                 endpoint=c.api([n for n in (1, 2, 3) if n != ld][-1]))
t.ok(rc == 0, "TransferLeader answered", (rc, r))
t.ok(c.leader(deadline=10) == target, "leadership moved to node %d" % target)
rc, r = adm.call("ModifyNameAndRemark", {"ResourceID": uids[4], "Remark": "after transfer",
                                          "RequestToken": Y.token()})
t.ok(rc == 0, "writes continue after the transfer", (rc, r))
ten_rc, r = Y.Conn(c.api(1), k["PublicKey"], k["PrivateKey"]).call("TransferLeader", {"NodeID": 1})
t.ok(ten_rc in (Y.EAUTH, Y.EPERM), "TransferLeader needs admin", ten_rc)

bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
